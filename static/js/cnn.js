// The CNN page's glue: frames from the websocket are decoded and painted (filters, feature maps, the test
// images, the confusion matrix, the loss chart); the controls are htmx forms answered with fragments.
import { LossChart, drawGrads } from "./charts.js";
import { rgbOf } from "./colors.js";
import { walkExample, walkTick } from "./convwalk.js";
import { api, followStream, readonly, runKeys, showCounters } from "./session.js";

const $ = (id) => document.getElementById(id);
const body = document.body;

let latest = null; // the last frame painted: painted again when a view option changes
let chosen = 0; // which test image's feature maps are shown; DRAWING: the user's own drawing
const DRAWING = -1;
let drawnMaps = null; // the drawing's feature maps (arrays as a frame's), from POST .../predict
let drawnAt = 0; // when they were fetched
let specVersion = null; // a watcher reloads the panels when the presenter changes the spec
const loss = new LossChart($("loss-chart"));

// ------------------------------------------------------------------------------------------ the stream

followStream({ paint, message: onMessage });

function onMessage(msg) {
  if (msg === null) return;
  if (msg.type === "error") {
    $("stream-error").textContent = msg.message;
    $("stream-error").hidden = false;
  } else if (msg.type === "ack") {
    $("stream-error").hidden = true;
  }
}

// ------------------------------------------------------------------------------------------ painting

function paint(frame) {
  latest = frame;
  const h = frame.header;
  showCounters(h);
  paintFilters(frame);
  paintExamples(frame);
  paintMaps(frame);
  paintConfusion(frame);
  paintWrong(frame);
  if (frame.arrays.grad_norms)
    drawGrads($("grad-strip"), frame.arrays.grad_norms.data, $("grad-note"), h.diagnosis, frame.arrays.grad_layers.data);
  layerOptions(frame);
  lastHeader = h;
  if (specVersion !== null && h.spec_version !== specVersion && readonly) htmx.trigger(body, "ng:spec-changed");
  specVersion = h.spec_version;
  loss.push(h);
  walkTick(h.epoch, h.status === "running");
  if (chosen !== DRAWING && (!salient || (salient[1] !== h.epoch && (h.status !== "running" || performance.now() - salientAt > 2000))))
    showSaliency(); // it follows the training: every two seconds while running, at once when it stops
  if (chosen === DRAWING && h.status === "running" && performance.now() - drawnAt > 2000) {
    drawnAt = performance.now();
    classifyDrawing(); // the drawing's answer and its maps follow the training
  }
}

/** A canvas for `key` inside `parent`, created once (data-key); sized w × h device pixels. */
function canvasIn(parent, key, w, h, label) {
  let c = parent.querySelector(`canvas[data-key="${key}"]`);
  if (!c) {
    const fig = document.createElement("figure");
    fig.dataset.key = key;
    c = document.createElement("canvas");
    c.dataset.key = key;
    c.setAttribute("role", "img");
    const cap = document.createElement("figcaption");
    fig.append(c, cap);
    parent.append(fig);
  }
  if (c.width !== w) c.width = w;
  if (c.height !== h) c.height = h;
  c.setAttribute("aria-label", label);
  c.parentElement.querySelector("figcaption").textContent = label;
  return c;
}

/** Drop the figures of layers the network no longer has. */
function prune(parent, keys) {
  for (const fig of [...parent.children]) if (!keys.has(fig.dataset.key)) fig.remove();
}

function paintFilters(frame) {
  const parent = $("filters");
  const keys = new Set();
  frame.header.layers.forEach((layer, i) => {
    const w = frame.arrays[`w${i}`];
    if (layer.type !== "conv" || !w) return;
    const [k, , cin, f] = w.shape; // (k, k, C_in, F)
    let max = 1e-12;
    for (const v of w.data) max = Math.max(max, Math.abs(v));
    const tile = k + 1;
    const c = canvasIn(parent, `conv${i}`, f * tile - 1, cin * tile - 1, `layer ${i + 1}: ${f} filters ${k}×${k} over ${cin} channel${cin > 1 ? "s" : ""}`);
    const ctx = c.getContext("2d");
    const img = ctx.createImageData(c.width, c.height);
    img.data.fill(255);
    for (let y = 0; y < k; y++)
      for (let x = 0; x < k; x++)
        for (let ch = 0; ch < cin; ch++)
          for (let j = 0; j < f; j++) {
            const v = w.data[((y * k + x) * cin + ch) * f + j] / max;
            const [r, g, b] = rgbOf(v);
            const p = ((ch * tile + y) * c.width + j * tile + x) * 4;
            img.data[p] = r;
            img.data[p + 1] = g;
            img.data[p + 2] = b;
          }
    ctx.putImageData(img, 0, 0);
    c.style.width = `${Math.min(100, (f * tile * 100) / 40)}%`;
    c.dataset.painted = String(frame.header.epoch);
    keys.add(`conv${i}`);
  });
  prune(parent, keys);
}

