// The landscape panel's snapshots on the session's websocket (docs/websocket.md: `watch_landscape`, the
// `landscape` message): the panel says what it wants to see, the server computes it once for every socket
// watching and sends it as a binary envelope; this reads each one back into the shapes of the REST views
// (GET .../landscape, .../interpolation, .../sharpness), so the panel draws either the same way.
import { decodeFrame } from "./frames.js";

const utf8 = new TextDecoder();
const LANDSCAPE = '{"type":"landscape"';

/** Whether a binary envelope is a landscape snapshot, from its first bytes (frames are not decoded twice). */
function isSnapshot(buffer) {
  if (buffer.byteLength < 4 + LANDSCAPE.length) return false;
  return utf8.decode(new Uint8Array(buffer, 4, LANDSCAPE.length)) === LANDSCAPE;
}

/** Float32 numbers as a plain list, NaN (off scale) as null, as the REST views give them. */
const list = (a) => (a ? Array.from(a.data, (v) => (Number.isNaN(v) ? null : v)) : []);

/** A (n, n) array as n rows. */
function rows(a) {
  const n = a.shape[0];
  const all = list(a);
  return Array.from({ length: n }, (_, i) => all.slice(i * n, (i + 1) * n));
}

/** A snapshot's parts, each as its REST view answers (null where the snapshot has none). */
export function readSnapshot({ header, arrays }) {
  const s = header.slice;
  const slice = s && {
    ...s,
    loss: rows(arrays.loss),
    coordinates: list(arrays.coordinates),
    trajectory: {
      epochs: Array.from(arrays.path_epochs?.data ?? []),
      alpha: list(arrays.path_alpha),
      beta: list(arrays.path_beta),
      true_loss: list(arrays.path_true_loss),
      plane_loss: list(arrays.path_plane_loss),
      off_plane: list(arrays.path_off_plane),
    },
  };
  const line = header.line && { ...header.line, t: list(arrays.line_t), loss: list(arrays.line_loss) };
  const epochs = Array.from(arrays.sharpness_epochs?.data ?? []);
  const tops = list(arrays.sharpness_top_eigenvalue);
  const history = epochs.map((epoch, i) => ({ epoch, top_eigenvalue: tops[i] }));
  const sharpness = header.sharpness && { ...header.sharpness, history };
  return { slice, line, sharpness, gradients: header.gradients, errors: header.errors || {}, watch: header.watch };
}

/** What identifies the weights a part was computed on (a new one means new numbers to show). */
export const partKey = (p) => (p ? `${p.epoch}|${p.revision}|${p.spec_version}` : "");

export class LandscapeFeed {
  /**
   * @param {{request: (msg: object) => Promise<object>}} live the page's session (its control requests)
   * @param {{onSnapshot: (snap: object) => void, onLost: () => void, onOpen: () => void}} handlers
   *   `onSnapshot` gets each snapshot (readSnapshot's shape) while watching; `onLost` when the socket closes;
   *   `onOpen` when a socket (re)opens.
   */
  constructor(live, { onSnapshot, onLost, onOpen }) {
    Object.assign(this, { live, onSnapshot, onLost, onOpen });
    this.watching = false; // the server has acked our watch: snapshots come on the socket
    this.wanted = false; // we asked (snapshots may come before the ack)
    document.addEventListener("htmx:wsBeforeMessage", (e) => this.receive(e.detail.message));
    document.addEventListener("htmx:wsOpen", () => this.onOpen());
    document.addEventListener("htmx:wsClose", () => {
      const was = this.watching;
      this.watching = this.wanted = false;
      if (was) this.onLost();
    });
  }

  /** Ask for snapshots with these settings; resolves true once the server takes them, false when it cannot
  (no socket yet: the panel uses HTTP meanwhile); rejects with the server's refusal. */
  async watch(settings) {
    this.wanted = true;
    try {
      await this.live.request({ action: "watch_landscape", open: true, ...settings });
    } catch (err) {
      this.watching = this.wanted = false;
      if (err?.type === "error") {
        this.live.request({ action: "watch_landscape", open: false }).catch(() => {}); // nor the earlier settings
        throw err;
      }
      return false;
    }
    this.watching = true;
    return true;
  }

  stop() {
    if (this.watching) this.live.request({ action: "watch_landscape", open: false }).catch(() => {});
    this.watching = this.wanted = false;
  }

  receive(data) {
    if (data instanceof Blob) {
      if (!this.wanted) return;
      data.arrayBuffer().then((buffer) => this.receive(buffer));
      return;
    }
    if (data instanceof ArrayBuffer && this.wanted && isSnapshot(data)) this.onSnapshot(readSnapshot(decodeFrame(data)));
  }
}
