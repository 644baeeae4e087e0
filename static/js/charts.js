// The curves over epochs (uPlot: values on hover in each legend) and the per-layer gradient-norm strip. Three
// charts share the epoch axis and the cursor: the losses, the learning rate under them (the schedule as it
// plays out) and, for classification, the accuracies (0–100 %). The epoch axis can be logarithmic (from epoch
// 1: epoch 0 has no place on it), the loss axis too; the choices are the page's (metrics.js remembers them).
import { chartOptions } from "./metrics.js";

const MAX_POINTS = 2000;
const SYNC = "neuroglass-epochs";
const COLUMNS = ["train_loss", "test_loss", "train_accuracy", "test_accuracy", "learning_rate"];
const HEIGHTS = { loss: 130, lr: 76, flat: 50, acc: 100 };
const TRAIN = "#7d868f", TEST = "#1b1f24", RATE = "#0877bd";

const fmt = (v) => (v == null ? "–" : v.toFixed(4));
const pct = (v) => (v == null ? "–" : `${v.toFixed(1)} %`);
const rate = (v) => (v == null ? "–" : `${+v.toPrecision(3)}`);
const tick = (_u, vals) => vals.map((v) => (v == null ? "" : +v.toPrecision(2)));
const line = (label, stroke, value) => ({ label, stroke, width: 1.5, points: { show: false }, value: (_u, v) => value(v) });

/** uPlot options of one chart: its series, its y scale and axis; the epoch axis as the page chooses. */
function plotOptions(width, height, logX, { series, y, yAxis = {} }) {
  return {
    width,
    height,
    scales: { x: { time: false, distr: logX ? 3 : 1, log: 10 }, y },
    series: [{ label: "epoch" }, ...series],
    axes: [{ size: 26 }, { size: 56, values: tick, ...yAxis }],
    legend: { live: true },
    cursor: { sync: { key: SYNC }, drag: { x: false, y: false } },
  };
}

/** The three charts' series and y scales. */
function chartSpecs(logY) {
  return {
    loss: {
      series: [line("training", TRAIN, fmt), line("test", TEST, fmt)],
      y: logY ? { distr: 3, log: 10 } : {},
    },
    lr: {
      series: [{ ...line("learning rate", RATE, rate), fill: "rgba(8, 119, 189, .12)" }],
      y: { range: (_u, _lo, hi) => [0, hi > 0 ? hi * 1.1 : 1] },
      // the rate, and 0 when there is room (a constant rate is a thin line: its value only)
      yAxis: { ticks: { show: false }, splits: (u, _i, _lo, hi) => (u.height < HEIGHTS.lr ? [hi / 1.1] : [0, hi / 1.1]) },
    },
    acc: {
      series: [line("training", TRAIN, pct), line("test", TEST, pct)],
      y: { range: [0, 100] },
      yAxis: { values: (_u, vals) => vals.map((v) => `${v} %`), splits: () => [0, 50, 100] },
    },
  };
}

export class LossChart {
  /** `el`: the loss chart; the learning-rate strip (#lr-chart) and the accuracy chart (#acc-chart) beside it. */
  constructor(el) {
    this.els = { loss: el, lr: document.getElementById("lr-chart"), acc: document.getElementById("acc-chart") };
    this.accBlock = document.getElementById("acc-block");
    this.x = [];
    this.cols = Object.fromEntries(COLUMNS.map((c) => [c, []]));
    this.classification = null; // known from the first record that has a loss
    this.pending = false;
    this.plots = {};
    this.options = chartOptions(() => this.build());
    this.build();
    new ResizeObserver(() => this.resize()).observe(el);
  }

  /** (Re)make the charts for the chosen scales, with the data they already have. */
  build() {
    for (const u of Object.values(this.plots)) u.destroy();
    this.plots = {};
    const specs = chartSpecs(this.options.logY);
    const width = this.els.loss.clientWidth || 320;
    for (const [name, el] of Object.entries(this.els)) {
      if (!el) continue;
      const opts = plotOptions(width, this.height(name), this.options.logX, specs[name]);
      this.plots[name] = new window.uPlot(opts, this.view()[name], el);
    }
    this.showAccuracy();
    this.redraw();
  }

  resize() {
    const width = this.els.loss.clientWidth;
    if (!width) return;
    for (const [name, u] of Object.entries(this.plots)) u.setSize({ width, height: this.height(name) });
  }