/** A grey image (rows × cols bytes at `offset`) painted into a tile of an ImageData. */
function greyTile(img, bytes, offset, rows, cols, x0, y0) {
  for (let y = 0; y < rows; y++)
    for (let x = 0; x < cols; x++) {
      const q = bytes[offset + y * cols + x];
      const p = ((y0 + y) * img.width + x0 + x) * 4;
      img.data[p] = img.data[p + 1] = img.data[p + 2] = q;
      img.data[p + 3] = 255;
    }
}

/** Bytes of example e's maps of layer i on the chosen colour scale: per map (as sent), per layer, global. */
function scaledMaps(frame, i, e, mode, global) {
  const maps = frame.arrays[`maps${i}`];
  const [, ch, rows, cols] = maps.shape;
  const cells = rows * cols;
  const base = e * ch * cells;
  if (mode === "map") return { bytes: maps.data, offset: base };
  const ranges = frame.arrays[`map_ranges${i}`].data; // (examples, C, 2)
  let lo = Infinity, hi = -Infinity;
  if (mode === "global") [lo, hi] = global;
  else
    for (let m = 0; m < ch; m++) {
      lo = Math.min(lo, ranges[(e * ch + m) * 2]);
      hi = Math.max(hi, ranges[(e * ch + m) * 2 + 1]);
    }
  const span = hi > lo ? hi - lo : 1;
  const out = new Uint8Array(ch * cells);
  for (let m = 0; m < ch; m++) {
    const a = ranges[(e * ch + m) * 2], b = ranges[(e * ch + m) * 2 + 1];
    for (let k = 0; k < cells; k++) {
      const v = a + (maps.data[base + m * cells + k] / 255) * (b - a);
      out[m * cells + k] = Math.round((255 * (v - lo)) / span);
    }
  }
  return { bytes: out, offset: 0 };
}

function globalRange(frame, e) {
  let lo = Infinity, hi = -Infinity;
  frame.header.layers.forEach((_, i) => {
    const r = frame.arrays[`map_ranges${i}`];
    if (!r) return;
    const ch = r.shape[1];
    for (let m = 0; m < ch; m++) {
      lo = Math.min(lo, r.data[(e * ch + m) * 2]);
      hi = Math.max(hi, r.data[(e * ch + m) * 2 + 1]);
    }
  });
  return [lo, hi];
}

$("map-scale").addEventListener("change", () => latest && paint(latest));

function paintMaps(latestFrame) {
  // the chosen test image's maps come in every frame; the drawing's from its last classification
  const drawn = chosen === DRAWING && drawnMaps;
  const frame = drawn ? { header: latestFrame.header, arrays: drawnMaps } : latestFrame;
  const pick = drawn ? 0 : Math.max(chosen, 0);
  const parent = $("maps");
  const keys = new Set();
  const mode = $("map-scale").value;
  const n0 = frame.arrays.maps0 ? frame.arrays.maps0.shape[0] : 1;
  const global = globalRange(frame, Math.min(pick, n0 - 1));
  parent.dataset.source = drawn ? "drawing" : "test";
  frame.header.layers.forEach((layer, i) => {
    const maps = frame.arrays[`maps${i}`];
    if (!maps) return;
    const [n, ch, rows, cols] = maps.shape; // (examples, C, H, W)
    const e = Math.min(pick, n - 1);
    const per = Math.min(ch, 8);
    const lines = Math.ceil(ch / per);
    const c = canvasIn(parent, `maps${i}`, per * (cols + 1) - 1, lines * (rows + 1) - 1,
      `layer ${i + 1} (${layer.type}): ${ch} maps of ${rows}×${cols}`);
    const ctx = c.getContext("2d");
    const img = ctx.createImageData(c.width, c.height);
    img.data.fill(255);
    const { bytes, offset } = scaledMaps(frame, i, e, mode, global);
    for (let m = 0; m < ch; m++) {
      greyTile(img, bytes, offset + m * rows * cols, rows, cols, (m % per) * (cols + 1), Math.floor(m / per) * (rows + 1));
    }
    c.dataset.scale = mode;
    ctx.putImageData(img, 0, 0);
    c.dataset.painted = String(frame.header.epoch);
    c.dataset.example = drawn ? "drawing" : String(e);
    keys.add(`maps${i}`);
  });
  prune(parent, keys);
}

