// What both pages (MLP and CNN) do with their session: follow the websocket stream and paint its newest
// frame, show the epoch, the run status (compiling, why it stopped) and the losses, keep the share link in the
// address bar, show a refused request's reason, keep "more settings" open across re-renders, and take
// Space / S as play-pause / step.
import { RunStatus } from "./status.js";
import { Stream } from "./stream.js";

const $ = (id) => document.getElementById(id);
const body = document.body;
export const session = body.dataset.session;
export const readonly = body.dataset.role === "viewer";
export const api = `/api/v1/sessions/${session}`;

/**
 * Start the page's session: counters, status, address bar, errors and keys, and the stream.
 * @param {{paint: (frame: object) => void, keys?: string}} opts `paint` gets the newest frame (after the
 *   counters are shown); `keys`: a selector where Space and S keep their own meaning.
 * @returns {{frame: object|null, status: string, request: (msg: object) => Promise<object>,
 *   sendText: (text: string) => boolean}} `frame` is the newest frame painted; `status` what the session does.
 */
export function startSession({ paint, keys = "" }) {
  const status = new RunStatus();
  const handle = {
    frame: null,
    get status() {
      return status.status;
    },
    request: (msg) => stream.request(msg),
    sendText: (text) => stream.sendText(text),
  };
  const stream = new Stream({
    onFrame(frame) {
      status.frame(frame.header);
      handle.frame = frame;
      paint(frame);
    },
    onMessage(msg, answered) {
      if (msg?.state) status.settled(msg.state.status, msg.state.step, msg.state.stopped ?? null);
      if (msg?.type === "status" && msg.status === "compiling") status.compilingNow(msg.message);
      if (msg?.type === "stopped") status.stoppedBy(msg.reason);
      showMessage(msg, answered);
    },
  });
  keepOpen();
  followAddressBar();
  showRefusals();
  runKeys(keys);
  return handle;
}

/** What the stream says that is not a frame: a message this page cannot read, a refusal, a viewer's key. */
function showMessage(msg, answered) {
  if (msg === null) return streamError({ message: "the server sent a message this page cannot read" });
  if (msg.type === "hello" && !readonly && msg.role !== "owner") {
    streamError({ message: "this browser does not hold this session's key: you can watch it but not change it" });
  } else if (msg.type === "ack") {
    $("stream-error").hidden = true;
  } else if (msg.type === "error" && !answered) {
    streamError(msg);
  }
}

function streamError(msg) {
  const el = $("stream-error");
  const where = msg.field?.length ? ` (${msg.field.filter((p) => p !== "spec").join(".")})` : "";
  el.textContent = `${msg.message}${where}`;
  el.hidden = false;
}

/** The settings forms are re-rendered on every change (and out of band): a <details> the user opened stays
open, one they closed stays closed. */
function keepOpen() {
  const opened = new Map(); // id → open
  document.addEventListener(
    "toggle",
    (e) => {
      if (e.target instanceof HTMLDetailsElement && e.target.id) opened.set(e.target.id, e.target.open);
    },
    true, // toggle does not bubble
  );
  const restore = () => {
    for (const [id, open] of opened) {
      const el = $(id);
      if (el && open && !el.open) el.open = true;
    }
  };
  document.addEventListener("htmx:afterSettle", restore);
  document.addEventListener("htmx:oobAfterSwap", restore);
}

/** An accepted change: the answer's HX-Trigger carries the new share URL. */
function followAddressBar() {
  if (readonly) return;
  body.addEventListener("ng:spec", (e) => {
    history.replaceState(null, "", e.detail.url);
    const link = $("spec-link");
    if (link) link.href = e.detail.url;
  });
  history.replaceState(null, "", body.dataset.url);
}

/** A request the server refused or could not take: say why at the top of the page. */
function showRefusals() {
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
}

function pageError(text) {
  $("page-error").textContent = text;
  $("page-error").hidden = !text;
}

/** Space plays or pauses, S steps one epoch — unless the focus is on a control (it keeps its own keys) or
on one of `also` (a selector). */
function runKeys(also) {
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
