// What both pages (MLP and CNN) do with their session: follow the websocket stream and paint its newest
// frame, show the epoch, the run status and the losses, keep the share link in the address bar, show a
// refused request's reason, and take Space / S as play-pause / step.
import { decodeFrame } from "./frames.js";

const $ = (id) => document.getElementById(id);
const body = document.body;
export const session = body.dataset.session;
export const readonly = body.dataset.role === "viewer";
export const api = `/api/v1/sessions/${session}`;

/** Follow the page's websocket (the htmx ws extension): `paint(frame)` gets the newest decoded frame, at
most once per animation frame (ten times a second in a hidden tab: frames that arrive meanwhile are
skipped); `message(msg)` every JSON message (null when one cannot be read). Returns `send(text)`. */
export function followStream({ paint, message }) {
  let socket = null; // the ws extension's socketWrapper
  let latest = null; // the newest frame not painted yet
  let painting = false;
  document.addEventListener("htmx:wsOpen", (e) => {
    socket = e.detail.socketWrapper;
    $("connection").textContent = "";
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
    receive(e.detail.message);
  });

  function receive(data) {
    if (data instanceof Blob) return void data.arrayBuffer().then(receive);
    if (data instanceof ArrayBuffer) {
      const frame = decodeFrame(data);
      if (frame.header.type === "frame") {
        latest = frame;
        schedule();
      }
      return;
    }
    let msg = null;
    try {
      msg = JSON.parse(data);
    } catch {
      /* unreadable: said below */
    }
    message(msg);
  }

  function schedule() {
    if (painting) return;
    painting = true;
    const later = document.hidden ? (f) => setTimeout(f, 100) : requestAnimationFrame;
    later(() => {
      painting = false;
      if (latest) paint(latest);
    });
  }

  const send = (text) => {
    if (!socket) return false;
    socket.send(text);
    return true;
  };
  window.neuroglass = {
    frame: null,
    /** Send a raw control message (string or object) as any client could. */
    send: (msg) => send(typeof msg === "string" ? msg : JSON.stringify(msg)),
  };
  return send;
}

// ------------------------------------------------------------------------------------------ status

let pausedAt = null; // step at which this page paused the session
let lastFrameAt = 0;

export function showStatus(s) {
  $("status").dataset.status = s;
  $("status").textContent = s === "diverged" ? "diverged — lower the learning rate or reset" : s;
  body.dataset.status = s;
  const run = $("run-buttons");
  if (run) run.dataset.status = s;
}

const num = (v) => (v == null ? "–" : v.toFixed(3));
const pct = (v) => (v == null ? "–" : `${(100 * v).toFixed(1)} %`);

/** A frame's counters: the epoch, the run status, the losses and accuracies. */
export function showCounters(h) {
  lastFrameAt = performance.now();
  $("epoch").value = String(h.epoch).padStart(6, "0").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  // A frame made before our pause went through can arrive after the pause's answer: it is not news.
  showStatus(h.status === "running" && pausedAt != null && h.step <= pausedAt ? "paused" : h.status);
  const m = h.metrics;
  $("train-loss").value = num(m.train_loss);
  $("test-loss").value = num(m.test_loss);
  $("train-acc").value = pct(m.train_accuracy);
  $("test-acc").value = pct(m.test_accuracy);
  window.neuroglass.frame = h;
}

// The run buttons' answer says what the session does now.
document.addEventListener("htmx:afterSwap", (e) => {
  const run = $("run-buttons");
  if (!run || !(e.detail.target === run || e.detail.elt?.id === "run-buttons")) return;
  pausedAt = run.dataset.status === "running" ? null : +run.dataset.step;
  showStatus(run.dataset.status);
});

// Pausing sends no frame: while "running" shows but frames have stopped, ask the session what it does.
setInterval(async () => {
  if (body.dataset.status !== "running" || performance.now() - lastFrameAt < 2500) return;
  const r = await fetch(api);
  if (!r.ok) return;
  const s = await r.json();
  if (s.status !== "running" && body.dataset.status === "running") showStatus(s.status);
}, 1000);

// ------------------------------------------------------------------------------------------ address bar

// An accepted change: the answer's HX-Trigger carries the new share URL.
document.body.addEventListener("ng:spec", (e) => {
  if (readonly) return;
  history.replaceState(null, "", e.detail.url);
  const link = $("spec-link");
  if (link) link.href = e.detail.url;
});
if (!readonly) history.replaceState(null, "", body.dataset.url);

// ------------------------------------------------------------------------------------------ errors

// A request the server refused or could not take: say why at the top of the page.
document.addEventListener("htmx:responseError", (e) => {
  const xhr = e.detail.xhr;
  let text = `the server answered ${xhr.status}`;
  try {
    const detail = JSON.parse(xhr.responseText).detail;
    text = typeof detail === "string" ? detail : detail.map((d) => d.msg).join("; ");
  } catch {
    /* not JSON: keep the status */
  }
  pageError(text);
});
document.addEventListener("htmx:sendError", () => pageError("the server cannot be reached: is it still running?"));
document.addEventListener("htmx:afterRequest", (e) => {
  if (e.detail.successful) pageError("");
});

function pageError(text) {
  $("page-error").textContent = text;
  $("page-error").hidden = !text;
}

// ------------------------------------------------------------------------------------------ keyboard

/** Space plays or pauses, S steps one epoch — unless the focus is on a control (it keeps its own keys) or
on one of `also` (a selector). */
export function runKeys(also = "") {
  const own = `input, select, textarea, button, a, [role=button]${also ? `, ${also}` : ""}`;
  document.addEventListener("keydown", (e) => {
    if (readonly || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.closest?.(own)) return;
    if (e.key === " ") {
      e.preventDefault();
      $("play-btn")?.click();
    } else if (e.key === "s" || e.key === "S") {
      $("step-btn")?.click();
    }
  });
}
