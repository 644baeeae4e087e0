// The page's glue: frames from the websocket (htmx ws extension) are decoded and painted; the controls
// themselves are htmx forms answered with server-rendered fragments. Only what HTML cannot do lives here:
// canvases and charts, the address bar, typing a weight, reading a CSV file.
import { drawGrads, LossChart } from "./charts.js";
import { paintPreview } from "./previews.js";
import { decodeFrame } from "./frames.js";
import { Network } from "./network.js";
import { OutputMap } from "./output.js";

const $ = (id) => document.getElementById(id);
const body = document.body;
const session = body.dataset.session;
const readonly = body.dataset.role === "viewer";
const api = `/api/v1/sessions/${session}`;

let socket = null; // the ws extension's socketWrapper (send / sendImmediately)
let latest = null; // the newest frame not painted yet
let painting = false;
let specVersion = +$("network-form").dataset.specVersion;
let data = null;
let refs = 0;
const waiting = new Map(); // ref → {resolve, reject}: answers to our control messages

// ------------------------------------------------------------------------------------------ panels

const output = new OutputMap({
  map: $("output-map"),
  layer: $("points-layer"),
  caption: $("map-caption"),
  showTest: $("show-test"),
  discretize: $("discretize"),
  readonly,
  onAdd: addPoint,
});
const network = new Network($("network-wrap"), { readonly, onInspect: (what) => output.inspect(what), onEdit: openEditor });
const loss = new LossChart($("loss-chart"));

// ------------------------------------------------------------------------------------------ the stream

document.addEventListener("htmx:wsOpen", (e) => {
  socket = e.detail.socketWrapper;
  connection("");
});
document.addEventListener("htmx:wsClose", (e) => {
  const gone = e.detail.event?.code === 4404;
  connection(gone ? "this session has ended (reload the page to start a new one)" : "connection lost — reconnecting…");
});
// Every message is data (binary frames, JSON hello/ack/error): take it and stop htmx from swapping it.
document.addEventListener("htmx:wsBeforeMessage", (e) => {
  e.preventDefault();
  receive(e.detail.message);
});

function receive(message) {
  if (message instanceof Blob) return void message.arrayBuffer().then(receive);
  if (message instanceof ArrayBuffer) {
    const frame = decodeFrame(message);
    if (frame.header.type === "frame") {
      latest = frame;
      schedulePaint();
    }
    return;
  }
  let msg;
  try {
    msg = JSON.parse(message);
  } catch {
    return streamError({ message: "the server sent a message this page cannot read" });
  }
  if (msg.type === "hello") {
    if (!readonly && msg.role !== "owner") {
      streamError({ message: "this browser does not hold this session's key: you can watch it but not change it" });
    }
  } else if (msg.type === "ack" || msg.type === "error") {
    if (msg.type === "ack") $("stream-error").hidden = true;
    const pending = waiting.get(msg.ref);
    waiting.delete(msg.ref);
    if (pending) (msg.type === "ack" ? pending.resolve : pending.reject)(msg);
    else if (msg.type === "error") streamError(msg);
  }
}

/** Send a control message; resolves with its ack, rejects with its error. */
function send(msg) {
  const ref = `page-${++refs}`;
  return new Promise((resolve, reject) => {
    if (!socket) return reject({ message: "not connected to the server yet: try again in a moment" });
    waiting.set(ref, { resolve, reject });
    socket.send(JSON.stringify({ ...msg, ref }));
  });
}

function streamError(msg) {
  const el = $("stream-error");
  const where = msg.field?.length ? ` (${msg.field.filter((p) => p !== "spec").join(".")})` : "";
  el.textContent = `${msg.message}${where}`;
  el.hidden = false;
}

function connection(text) {
  $("connection").textContent = text;
}

// ------------------------------------------------------------------------------------------ painting

function schedulePaint() {
  if (painting) return;
  painting = true;
  const later = document.hidden ? (f) => setTimeout(f, 100) : requestAnimationFrame;
  later(() => {
    painting = false;
    if (latest) paint(latest);
  });
}

function paint(frame) {
  const h = frame.header;
  lastFrameAt = performance.now();
  $("epoch").value = String(h.epoch).padStart(6, "0").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  // A frame made before our pause went through can arrive after the pause's answer: it is not news.
  showStatus(h.status === "running" && pausedAt != null && h.step <= pausedAt ? "paused" : h.status);
  const m = h.metrics;
  $("train-loss").value = num(m.train_loss);
  $("test-loss").value = num(m.test_loss);
  $("train-acc").value = pct(m.train_accuracy);
  $("test-acc").value = pct(m.test_accuracy);
  for (const el of document.querySelectorAll(".metrics .acc")) el.hidden = m.train_accuracy == null;
  output.setFrame(frame);
  network.paint(frame);
  loss.push(h);
  if (frame.arrays.grad_norms) drawGrads($("grad-strip"), frame.arrays.grad_norms.data, $("grad-note"), frame.header.diagnosis);
  window.neuroglass.frame = h;
  if (h.spec_version !== specVersion) {
    specVersion = h.spec_version;
    loadData();
    // A watcher follows the presenter: reload every panel (htmx, see #panels-refresh).
    if (readonly) htmx.trigger(body, "ng:spec-changed");
  }
}

let pausedAt = null; // step at which this page paused the session
let lastFrameAt = 0;

