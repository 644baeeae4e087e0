// What both pages (MLP and CNN) do with their session: follow the websocket stream and paint its newest
// frame, show the epoch, the run status (compiling, why it stopped) and the losses, keep the share link in the
// address bar, show a refused request's reason, keep "more settings" open across re-renders, and take
// Space / S as play-pause / step.
//
// A visit creates no session: the page is a preview (body[data-draft], the stand-in id `draft-<key>` in its URLs)
// painted from the spec's cached frame. The visitor's first action — any htmx request that changes something,
// a fetch of a view that needs the session, a control message, a link to the session — first creates the
// session (POST body[data-create]: its token lands in the cookie), then goes on to it, the stand-in id
// replaced by the real one everywhere; the stream connects then.
import { RunStatus } from "./status.js";
import { Stream } from "./stream.js";

const $ = (id) => document.getElementById(id);
const body = document.body;
const draft = body.dataset.draft || null; // the stand-in id while the page is a preview
export let session = body.dataset.session;
export const readonly = body.dataset.role === "viewer";
export let api = `/api/v1/sessions/${session}`;
const realFetch = window.fetch.bind(window);
let creating = null; // the creation under way (or done): every first action waits for the same one
// What a preview answers without a session (GET only): the fragments of pages.py and the previews' own views.
const PREVIEWED = /\/cnn\/convolution(\?|$)/;

/**
 * Start the page's session: counters, status, address bar, errors and keys, and the stream.
 * @param {{paint: (frame: object) => void, keys?: string}} opts `paint` gets the newest frame (after the
 *   counters are shown); `keys`: a selector where Space and S keep their own meaning.
 * @returns {{frame: object|null, status: string, request: (msg: object) => Promise<object>,
 *   sendText: (text: string) => boolean}} `frame` is the newest frame painted; `status` what the session does.
 */
const SOCKET_WAIT_MS = 3000;

