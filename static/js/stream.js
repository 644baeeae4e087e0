// The page's websocket (opened by the htmx ws extension): decodes binary frames, hands over the newest one
// at most once per animation frame, reads the JSON messages (hello, ack, error) and pairs each answer with
// the control message it answers.
import { decodeFrame } from "./frames.js";

const $ = (id) => document.getElementById(id);

export class Stream {
  /**
   * @param {{onFrame: (frame: object) => void, onMessage: (msg: object|null) => void}} handlers `onFrame` gets
   *   the newest decoded frame, at most once per animation frame (ten times a second in a hidden tab: frames
   *   that arrive meanwhile are skipped); `onMessage` every JSON message (null when one cannot be read) that
   *   is not the answer to a `request`.
   */
  constructor({ onFrame, onMessage }) {
    this.onFrame = onFrame;
    this.onMessage = onMessage;
    this.socket = null; // the ws extension's socketWrapper
    this.latest = null; // the newest frame not painted yet
    this.painting = false;
    this.refs = 0;
    this.waiting = new Map(); // ref → {resolve, reject}: answers to our control messages
    let opened;
    this.opened = new Promise((resolve) => {
      opened = resolve;
    }); // resolved when the socket first opens (a preview page connects at its first action)
    document.addEventListener("htmx:wsOpen", (e) => {
      this.socket = e.detail.socketWrapper;
      $("connection").textContent = "";
      opened();
    });
    document.addEventListener("htmx:wsClose", (e) => {
      const gone = e.detail.event?.code === 4404;
      $("connection").textContent = gone
        ? "this session has ended (reload the page to start a new one)"
        : "connection lost — reconnecting…";
    });
    // Every message is data (binary frames, JSON hello/ack/error): take it and stop htmx from swapping it.
    document.addEventListener("htmx:wsBeforeMessage", (e) => {
      e.preventDefault();
      this.receive(e.detail.message);
    });
  }

  receive(data) {
    if (data instanceof Blob) {
      data.arrayBuffer().then((buffer) => this.receive(buffer));
      return;
    }
    if (data instanceof ArrayBuffer) {
      const frame = decodeFrame(data);
      if (frame.header.type === "frame") {
        this.latest = frame;
        this.schedule();
      }
      return;
    }
    let msg = null;
    try {
      msg = JSON.parse(data);
    } catch {
      /* unreadable: the listener says so */
    }
    const pending = msg && this.waiting.get(msg.ref);
    if (pending) {
      this.waiting.delete(msg.ref);
      (msg.type === "ack" ? pending.resolve : pending.reject)(msg);
    }
    this.onMessage(msg, Boolean(pending));
  }

  schedule() {
    if (this.painting) return;
    this.painting = true;
    const later = document.hidden ? (f) => setTimeout(f, 100) : requestAnimationFrame;
    later(() => {
      this.painting = false;
      if (this.latest) this.onFrame(this.latest);
    });
  }

  /** Send a raw text message; false when the socket is not open yet. */
  sendText(text) {
    if (!this.socket) return false;
    this.socket.send(text);
    return true;
  }

  /** Send a control message; resolves with its ack, rejects with its error. */
  request(msg) {
    const ref = `page-${++this.refs}`;
    return new Promise((resolve, reject) => {
      if (!this.sendText(JSON.stringify({ ...msg, ref }))) {
        reject({ message: "not connected to the server yet: try again in a moment" });
        return;
      }
      this.waiting.set(ref, { resolve, reject });
    });
  }
}
