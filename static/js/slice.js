// Drawing a loss slice (a grid of losses on a plane through the weights) and paths over it, and the small
// uPlot charts of the optimization panel.

const STOPS = [
  [48, 18, 59],
  [70, 134, 251],
  [26, 228, 182],
  [162, 252, 60],
  [250, 187, 57],
  [228, 70, 10],
  [122, 4, 3],
]; // dark = low loss … red = high (the legend's colours)

function colour(t) {
  const x = Math.max(0, Math.min(1, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  return STOPS[i].map((v, k) => Math.round(v + (STOPS[i + 1][k] - v) * f));
}

const axisNumber = (v) => (v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential(0) : +v.toPrecision(4));

/** uPlot's points.show: the dots only when the chart holds a single x (a line cannot be drawn through it). */
const lone = (_u, _series, i0, i1) => i1 === i0;

/** A small line chart in `el` (uPlot, resized with it): x then one series per entry of `series`. */
export function smallChart(el, series, xLabel) {
  const opts = {
    width: el.clientWidth || 320,
    height: 110,
    scales: { x: { time: false } },
    // no dots on a line, but a lone value (the sharpness just after opening the panel) shows as one
    series: [{ label: xLabel }, ...series.map((s) => ({ points: { show: lone }, width: 1.5, ...s }))],
    axes: [{ size: 28 }, { size: 54, values: (_u, vals) => vals.map(axisNumber) }],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
  const u = new window.uPlot(opts, [[], ...series.map(() => [])], el);
  new ResizeObserver(() => u.setSize({ width: el.clientWidth, height: 110 })).observe(el);
  return u;
}

/** How many decades the slice's positive losses span (log10 of the largest over the smallest). */
export function decades(grid) {
  const v = grid.flat().filter((x) => x != null && x > 0);
  return v.length ? Math.log10(Math.max(...v) / Math.min(...v)) : 0;
}

/** The colour scale of a slice: its lowest loss to a high percentile (97 %), on a log or a linear axis;
`t(v)` is a loss's place on the colour bar (0 bottom, 1 top), `at(t)` the loss at a place. */
export function sliceScale(grid, log) {
  const f = log ? Math.log : (v) => v;
  const g = log ? Math.exp : (v) => v;
  const vals = grid
    .flat()
    .filter((v) => v != null && (!log || v > 0))
    .map(f)
    .sort((a, b) => a - b);
  const lo = vals.length ? vals[0] : 0;
  const hi = vals.length ? vals[Math.floor(0.97 * (vals.length - 1))] : 1;
  const t = (v) => (log && v <= 0 ? 0 : (f(v) - lo) / (hi - lo || 1));
  return { log, lo: g(lo), hi: g(hi), t, at: (x) => g(lo + x * (hi - lo)) };
}

/** The slice's colours, β up (row 0 is β = −span: the bottom); returns the canvas with them. */
function sliceImage(grid, scale) {
  const n = grid.length;
  const small = new OffscreenCanvas(n, n);
  const sctx = small.getContext("2d");
  const img = sctx.createImageData(n, n);
  grid.forEach((row, i) => {
    row.forEach((v, j) => {
      const rgb = v == null ? [255, 255, 255] : colour(scale.t(v));
      img.data.set([...rgb, 255], ((n - 1 - i) * n + j) * 4);
    });
  });
  sctx.putImageData(img, 0, 0);
  return small;
}

/** Cross out the cells that are off scale (null). */
function crossOut(ctx, grid, cw) {
  const n = grid.length;
  ctx.strokeStyle = "#b3261e";
  ctx.lineWidth = 1;
  grid.forEach((row, i) => {
    row.forEach((v, j) => {
      if (v != null) return;
      const x = j * cw;
      const y = (n - 1 - i) * cw;
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.lineTo(x + cw, y + cw);
      ctx.moveTo(x + cw, y);
      ctx.lineTo(x, y + cw);
      ctx.stroke();
    });
  });
}

/** Paint a slice (rows β from −span up, columns α) on `c`, its colours on a log scale unless `log` is false;
returns the scale and the plane → pixel maps. */
export function paintSlice(c, grid, span, log = true) {
  const scale = sliceScale(grid, log);
  const small = sliceImage(grid, scale);
  const ctx = c.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.clearRect(0, 0, c.width, c.height);
  ctx.drawImage(small, 0, 0, c.width, c.height);
  crossOut(ctx, grid, c.width / grid.length);
  const px = (a) => ((a + span) / (2 * span)) * c.width;
  const py = (b) => c.height - ((b + span) / (2 * span)) * c.height;
  return { ctx, scale, px, py };
}

/** A path (alpha, beta lists) as a line from a small disc (its start). */
export function drawPath({ ctx, px, py }, alpha, beta, stroke) {
  ctx.lineWidth = 2;
  ctx.strokeStyle = stroke;
  ctx.beginPath();
  alpha.forEach((a, k) => {
    if (k) ctx.lineTo(px(a), py(beta[k]));
    else ctx.moveTo(px(a), py(beta[k]));
  });
  ctx.stroke();
  ctx.fillStyle = stroke;
  ctx.beginPath();
  if (alpha.length) ctx.arc(px(alpha[0]), py(beta[0]), 4, 0, 2 * Math.PI);
  ctx.fill();
}

/** GET a JSON view; throws the server's reason when it refuses. */
export async function getJSON(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error((await r.json()).detail?.[0]?.msg || `the server answered ${r.status}`);
  return r.json();
}
