// The MLP page's controller: it builds the panels' components (network diagram, output map, loss chart,
// weight editor, the optimization panel) and hands each frame from the websocket to them; the controls
// themselves are htmx forms answered with server-rendered fragments. Only what HTML cannot do lives here:
// canvases and charts, typing a weight, reading a CSV file.
import { drawGrads, LossChart } from "./charts.js";
import { paintPreview } from "./previews.js";
import { Network } from "./network.js";
import { OutputMap } from "./output.js";
import { Landscape } from "./landscape.js";
import { paintClasses, paintFit } from "./metrics.js";
import { api, readonly, session, startSession } from "./session.js";
import { Timeline } from "./timeline.js";
import { WeightEditor } from "./weighteditor.js";

const $ = (id) => document.getElementById(id);
const body = document.body;

let specVersion = +$("network-form").dataset.specVersion;
let data = null;

// ------------------------------------------------------------------------------------------ the stream

// Space / S, except on the map (it adds points) and the editor
const live = startSession({ paint: paintLive, keys: "#output-map, #weight-editor" });
const timeline = new Timeline({
  api,
  live,
  paint,
  readonly,
  onRestored: () => {
    loadHistory();
    loadData();
  },
});
const editor = new WeightEditor(live.request);
new Landscape(live, { api, session });

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
const network = new Network($("network-wrap"), {
  readonly,
  onInspect: (what) => output.inspect(what),
  onEdit: (target) => editor.open(target),
});
const loss = new LossChart($("loss-chart"));

// ------------------------------------------------------------------------------------------ painting

/** A frame from the stream: painted unless the timeline shows a past moment. */
function paintLive(frame) {
  timeline.follow(frame.header);
  if (timeline.viewing === null) paint(frame);
}

/** Paint a frame: the live one, or a checkpoint's (`header.checkpoint`; `reshaped`: the network had other
 * layers then, so the diagram, drawn for today's layers, is left as it is). */
function paint(frame, { reshaped = false } = {}) {
  const h = frame.header;
  const m = h.metrics;
  for (const el of document.querySelectorAll(".metrics .acc")) el.hidden = m.train_accuracy == null;
  paintFit(m);
  paintClasses(frame);
  output.setFrame(frame);
  if (!reshaped) network.paint(frame);
  if (frame.arrays.grad_norms && !reshaped) drawGrads($("grad-strip"), frame.arrays.grad_norms.data, $("grad-note"), frame.header.diagnosis);
  if (h.checkpoint) return; // a past moment: the loss curve and the spec stay today's
  loss.push(h);
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

// ------------------------------------------------------------------------------------------ start

loadHistory();
loadData();