  /** A chart's height: the learning-rate strip is a thin line while the rate stays the same. */
  height(name) {
    return name === "lr" && this.els.lr?.dataset.constant === "true" ? HEIGHTS.flat : HEIGHTS[name];
  }

  /** Start from the session's history records ({epoch, learning_rate, train_loss, …}). */
  load(records) {
    this.clear();
    for (const r of records) this.add(r.epoch, r);
    this.redraw();
  }

  /** A frame: append its metrics and learning rate (a frame at an earlier epoch means a reset: start over). */
  push(h) {
    const last = this.x.length ? this.x[this.x.length - 1] : -1;
    if (h.epoch < last) this.clear();
    this.add(h.epoch, { ...h.metrics, learning_rate: h.learning_rate_now });
    this.redraw();
  }

  clear() {
    this.x.length = 0;
    for (const a of Object.values(this.cols)) a.length = 0;
  }

  add(epoch, record) {
    if (record.train_loss != null || record.test_loss != null) {
      const classification = record.test_accuracy != null || record.train_accuracy != null;
      if (classification !== this.classification) {
        this.classification = classification;
        this.showAccuracy();
      }
    }
    const n = this.x.length;
    const i = n && this.x[n - 1] === epoch ? n - 1 : n;
    this.x[i] = epoch;
    for (const c of COLUMNS) this.cols[c][i] = record[c] ?? null;
    if (this.x.length > MAX_POINTS) this.thin();
  }

  /** Keep the whole run at half the resolution. */
  thin() {
    for (const a of [this.x, ...Object.values(this.cols)]) {
      const kept = a.filter((_, i) => i % 2 === 0 || i === a.length - 1);
      a.length = 0;
      a.push(...kept);
    }
  }

  /** The accuracy chart: for classification, when chosen (its checkbox is offered for classification only). */
  showAccuracy() {
    const regression = this.classification === false;
    if (this.accBlock) this.accBlock.hidden = regression || !this.options.acc;
    const toggle = document.getElementById("show-acc")?.closest("label");
    if (toggle) toggle.hidden = regression;
    if (this.accBlock && !this.accBlock.hidden) queueMicrotask(() => this.resize());
  }

  /** What each chart plots: from epoch 1 on a log epoch axis, losses above 0 on a log loss axis. */
  view() {
    const from = this.options.logX ? Math.max(0, this.x.findIndex((e) => e >= 1)) : 0;
    const none = this.options.logX && !this.x.some((e) => e >= 1);
    const cut = (a) => (none ? [] : a.slice(from));
    const c = this.cols;
    const positive = (a) => (this.options.logY ? a.map((v) => (v > 0 ? v : null)) : a);
    const pctOf = (a) => a.map((v) => (v == null ? null : 100 * v));
    const x = cut(this.x);
    return {
      loss: [x, positive(cut(c.train_loss)), positive(cut(c.test_loss))],
      lr: [x, cut(c.learning_rate)],
      acc: [x, pctOf(cut(c.train_accuracy)), pctOf(cut(c.test_accuracy))],
    };
  }

  redraw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      const data = this.view();
      for (const [name, u] of Object.entries(this.plots)) {
        u.setData(data[name]);
        // Not hovering: the legend shows the latest values.
        if (u.cursor.left == null || u.cursor.left < 0) u.setLegend({ idx: data[name][0].length - 1 });
      }
      this.describe(data);
    });
  }

  /** What the charts show, on their elements (the scales in use, the rates drawn). */
  describe(data) {
    const { loss, lr } = this.plots;
    this.els.loss.dataset.xDistr = String(loss.scales.x.distr);
    this.els.loss.dataset.yDistr = String(loss.scales.y.distr);
    this.els.loss.dataset.firstEpoch = data.loss[0].length ? String(data.loss[0][0]) : "";
    if (lr) {
      const rates = data.lr[1].filter((v) => v != null);
      const distinct = [...new Set(rates)];
      this.els.lr.dataset.rates = distinct.join(" ");
      const constant = String(distinct.length <= 1);
      if (this.els.lr.dataset.constant !== constant) {
        this.els.lr.dataset.constant = constant;
        lr.setSize({ width: lr.width, height: this.height("lr") });
      }
      const now = rates.length ? rates[rates.length - 1] : null;
      this.els.lr.setAttribute("aria-label", `learning rate over epochs; now ${rate(now)}`);
    }
  }
}

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