function paintExamples(frame) {
  const ex = frame.arrays.examples;
  const probs = frame.arrays.example_probs;
  if (!ex) return;
  const [n, , rows, cols] = ex.shape;
  const names = frame.header.class_names;
  const parent = $("examples");
  for (let e = 0; e < n; e++) {
    let btn = parent.querySelector(`[data-example="${e}"]`);
    if (!btn) {
      btn = document.createElement("button");
      btn.type = "button";
      btn.className = "example";
      btn.dataset.example = String(e);
      btn.setAttribute("role", "option");
      btn.append(document.createElement("canvas"), document.createElement("span"));
      btn.addEventListener("click", () => choose(e));
      parent.append(btn);
    }
    const c = btn.querySelector("canvas");
    c.width = cols;
    c.height = rows;
    const ctx = c.getContext("2d");
    const img = ctx.createImageData(cols, rows);
    greyTile(img, ex.data, e * rows * cols * ex.shape[1], rows, cols, 0, 0);
    ctx.putImageData(img, 0, 0);
    const k = probs.shape[1];
    let best = 0;
    for (let j = 1; j < k; j++) if (probs.data[e * k + j] > probs.data[e * k + best]) best = j;
    const truth = frame.header.example_labels[e];
    const span = btn.querySelector("span");
    span.textContent = names[best];
    span.className = best === truth ? "right" : "wrong";
    btn.setAttribute("aria-selected", String(e === chosen));
    btn.setAttribute("aria-label", `test image ${e + 1}: a ${names[truth]}, the network says ${names[best]} (${(100 * probs.data[e * k + best]).toFixed(0)} %)`);
    if (e === chosen) $("example-caption").textContent = btn.getAttribute("aria-label");
  }
}

function paintWrong(frame) {
  const imgs = frame.arrays.wrong_images;
  if (!imgs) return;
  const [m, ch, rows, cols] = imgs.shape;
  const names = frame.header.class_names;
  const parent = $("wrong");
  $("wrong-none").hidden = m > 0;
  while (parent.children.length > m) parent.lastChild.remove();
  for (let i = 0; i < m; i++) {
    let fig = parent.children[i];
    if (!fig) {
      fig = document.createElement("figure");
      fig.className = "example";
      fig.append(document.createElement("canvas"), document.createElement("figcaption"));
      parent.append(fig);
    }
    const c = fig.querySelector("canvas");
    c.width = cols;
    c.height = rows;
    const ctx = c.getContext("2d");
    const img = ctx.createImageData(cols, rows);
    greyTile(img, imgs.data, i * ch * rows * cols, rows, cols, 0, 0);
    ctx.putImageData(img, 0, 0);
    const said = names[frame.arrays.wrong_predicted.data[i]];
    const sure = (100 * frame.arrays.wrong_confidence.data[i]).toFixed(0);
    fig.querySelector("figcaption").textContent = `${said}? ${sure} %`;
    c.setAttribute("role", "img");
    c.setAttribute("aria-label", `test image ${frame.arrays.wrong_index.data[i] + 1}: the network says ${said} (${sure} %), wrongly`);
  }
  parent.dataset.count = String(m);
}

function choose(e) {
  chosen = e;
  walkExample(e);
  showSaliency();
  if (latest) paint(latest);
}

// ------------------------------------------------------------------------------------------ saliency

let salientAt = 0; // when the saliency was last fetched
let salient = null; // [example, epoch] it shows

/** The chosen test image's saliency (bright = the score depends much on that pixel), painted hot. */
async function showSaliency() {
  if (chosen === DRAWING) return;
  const e = chosen;
  salientAt = performance.now();
  try {
    const r = await fetch(`${api}/saliency?examples=${e}&encoding=list`);
    if (!r.ok) return;
    const out = await r.json();
    const rows = out.maps.data[0];
    const c = $("saliency");
    c.height = rows.length;
    c.width = rows[0].length;
    const ctx = c.getContext("2d");
    const img = ctx.createImageData(c.width, c.height);
    rows.forEach((row, y) =>
      row.forEach((q, x) => {
        const t = q / 255; // black → red → yellow → white
        img.data.set([Math.min(255, 3 * 255 * t), Math.max(0, Math.min(255, 3 * 255 * t - 255)), Math.max(0, 3 * 255 * t - 510), 255], (y * c.width + x) * 4);
      }),
    );
    ctx.putImageData(img, 0, 0);
    salient = [e, out.epoch];
    c.dataset.example = String(e);
    c.dataset.epoch = String(out.epoch);
  } catch {
    /* the next frame asks again */
  }
}

