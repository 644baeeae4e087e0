// "Inside the optimization" on the MLP and CNN pages: while the panel is open, the loss slice around the weights
// (coarse while training, fine once paused), the path training took drawn over it, the path's true loss
// against the slice's, the line from the initial weights and the sharpness, all from the REST views; the
// gradient-health table is an htmx fragment this refreshes.

const $ = (id) => document.getElementById(id);
const body = document.body;
const api = `/api/v1/sessions/${body.dataset.session}`;
const panel = document.getElementById("optimization");
const LIVE = +panel.dataset.live || 31; // cells per side while training (a CNN's: fewer, each is a forward pass)
const FINE = +panel.dataset.fine || 51; // once paused
const STOPS = [
  [48, 18, 59], [70, 134, 251], [26, 228, 182], [162, 252, 60], [250, 187, 57], [228, 70, 10], [122, 4, 3],
]; // dark = low loss … red = high (the legend's colours)

let open = false;
let seed = 0;
let shown = ""; // what the picture shows: directions|span|seed|resolution|epoch
let charts = null;

/** Two numbers with just enough digits to tell them apart (3 at least). */
function pair(a, b) {
  for (let d = 3; d < 7; d++) if (a.toPrecision(d) !== b.toPrecision(d)) return [a.toPrecision(d), b.toPrecision(d)];
  return [a.toPrecision(3), b.toPrecision(3)];
}