function showStatus(s) {
  const status = $("status");
  status.dataset.status = s;
  status.textContent = s === "diverged" ? "diverged — lower the learning rate or reset" : s;
  body.dataset.status = s;
  const run = $("run-buttons");
  if (run) run.dataset.status = s;
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

const num = (v) => (v == null ? "–" : v.toFixed(3));
const pct = (v) => (v == null ? "–" : `${(100 * v).toFixed(1)} %`);

async function loadData() {
  const r = await fetch(`${api}/data`);
  if (!r.ok) return;
  data = await r.json();
  output.setData(data);
  const custom = document.querySelector('canvas[data-preview="custom"]');
  if (custom) paintPreview(custom, { points: data.train.points, labels: data.train.labels }, data.problem);
}

async function loadHistory() {
  const r = await fetch(`${api}/history`);
  if (r.ok) loss.load((await r.json()).records);
}

// ------------------------------------------------------------------------------------------ htmx glue

// New content (first load, a swapped fragment): re-scan the diagram, draw dataset pictures.
let refreshing = false;
document.addEventListener("htmx:load", () => {
  if (refreshing) return;
  refreshing = true;
  queueMicrotask(() => {
    refreshing = false;
    network.scan();
    paintPreviews();
  });
});

// An accepted change: the answer's HX-Trigger carries the new share URL.
document.body.addEventListener("ng:spec", (e) => {
  if (readonly) return;
  history.replaceState(null, "", e.detail.url);
  $("spec-link").href = e.detail.url;
});

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

let previews = null;
async function paintPreviews() {
  const canvases = [...document.querySelectorAll("canvas[data-preview]:not([data-drawn])")];
  if (!canvases.length) return;
  previews ||= fetch("/ui/datasets/preview").then((r) => r.json());
  const all = await previews;
  for (const c of canvases) {
    const name = c.dataset.preview;
    if (name === "custom") {
      if (data) paintPreview(c, { points: data.train.points, labels: data.train.labels }, data.problem);
    } else if (all[name]) {
      paintPreview(c, all[name], all[name].labels.some((v) => v % 1 !== 0) ? "regression" : "classification");
    }
  }
}

// Slider read-outs follow the thumb (the value is sent on release).
document.addEventListener("input", (e) => {
  const out = e.target.dataset?.output && $(e.target.dataset.output);
  if (out) out.value = e.target.value;
});

// Your own points: read the chosen CSV file and send its text (parsed and checked by the server).
document.addEventListener("change", async (e) => {
  if (e.target.id !== "csv-file" || !e.target.files.length) return;
  const file = e.target.files[0];
  const form = $("csv-form");
  form.elements.csv.value = await file.text();
  form.elements.csv_name.value = file.name;
  htmx.trigger(form, "ng:csv");
});

function addPoint(x1, x2) {
  htmx.ajax("POST", `/ui/sessions/${session}/points`, {
    source: "#points-form",
    target: "#points-form",
    swap: "outerHTML",
    values: { x1, x2 },
  });
}

// ------------------------------------------------------------------------------------------ weight editor

const editor = $("weight-editor");
const editorInput = $("weight-value");
const editorError = $("weight-error");
let editing = null;

function openEditor(target) {
  editing = target;
  $("weight-label").textContent = `new value of the ${target.label}`;
  editorInput.value = target.value == null ? "" : +target.value.toFixed(4);
  editorError.hidden = true;
  editor.hidden = false;
  const r = target.from.getBoundingClientRect();
  const x = target.x ?? r.right + window.scrollX;
  const y = target.y ?? r.top + window.scrollY;
  editor.style.left = `${Math.max(8, Math.min(x + 12, window.scrollX + document.documentElement.clientWidth - editor.offsetWidth - 8))}px`;
  editor.style.top = `${y + 12}px`;
  editorInput.focus();
  editorInput.select();
}

function closeEditor() {
  editor.hidden = true;
  if (editing?.from?.isConnected) editing.from.focus({ preventScroll: true });
  editing = null;
}

editor.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!editing) return;
  const raw = editorInput.value.trim();
  const { layer, param, index } = editing;
  try {
    await send({ action: "edit_weight", layer, param, index, value: raw === "" ? null : Number(raw) });
    closeEditor();
  } catch (err) {
    editorError.textContent = err.message === "value must be a finite number" ? "type a number, e.g. −1.5" : err.message;
    editorError.hidden = false;
  }
});
$("weight-cancel").addEventListener("click", closeEditor);
document.addEventListener("pointerdown", (e) => {
  if (!editor.hidden && !editor.contains(e.target) && !e.target.closest?.("path.hit, button.bias")) closeEditor();
});
editor.addEventListener("keydown", (e) => e.key === "Escape" && closeEditor());

// ------------------------------------------------------------------------------------------ keyboard

// Space plays or pauses, S steps one epoch — unless a control has the focus (it keeps its own keys).
document.addEventListener("keydown", (e) => {
  if (readonly || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target.closest?.("input, select, textarea, button, a, [role=button], #output-map, #weight-editor")) return;
  if (e.key === " ") {
    e.preventDefault();
    $("play-btn")?.click();
  } else if (e.key === "s" || e.key === "S") {
    $("step-btn")?.click();
  }
});

// ------------------------------------------------------------------------------------------ start

if (!readonly) history.replaceState(null, "", body.dataset.url);
window.neuroglass = {
  frame: null,
  /** Send a raw control message (string or object) as any client could. */
  send: (msg) => socket?.send(typeof msg === "string" ? msg : JSON.stringify(msg)),
};
loadHistory();
loadData();
