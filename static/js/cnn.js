// The CNN page's controller: it builds the panels' components and hands each frame from the websocket to
// them (filters, test images, feature maps, confusion matrix, mistakes, gradients, loss chart, the views
// that follow the training); the controls are htmx forms answered with fragments.
import { ActMax } from "./actmax.js";
import { drawGrads, LossChart } from "./charts.js";
import { paintConfusion } from "./confusion.js";
import { ConvWalk } from "./convwalk.js";
import { DrawPad } from "./drawpad.js";
import { FeatureMaps } from "./featuremaps.js";
import { paintFilters } from "./filters.js";
import { ImageStrip, surestMistakes, testImages } from "./imagestrip.js";
import { Landscape } from "./landscape.js";
import { Saliency } from "./saliency.js";
import { api, readonly, session, startSession } from "./session.js";
import { Timeline } from "./timeline.js";

const $ = (id) => document.getElementById(id);

/** Which image the feature maps show: a test image (its index) or the user's drawing (its maps). */
const shown = { example: 0, drawing: null };

const live = startSession({
  paint(frame) {
    timeline.follow(frame.header);
    if (timeline.viewing === null) paint(frame);
  },
});
const timeline = new Timeline({ api, live, paint, readonly, onRestored: loadHistory });
const loss = new LossChart($("loss-chart"));
const maps = new FeatureMaps($("maps"), $("map-scale"), repaint);
const examples = new ImageStrip($("examples"), { onChoose: choose });
const mistakes = new ImageStrip($("wrong"));
const saliency = new Saliency($("saliency"), api);
const actmax = new ActMax(api);
const walk = new ConvWalk();
const pad = new DrawPad(api, {
  onAnswer(drawnMaps, caption) {
    shown.drawing = drawnMaps; // the feature maps panel shows the drawing until a test image is clicked
    $("example-caption").textContent = caption;
    repaint();
  },
  onClear() {
    const wasShown = shown.drawing !== null;
    shown.drawing = null;
    if (wasShown) choose(0);
  },
});
new Landscape(live, { api, session });
let specVersion = null; // a watcher reloads the panels when the presenter changes the spec

function paint(frame) {
  const h = frame.header;
  const drawing = shown.drawing !== null;
  paintFilters($("filters"), frame);
  paintImages(frame, drawing);
  if (drawing) maps.paint({ header: h, arrays: shown.drawing }, "drawing");
  else maps.paint(frame, shown.example);
  paintConfusion($("confusion"), frame);
  const wrong = surestMistakes(frame);
  if (wrong) {
    mistakes.show(wrong);
    $("wrong-none").hidden = wrong.length > 0;
  }
  if (frame.arrays.grad_norms)
    drawGrads($("grad-strip"), frame.arrays.grad_norms.data, $("grad-note"), h.diagnosis, frame.arrays.grad_layers.data);
  if (h.checkpoint) return; // a past moment (the timeline): the views, the loss curve and the spec stay today's
  actmax.follow(frame, live.status === "running");
  pad.follow(h, drawing);
  if (specVersion !== null && h.spec_version !== specVersion && readonly) htmx.trigger(document.body, "ng:spec-changed");
  specVersion = h.spec_version;
  loss.push(h);
  walk.tick(h.epoch, h.status === "running");
  if (!drawing) saliency.follow(h, shown.example); // it follows the training
}

/** The test images strip, the chosen one selected and described under it. */
function paintImages(frame, drawing) {
  const items = testImages(frame);
  if (!items) return;
  const chosen = drawing ? -1 : shown.example;
  examples.show(items, chosen);
  if (items[chosen]) $("example-caption").textContent = items[chosen].label;
}

/** A test image clicked: its feature maps, its saliency, the convolution walked over it. */
function choose(e) {
  shown.example = e;
  shown.drawing = null;
  walk.example(e);
  saliency.show(e);
  repaint();
}

/** Paint the newest frame again (a view option or the chosen image changed). */
function repaint() {
  if (live.frame && timeline.viewing === null) paint(live.frame);
}

function loadHistory() {
  fetch(`${api}/history`).then(async (r) => r.ok && loss.load((await r.json()).records));
}
loadHistory();