function paintConfusion(frame) {
  const cm = frame.arrays.confusion;
  if (!cm) return;
  const k = cm.shape[0];
  const names = frame.header.class_names;
  const table = $("confusion");
  const rows = [`<tr><th scope="col">true \\ said</th>${names.map((n) => `<th scope="col">${n}</th>`).join("")}<th scope="col">right</th></tr>`];
  let total = 0;
  for (let i = 0; i < k; i++) {
    let sum = 0;
    for (let j = 0; j < k; j++) sum += cm.data[i * k + j];
    total += sum;
    const cells = [];
    for (let j = 0; j < k; j++) {
      const v = cm.data[i * k + j];
      const t = sum ? v / sum : 0;
      const [r, g, b] = rgbOf(i === j ? t : -t);
      cells.push(`<td style="background: rgb(${r},${g},${b})">${v}</td>`);
    }
    const right = sum ? `${((100 * cm.data[i * k + i]) / sum).toFixed(0)} %` : "–";
    rows.push(`<tr><th scope="row">${names[i]}</th>${cells.join("")}<td class="right-col">${right}</td></tr>`);
  }
  table.innerHTML = rows.join("");
  table.dataset.total = String(total);
}

// ------------------------------------------------------------------------------------------ activation maximization

let actmaxBusy = false;
let actmaxAt = 0;

function layerOptions(frame) {
  const select = $("actmax-layer");
  const wanted = frame.header.layers.map((l, i) => (l.type === "conv" ? i : -1)).filter((i) => i >= 0);
  const have = [...select.options].map((o) => +o.value);
  if (wanted.join() === have.join()) return;
  const keep = select.value;
  select.innerHTML = wanted.map((i) => `<option value="${i}">${i + 1}: conv, ${frame.header.layers[i].filters} filters</option>`).join("");
  if (keep !== "" && wanted.includes(+keep)) select.value = keep;
  $("actmax-btn").disabled = !wanted.length;
}

async function showActmax() {
  if (actmaxBusy || !$("actmax-layer").value) return;
  actmaxBusy = true;
  actmaxAt = performance.now();
  const layer = +$("actmax-layer").value;
  const note = $("actmax-note");
  note.textContent = "computing… (the first time for a layer compiles its program: a few seconds)";
  try {
    const r = await fetch(`${api}/actmax?layer=${layer}&steps=20&encoding=list`);
    if (!r.ok) throw new Error((await r.json()).detail?.[0]?.msg || `the server answered ${r.status}`);
    const out = await r.json();
    const imgs = out.images.data; // (filters, C, H, W)
    const f = imgs.length, rows = imgs[0][0].length, cols = imgs[0][0][0].length;
    const parent = $("actmax");
    const c = canvasIn(parent, "actmax", f * (cols + 1) - 1, rows, `layer ${layer + 1}: what each of its ${f} filters wants to see (epoch ${out.epoch})`);
    const ctx = c.getContext("2d");
    const img = ctx.createImageData(c.width, c.height);
    img.data.fill(255);
    for (let j = 0; j < f; j++)
      for (let y = 0; y < rows; y++)
        for (let x = 0; x < cols; x++) {
          const q = imgs[j][0][y][x];
          const p = (y * c.width + j * (cols + 1) + x) * 4;
          img.data[p] = img.data[p + 1] = img.data[p + 2] = q;
        }
    ctx.putImageData(img, 0, 0);
    c.style.width = "100%";
    c.dataset.painted = String(out.epoch);
    c.dataset.layer = String(layer);
    note.textContent = "";
  } catch (err) {
    note.textContent = `could not compute it: ${err.message}`;
  } finally {
    actmaxBusy = false;
  }
}

$("actmax-btn").addEventListener("click", showActmax);
$("actmax-layer").addEventListener("change", showActmax);
setInterval(() => {
  if ($("actmax-live").checked && body.dataset.status === "running" && performance.now() - actmaxAt > 2000) showActmax();
}, 500);

// ------------------------------------------------------------------------------------------ draw your own