export function startSession({ paint, keys = "" }) {
  const status = new RunStatus();
  const handle = {
    frame: null,
    get status() {
      return status.status;
    },
    request: async (msg) => {
      if (isDraft()) {
        await ensureSession();
        // a socket that cannot open (a proxy without websockets) must not hold the request for ever: after a
        // while it is refused as "not connected", and the panels fall back to HTTP
        await Promise.race([stream.opened, new Promise((r) => setTimeout(r, SOCKET_WAIT_MS))]);
      }
      return stream.request(msg);
    },
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
  if (draft) paintPreview(stream);
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
open, one they closed stays closed, and the control that had the focus has it again. (htmx gives the focus back
to the new control of the same id, but one inside "more settings" is still in a closed <details> then: the focus
would fall to the page, and a keyboard user would start again from the top.) */
function keepOpen() {
  const opened = new Map(); // id → open
  let focused = null; // id of the control that had the focus inside the element being swapped
  document.addEventListener(
    "toggle",
    (e) => {
      if (e.target instanceof HTMLDetailsElement && e.target.id) opened.set(e.target.id, e.target.open);
    },
    true, // toggle does not bubble
  );
  const before = (e) => {
    const active = document.activeElement;
    if (active?.id && e.detail.target?.contains(active)) focused = active.id;
  };
  const restore = () => {
    for (const [id, open] of opened) {
      const el = $(id);
      if (el && open && !el.open) el.open = true;
    }
    const lost = !document.activeElement || document.activeElement === body;
    if (focused && lost) $(focused)?.focus({ preventScroll: true });
  };
  // the focus found its place (given back, or moved by the user): nothing to give back any more
  document.addEventListener("focusin", () => {
    focused = null;
  });
  document.addEventListener("pointerdown", () => {
    focused = null;
  });
  document.addEventListener("htmx:beforeSwap", before);
  document.addEventListener("htmx:oobBeforeSwap", before);
  document.addEventListener("htmx:afterSettle", restore);
  document.addEventListener("htmx:oobAfterSwap", restore);
}

/** An accepted change: the answer's HX-Trigger carries the new share URL. */
function followAddressBar() {
  // a page in a class keeps its /s/{id} address: reloading it must come back to the same session
  if (readonly || document.getElementById("class-bar")) return;
  const keep = body.dataset.keep || ""; // ?embed=1&hide=...: an embedded page stays embedded
  body.addEventListener("ng:spec", (e) => {
    history.replaceState(null, "", e.detail.url + keep);
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

/** Space plays or pauses, S steps one epoch — unless the focus is on a control (it keeps its own keys: Space
opens a <summary>'s disclosure) or on one of `also` (a selector). */
function runKeys(also) {
  const own = `input, select, textarea, button, a, summary, [role=button]${also ? `, ${also}` : ""}`;
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

// ------------------------------------------------------------------------------------------ a preview page

/** Whether the page still shows a preview (no session yet). */
function isDraft() {
  return draft !== null && session === draft;
}

/** The page's session: created now on a preview page (once: later callers wait for the same); its id. */
export function ensureSession() {
  if (!isDraft()) return Promise.resolve(session);
  creating ||= create().catch((err) => {
    creating = null; // the next action tries again
    throw err;
  });
  return creating;
}

// An embedded page (in another site's iframe) holds its session's token itself: the browser keeps that
// site's cookies apart (or refuses them), so the page presents the token on its own requests and its socket.
const embeddedPage = body.classList.contains("embed");
let token = null;

/** Whether a request goes to this page's session (same origin, its id in the path): it carries the token. */
function ours(url) {
  const u = new URL(url, location.href);
  const named = u.pathname.includes(`/${session}`) || (draft !== null && u.pathname.includes(`/${draft}`));
  return token !== null && u.origin === location.origin && named;
}

function keepToken(value) {
  token = value;
  document.addEventListener("htmx:configRequest", (e) => {
    if (ours(e.detail.path)) e.detail.headers.Authorization = `Bearer ${token}`;
  });
  const inner = window.fetch;
  window.fetch = (input, init = {}) => {
    const url = typeof input === "string" ? input : String(input.url ?? input);
    if (!ours(url)) return inner(input, init);
    const headers = new Headers(init.headers || (typeof input === "string" ? undefined : input.headers));
    headers.set("Authorization", `Bearer ${token}`);
    return inner(input, { ...init, headers });
  };
}

async function create() {
  let r;
  try {
    const form = { spec: body.dataset.spec, ...(embeddedPage ? { embed: "1" } : {}) };
    r = await realFetch(body.dataset.create, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form),
    });
  } catch (err) {
    pageError("the server cannot be reached: is it still running?");
    throw err;
  }
  if (!r.ok) {
    const text = await reason(r);
    pageError(text);
    throw new Error(text);
  }
  const answer = await r.json();
  const id = answer.id;
  session = id;
  api = `/api/v1/sessions/${id}`;
  body.dataset.session = id;
  delete body.dataset.draft;
  renamed(draft, id);
  if (answer.token) keepToken(answer.token);
  const stream = $("stream");
  const key = answer.token ? `?token=${encodeURIComponent(answer.token)}` : "";
  stream.setAttribute("ws-connect", `/ws/sessions/${id}${key}`);
  htmx.process(stream);
  body.dispatchEvent(new CustomEvent("ng:session", { detail: { id } }));
  return id;
}

/** Why the server refused: its `detail` in words, else the status. */
async function reason(r) {
  try {
    const detail = (await r.json()).detail;
    return typeof detail === "string" ? detail : detail.map((d) => d.msg).join("; ");
  } catch {
    return `the server answered ${r.status}`;
  }
}

/** Every attribute naming the stand-in id names the session now (links, forms, the walkthrough's address). */
function renamed(from, to) {
  for (const el of document.querySelectorAll("*")) {
    for (const attr of el.attributes) {
      if (attr.value.includes(from)) el.setAttribute(attr.name, attr.value.replaceAll(from, to));
    }
  }
}

/** The preview's frame (computed once per spec by the server), painted as the stream paints frames. */
async function paintPreview(stream) {
  const r = await realFetch(`/ui/previews/${draft.slice("draft-".length)}/frame`);
  if (r.ok) stream.receive(await r.arrayBuffer());
  else ensureSession().catch(() => {}); // no longer kept: the session shows it instead
}

/** A fetch naming the stand-in id: the preview answers what it can (the data, an empty history, a CNN's
saliency), anything else first creates the session; once it exists, the real id goes instead. */
function previewFetch(input, init) {
  const url = typeof input === "string" ? input : String(input.url ?? input);
  const at = draft ? url.indexOf(`/sessions/${draft}`) : -1;
  if (at < 0) return realFetch(input, init);
  if (!isDraft()) return realFetch(url.replaceAll(draft, session), init);
  const rest = url.slice(at + `/sessions/${draft}`.length);
  if ((init?.method ?? "GET").toUpperCase() === "GET") {
    const answer = (value) => Promise.resolve(Response.json(value));
    if (rest === "/history") return answer({ records: [] });
    if (rest === "/checkpoints") return answer({ epoch: 0, limit: 0, checkpoints: [] });
    if (rest === "/data" || rest.startsWith("/saliency?")) {
      return realFetch(`/ui/previews/${draft.slice("draft-".length)}${rest}`, init);
    }
  }
  return ensureSession().then(() => realFetch(url.replaceAll(draft, session), init));
}

// No inline script on the pages (their Content-Security-Policy runs none): what attributes used to do.
// A form[data-no-submit] is driven by its controls and never submitted (Enter in a field must not navigate);
// an input[data-shows] writes its value into the element of that id as it moves (a slider's number).
document.addEventListener("submit", (e) => {
  if (e.target.matches?.("form[data-no-submit]")) e.preventDefault();
});
document.addEventListener("input", (e) => {
  const shown = e.target.dataset?.shows && $(e.target.dataset.shows);
  if (shown) shown.value = e.target.value;
});

if (draft) {
  window.fetch = previewFetch;
  // "ng:start" on the body: the session now (a script of the page that embeds this one, or a test, wants it)
  body.addEventListener("ng:start", () => ensureSession().catch(() => {}));
  // an htmx request to the stand-in id waits for the session (a preview's own fragments excepted), then goes
  document.addEventListener("htmx:confirm", (e) => {
    const { path, verb } = e.detail;
    if (!isDraft() || !path.includes(draft) || (verb === "get" && PREVIEWED.test(path))) return;
    e.preventDefault();
    ensureSession().then(
      () => e.detail.issueRequest(true),
      () => {},
    );
  });
  // (htmx keeps the address an element had when it was set up: the real id goes instead)
  document.addEventListener("htmx:configRequest", (e) => {
    if (!isDraft()) e.detail.path = e.detail.path.replaceAll(draft, session);
  });
  // a link to the session (watch, sweeps, downloads): the session first (a copy needs only the spec)
  document.addEventListener(
    "click",
    (e) => {
      const a = e.target.closest?.("a[href]");
      if (!a || !isDraft() || !a.href.includes(draft) || a.href.includes("/copy/")) return;
      e.preventDefault();
      ensureSession().then(
        () => a.click(),
        () => {},
      );
    },
    true,
  );
}