function colour(t) {
  const x = Math.max(0, Math.min(1, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  return STOPS[i].map((v, k) => Math.round(v + (STOPS[i + 1][k] - v) * f));
}

const axisNumber = (v) => (v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential(0) : +v.toPrecision(4));

function smallChart(el, series, xLabel) {
  const opts = {
    width: el.clientWidth || 320,
    height: 110,
    scales: { x: { time: false } },
    series: [{ label: xLabel }, ...series.map((s) => ({ points: { show: false }, width: 1.5, ...s }))],
    axes: [{ size: 28 }, { size: 54, values: (u, vals) => vals.map(axisNumber) }],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
  const u = new window.uPlot(opts, [[], ...series.map(() => [])], el);
  new ResizeObserver(() => u.setSize({ width: el.clientWidth, height: 110 })).observe(el);
  return u;
}

/** Paint a slice (rows β from −span up, columns α) as colours on a log scale between its lowest loss and a
high percentile, β up, off-scale cells crossed out; returns the scale and the plane → pixel maps. */
function paintSlice(c, grid, span) {
  const n = grid.length;
  const logs = grid.flat().filter((v) => v != null && v > 0).map(Math.log).sort((a, b) => a - b);
  const lo = logs.length ? logs[0] : 0;
  const hi = logs.length ? logs[Math.floor(0.97 * (logs.length - 1))] : 1;
  const small = new OffscreenCanvas(n, n);
  const sctx = small.getContext("2d");
  const img = sctx.createImageData(n, n);
  grid.forEach((row, i) =>
    row.forEach((v, j) => {
      const p = ((n - 1 - i) * n + j) * 4; // row 0 is β = −span: the bottom
      const rgb = v == null ? [255, 255, 255] : colour(v > 0 ? (Math.log(v) - lo) / (hi - lo || 1) : 0);
      img.data.set([...rgb, 255], p);
    }),
  );
  sctx.putImageData(img, 0, 0);
  const ctx = c.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.clearRect(0, 0, c.width, c.height);
  ctx.drawImage(small, 0, 0, c.width, c.height);
  const cw = c.width / n;
  ctx.strokeStyle = "#b3261e";
  ctx.lineWidth = 1;
  grid.forEach((row, i) =>
    row.forEach((v, j) => {
      if (v != null) return;
      const x = j * cw, y = (n - 1 - i) * cw;
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.lineTo(x + cw, y + cw);
      ctx.moveTo(x + cw, y);
      ctx.lineTo(x, y + cw);
      ctx.stroke();
    }),
  );
  const px = (a) => ((a + span) / (2 * span)) * c.width;
  const py = (b) => c.height - ((b + span) / (2 * span)) * c.height;
  return { ctx, lo, hi, px, py };
}

/** A path (alpha, beta lists) as a line from a small disc (its start). */
function drawPath({ ctx, px, py }, alpha, beta, stroke) {
  ctx.lineWidth = 2;
  ctx.strokeStyle = stroke;
  ctx.beginPath();
  alpha.forEach((a, k) => (k ? ctx.lineTo(px(a), py(beta[k])) : ctx.moveTo(px(a), py(beta[k]))));
  ctx.stroke();
  ctx.fillStyle = stroke;
  ctx.beginPath();
  if (alpha.length) ctx.arc(px(alpha[0]), py(beta[0]), 4, 0, 2 * Math.PI);
  ctx.fill();
}

/** The slice with the path training took, and the current weights at its centre. */
function draw(out) {
  const c = $("landscape");
  const n = out.resolution;
  const span = out.span;
  const path = out.trajectory;
  const plane = paintSlice(c, out.loss, span);
  const { ctx, lo, hi, px, py } = plane;
  drawPath(plane, path.alpha, path.beta, "#fff");
  ctx.strokeStyle = "#000";
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.arc(px(0), py(0), 6, 0, 2 * Math.PI); // the current weights
  ctx.fillStyle = "#fff";
  ctx.fill();
  ctx.stroke();
  c.dataset.epoch = String(out.epoch);
  c.dataset.resolution = String(n);
  c.dataset.directions = out.directions;
  [$("ls-lo").textContent, $("ls-hi").textContent] = pair(Math.exp(lo), Math.exp(hi));
  const [least, most] = out.loss_min == null ? ["–", "–"] : pair(out.loss_min, out.loss_max);
  const far = Math.max(0, ...path.off_plane.filter((v) => v != null));
  const words = [
    `epoch ${out.epoch}: loss ${out.center_loss?.toPrecision(4) ?? "off scale"} here (●), from ${least} to ${most} on the plane (±${+span.toPrecision(3)})`,
  ];
  if (out.off_scale) words.push(`${out.off_scale} cells off scale (✕)`);
  if (path.alpha.length > 1) words.push(`the path (white, from ○) is at most ${far.toPrecision(2)} off this plane`);
  if (out.explained_variance)
    words.push(`the two PCA directions explain ${(100 * (out.explained_variance[0] + out.explained_variance[1])).toFixed(0)} % of its movement`);
  $("ls-caption").textContent = words.join("; ") + ".";
  charts.path.setData([path.epochs, path.true_loss, path.plane_loss]);
}

async function getJSON(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error((await r.json()).detail?.[0]?.msg || `the server answered ${r.status}`);
  return r.json();
}

async function refresh(resolution, epoch) {
  const directions = $("ls-directions").value;
  const span = $("ls-span").value;
  const key = `${directions}|${span}|${seed}|${resolution}|${epoch}`;
  if (key === shown) return false;
  const q = new URLSearchParams({ directions, resolution, seed });
  if (span) q.set("span", span);
  try {
    draw(await getJSON(`${api}/landscape?${q}`));
    shown = key;
    $("ls-caption").classList.remove("error");
  } catch (err) {
    $("ls-caption").textContent = err.message;
    $("ls-caption").classList.add("error");
    shown = key; // do not ask again until something changes
  }
  return true;
}

async function refreshSlow() {
  try {
    const line = await getJSON(`${api}/interpolation?steps=41`);
    charts.line.setData([line.t, line.loss]);
    const sharp = await getJSON(`${api}/sharpness`);
    const h = sharp.history;
    charts.sharp.setData([h.map((p) => p.epoch), h.map((p) => p.top_eigenvalue), h.map(() => sharp.stability_threshold)]);
    const top = sharp.top_eigenvalue;
    $("sharp-note").textContent =
      top == null
        ? "the curvature is off scale"
        : `top eigenvalue ${top.toPrecision(3)}; plain gradient descent is stable below 2 / learning rate = ${sharp.stability_threshold.toPrecision(3)}` +
          (top > sharp.stability_threshold ? " — sharper than that: expect the loss to oscillate or climb" : "");
  } catch (err) {
    console.warn("landscape panel:", err); // the next round tries again
  }
  htmx.trigger("#gradients", "ng:refresh");
}

async function loop() {
  let slowAt = 0;
  while (open) {
    const running = body.dataset.status === "running";
    const epoch = window.neuroglass?.frame?.epoch ?? 0;
    const t0 = performance.now();
    const changed = await refresh(running ? LIVE : FINE, epoch);
    if (changed && performance.now() - slowAt > (running ? 1000 : 0)) {
      slowAt = performance.now();
      await refreshSlow();
    }
    const wait = Math.max(0, (running ? 200 : 400) - (performance.now() - t0));
    await new Promise((r) => setTimeout(r, wait));
  }
}

function setOpen(on) {
  open = on;
  $("optimization").hidden = !on;
  $("landscape-tab").setAttribute("aria-expanded", String(on));
  if (!on) return;
  if (!charts) {
    charts = {
      // a CNN's path has its losses at some points only (null between): join them
      path: smallChart($("path-chart"), [{ label: "true loss", stroke: "#1b1f24", spanGaps: true }, { label: "slice loss", stroke: "#0877bd", dash: [4, 3], spanGaps: true }], "epoch"),
      line: smallChart($("line-chart"), [{ label: "loss", stroke: "#1b1f24" }], "t"),
      sharp: smallChart($("sharp-chart"), [{ label: "top eigenvalue", stroke: "#1b1f24" }, { label: "2 / learning rate", stroke: "#b3261e", dash: [4, 3] }], "epoch"),
    };
    htmx.ajax("GET", `/ui/sessions/${body.dataset.session}/gradients`, { target: "#gradients", swap: "outerHTML" });
  }
  shown = "";
  $("optimization").scrollIntoView({ block: "nearest" });
  loop();
}

$("landscape-tab").addEventListener("click", () => setOpen(!open));
$("ls-new").addEventListener("click", () => {
  seed += 1;
  shown = "";
});
for (const id of ["ls-directions", "ls-span"]) $(id).addEventListener("change", () => (shown = ""));
// a fix applied (or any change of the spec): the numbers move on at once
body.addEventListener("ng:spec", () => {
  shown = "";
  if (open) htmx.trigger("#gradients", "ng:refresh");
});
if (new URLSearchParams(location.hash.slice(1)).has("landscape")) setOpen(true);

// ------------------------------------------------------------------------------------------ the race

const RUN_COLOURS = ["#ffffff", "#ff4fd8", "#00e5ff"];
let raceChart = null;

async function runRace() {
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const optimizer = $(`race-opt-${i}`).value;
    if (optimizer) runs.push({ optimizer, learning_rate: +$(`race-lr-${i}`).value, index: i });
  }
  const center = $("race-center").value;
  const bodyJson = { runs: runs.map(({ optimizer, learning_rate }) => ({ optimizer, learning_rate })), epochs: +$("race-epochs").value, resolution: +panel.dataset.race || 41 };
  if (center !== "") bodyJson.center = runs.findIndex((r) => r.index === +center);
  const note = $("race-note");
  note.classList.remove("error");
  note.textContent = `racing ${runs.length} copies for ${bodyJson.epochs} epochs…`;
  $("race-btn").disabled = true;
  try {
    const r = await fetch(`${api}/race`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(bodyJson) });
    const out = await r.json();
    if (!r.ok) {
      const d = out.detail?.[0];
      throw new Error(d ? `${d.loc?.slice(-1)[0] ?? ""}: ${d.msg}`.replace(/^: /, "") : `the server answered ${r.status}`);
    }
    document.querySelector(".race-out").hidden = false; // shown from the first race on
    const c = $("race-plane");
    const plane = paintSlice(c, out.loss, out.span);
    out.runs.forEach((run, k) => drawPath(plane, run.alpha, run.beta, RUN_COLOURS[runs[k].index]));
    c.dataset.runs = String(out.runs.length);
    const ends = out.runs.map((run) => `${run.label}: loss ${run.curve.train_loss.at(-1)?.toPrecision(3) ?? "off scale"}, at most ${Math.max(...run.off_plane.filter((v) => v != null)).toPrecision(2)} off the plane`);
    note.textContent = [`from epoch ${out.from_epoch}, ${out.epochs} epochs each`, ...ends, ...out.notes].join("; ") + ".";
    if (raceChart) raceChart.destroy();
    raceChart = smallChart($("race-chart"), out.runs.map((run, k) => ({ label: run.label, stroke: RUN_COLOURS[runs[k].index] === "#ffffff" ? "#1b1f24" : RUN_COLOURS[runs[k].index] })), "epoch");
    raceChart.setData([out.runs[0].curve.epoch, ...out.runs.map((run) => run.curve.train_loss)]);
  } catch (err) {
    note.textContent = `the race could not run: ${err.message}`;
    note.classList.add("error");
  } finally {
    $("race-btn").disabled = false;
  }
}

$("race-btn").addEventListener("click", runRace); // watchers may race too: it never changes the session
