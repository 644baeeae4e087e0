// The page's glue: frames from the websocket (htmx ws extension) are decoded and painted; the controls
// themselves are htmx forms answered with server-rendered fragments. Only what HTML cannot do lives here:
// canvases and charts, the address bar, typing a weight, reading a CSV file.
import { drawGrads, LossChart } from "./charts.js";
import { paintPreview } from "./previews.js";
import { Network } from "./network.js";
import { OutputMap } from "./output.js";
import { api, followStream, readonly, runKeys, session, showCounters } from "./session.js";

const $ = (id) => document.getElementById(id);
const body = document.body;

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

const wire = followStream({ paint, message: onMessage });

function onMessage(msg) {
  if (msg === null) return streamError({ message: "the server sent a message this page cannot read" });
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
    if (!wire(JSON.stringify({ ...msg, ref }))) {
      return reject({ message: "not connected to the server yet: try again in a moment" });
    }
    waiting.set(ref, { resolve, reject });
  });
}

function streamError(msg) {
  const el = $("stream-error");
  const where = msg.field?.length ? ` (${msg.field.filter((p) => p !== "spec").join(".")})` : "";
  el.textContent = `${msg.message}${where}`;
  el.hidden = false;
}

// ------------------------------------------------------------------------------------------ painting

function paint(frame) {
  const h = frame.header;
  showCounters(h);
  const m = h.metrics;
  for (const el of document.querySelectorAll(".metrics .acc")) el.hidden = m.train_accuracy == null;
  output.setFrame(frame);
  network.paint(frame);
  loss.push(h);
  if (frame.arrays.grad_norms) drawGrads($("grad-strip"), frame.arrays.grad_norms.data, $("grad-note"), frame.header.diagnosis);
  if (h.spec_version !== specVersion) {
    specVersion = h.spec_version;
    loadData();
    // A watcher follows the presenter: reload every panel (htmx, see #panels-refresh).
    if (readonly) htmx.trigger(body, "ng:spec-changed");
  }
}

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

// ------------------------------------------------------------------------------------------ start

runKeys("#output-map, #weight-editor"); // Space / S, except on the map (it adds points) and the editor
loadHistory();
loadData();
