// Loss curves (uPlot: values on hover in its legend) and the per-layer gradient-norm strip.

const HEIGHT = 120;
const MAX_POINTS = 2000;

export class LossChart {
  constructor(el) {
    this.el = el;
    this.x = [];
    this.train = [];
    this.test = [];
    this.pending = false;
    const opts = {
      width: el.clientWidth || 320,
      height: HEIGHT,
      scales: { x: { time: false } },
      series: [
        { label: "epoch" },
        { label: "training loss", stroke: "#7d868f", width: 1.5, points: { show: false }, value: (_u, v) => fmt(v) },
        { label: "test loss", stroke: "#1b1f24", width: 1.5, points: { show: false }, value: (_u, v) => fmt(v) },
      ],
      axes: [{ size: 30 }, { size: 46, values: (_u, vals) => vals.map((v) => +v.toPrecision(2)) }],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
    };
    this.u = new window.uPlot(opts, [this.x, this.train, this.test], el);
    new ResizeObserver(() => this.u.setSize({ width: el.clientWidth, height: HEIGHT })).observe(el);
  }

  /** Start from the session's history records ({epoch, train_loss, test_loss}). */
  load(records) {
    this.x.length = this.train.length = this.test.length = 0;
    for (const r of records) this.add(r.epoch, r.train_loss, r.test_loss);
    this.redraw();
  }

  /** A frame: append its losses (a frame at an earlier epoch means a reset: start over). */
  push(h) {
    const last = this.x.length ? this.x[this.x.length - 1] : -1;
    if (h.epoch < last) this.x.length = this.train.length = this.test.length = 0;
    this.add(h.epoch, h.metrics.train_loss, h.metrics.test_loss);
    this.redraw();
  }

  add(epoch, train, test) {
    const n = this.x.length;
    if (n && this.x[n - 1] === epoch) {
      this.train[n - 1] = train;
      this.test[n - 1] = test;
      return;
    }
    this.x.push(epoch);
    this.train.push(train);
    this.test.push(test);
    if (this.x.length > MAX_POINTS) {
      // keep the whole run at half the resolution
      for (const a of [this.x, this.train, this.test]) {
        const kept = a.filter((_, i) => i % 2 === 0 || i === a.length - 1);
        a.length = 0;
        a.push(...kept);
      }
    }
  }

  redraw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.u.setData([this.x, this.train, this.test]);
      // Not hovering: the legend shows the latest values.
      if (this.u.cursor.left == null || this.u.cursor.left < 0) this.u.setLegend({ idx: this.x.length - 1 });
    });
  }
}

const fmt = (v) => (v == null ? "–" : v.toFixed(4));

/** Bars of ‖∂loss/∂θ‖ per layer on a log scale, and a sentence saying whether gradients vanish. `layers`: the
number of each bar's layer (a CNN's layers with weights), default 1, 2, …; the last bar is the output. */
export function drawGrads(canvas, norms, note, diagnosis = [], layers = null) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.round(canvas.clientWidth * dpr), h = Math.round(canvas.clientHeight * dpr);
  if (!w || !h) return;
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const n = norms.length;
  const logs = Array.from(norms, (v) => (v > 0 ? Math.log10(v) : null));
  const finite = logs.filter((v) => v != null && Number.isFinite(v));
  const lo = finite.length ? Math.min(...finite) - 1 : -1, hi = finite.length ? Math.max(...finite) : 0;
  const slot = Math.min(w / n, 90 * dpr);
  ctx.font = `${11 * dpr}px system-ui, sans-serif`;
  ctx.textAlign = "center";
  for (let i = 0; i < n; i++) {
    const x = i * slot + slot / 2;
    const frac = logs[i] == null ? 0 : (logs[i] - lo) / Math.max(hi - lo, 1e-9);
    const bh = frac * (h - 30 * dpr);
    ctx.fillStyle = i === n - 1 ? "#545e69" : "#0877bd";
    ctx.fillRect(x - slot * 0.3, h - 14 * dpr - bh, slot * 0.6, bh);
    ctx.fillStyle = "#1b1f24";
    ctx.fillText(i === n - 1 ? "output" : `layer ${layers ? layers[i] + 1 : i + 1}`, x, h - 2 * dpr);
    ctx.fillText(norms[i] > 0 ? norms[i].toExponential(1) : "0", x, h - 17 * dpr - bh);
  }
  canvas.setAttribute("aria-label", `gradient norm per layer: ${Array.from(norms, (v) => v.toExponential(1)).join(", ")}`);
  // the server's diagnosis (every frame: gradient ratios, dead and saturated units, NaN)
  let text, warn;
  if (n < 2) [text, warn] = ["no hidden layers: nothing for the gradient to pass through.", false];
  else if (diagnosis?.length) [text, warn] = [diagnosis.map((d) => d.message).join(" · "), true];
  else [text, warn] = ["the gradient reaches every layer (no sign of vanishing).", false];
  note.textContent = text;
  note.classList.toggle("warn", warn);
}