const pad = $("draw");
const pen = pad.getContext("2d");
let drawing = false;
let asking = false;
let again = false;
let lastHeader = null;

function clearPad() {
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, pad.width, pad.height);
  $("draw-probs").textContent = "";
  pad.dataset.drawn = "";
  drawnMaps = null;
  if (chosen === DRAWING) choose(0);
}
clearPad();

function at(e) {
  const r = pad.getBoundingClientRect();
  return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
}
pad.addEventListener("pointerdown", (e) => {
  if (!lastHeader) return;
  drawing = true;
  pad.setPointerCapture(e.pointerId);
  const [x, y] = at(e);
  pen.strokeStyle = "#fff";
  pen.lineCap = pen.lineJoin = "round";
  pen.lineWidth = pad.width / (lastHeader.input_shape[0] <= 8 ? 7 : 11);
  pen.beginPath();
  pen.moveTo(x, y);
  pen.lineTo(x + 0.1, y);
  pen.stroke();
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const [x, y] = at(e);
  pen.lineTo(x, y);
  pen.stroke();
  classifyDrawing();
});
pad.addEventListener("pointerup", () => {
  drawing = false;
  classifyDrawing();
});
$("draw-clear").addEventListener("click", clearPad);
$("draw-file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  e.target.value = "";
  if (!file) return;
  $("draw-error").hidden = true;
  try {
    const bitmap = await createImageBitmap(file);
    clearPad();
    const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
    const w = bitmap.width * scale, h = bitmap.height * scale;
    pen.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    classifyDrawing();
  } catch {
    $("draw-error").textContent = `${file.name} is not a picture this page can read (try a PNG or JPEG)`;
    $("draw-error").hidden = false;
  }
});

/** The drawing as the network's input: grey, scaled down to the images' size, 0..1 per pixel. */
function drawingAsImage() {
  const [rows, cols] = lastHeader.input_shape;
  const small = document.createElement("canvas");
  small.width = cols;
  small.height = rows;
  const ctx = small.getContext("2d");
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(pad, 0, 0, cols, rows);
  const px = ctx.getImageData(0, 0, cols, rows).data;
  const image = [];
  for (let y = 0; y < rows; y++) {
    const row = [];
    for (let x = 0; x < cols; x++) {
      const p = (y * cols + x) * 4;
      row.push((0.299 * px[p] + 0.587 * px[p + 1] + 0.114 * px[p + 2]) / 255);
    }
    image.push(row);
  }
  return image;
}

async function classifyDrawing() {
  if (!lastHeader) return;
  if (asking) return void (again = true);
  asking = true;
  try {
    const r = await fetch(`${api}/predict`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ images: [drawingAsImage()], feature_maps: true }),
    });
    const out = await r.json();
    if (!r.ok) throw new Error(out.detail?.[0]?.msg || `the server answered ${r.status}`);
    showProbs(out.outputs[0]);
    pad.dataset.drawn = String(out.classes[0]);
    drawnMaps = {};
    for (const [name, a] of Object.entries(out.feature_maps)) {
      const flat = a.data.flat(Infinity);
      drawnMaps[name] = { shape: a.shape, data: a.dtype === "uint8" ? Uint8Array.from(flat) : Float32Array.from(flat) };
    }
    drawnAt = performance.now();
    chosen = DRAWING; // the feature maps panel shows the drawing until a test image is clicked
    const best = out.classes[0];
    $("example-caption").textContent = `your drawing: the network says ${lastHeader.class_names[best]} (${(100 * out.outputs[0][best]).toFixed(0)} %)`;
    if (latest) paint(latest);
  } catch (err) {
    $("draw-error").textContent = `could not classify the drawing: ${err.message}`;
    $("draw-error").hidden = false;
  } finally {
    asking = false;
    if (again) {
      again = false;
      classifyDrawing();
    }
  }
}

function showProbs(probs) {
  const names = lastHeader.class_names;
  const best = probs.indexOf(Math.max(...probs));
  $("draw-probs").innerHTML = probs
    .map((p, k) => `<div class="prob${k === best ? " best" : ""}"><span>${names[k]}</span><span class="bar" style="width: ${(100 * p).toFixed(1)}%"></span><span>${(100 * p).toFixed(0)} %</span></div>`)
    .join("");
  $("draw-probs").setAttribute("aria-label", `the network says ${names[best]} (${(100 * probs[best]).toFixed(0)} %)`);
}

runKeys();
fetch(`${api}/history`).then(async (r) => r.ok && loss.load((await r.json()).records));
