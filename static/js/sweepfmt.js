// What the sweep's parts share: swept values and metrics in words, the test-loss colour of a tile's border
// and of a line, and the names of the fields.

/** Short names of the swept fields (the dotted path when unknown). */
export const NAMES = {
  "training.learning_rate": "learning rate",
  "training.momentum": "momentum",
  "training.regularization_rate": "reg. rate",
  "training.dropout": "dropout",
  "training.batch_size": "batch size",
  "training.optimizer": "optimizer",
  "training.regularization": "regularization",
  "training.loss": "loss",
  seed: "weight seed",
  "dataset.seed": "data seed",
  "dataset.noise": "noise",
  "dataset.train_percent": "train %",
  "network.hidden": "hidden units",
};
export const nameOf = (path) => NAMES[path] || path;

/** A swept value in a few characters: 0.003, 1e-5, "sgd", an architecture as "4,2" (none: "no hidden layer"). */
export function valueText(v) {
  if (typeof v === "number") return Math.abs(v) >= 1e-3 || v === 0 ? `${+v.toPrecision(4)}` : v.toExponential(1);
  if (Array.isArray(v)) {
    if (!v.length) return "none";
    return v.map((layer) => (typeof layer === "object" ? layer.units : layer)).join(",");
  }
  return String(v);
}

export const lossText = (v) => (v == null ? "–" : v < 1e-3 ? v.toExponential(2) : v.toFixed(4));
export const pctText = (v) => (v == null ? "–" : `${(100 * v).toFixed(1)} %`);

/** "lr 0.03 · seed 1": a configuration's swept values. */
export const label = (c, swept) => swept.map((p) => `${nameOf(p)} ${valueText(c.params[p])}`).join(" · ");

const GOOD = [30, 107, 50], BAD = [179, 38, 30], MIDDLE = [200, 170, 40];
const mix = (a, b, t) => a.map((v, i) => Math.round(v + (b[i] - v) * t));

/** The test-loss colour scale of these configurations: green the lowest, amber, red the highest (log spaced
 *  when they span more than a decade). `of(loss)` → css colour, or null without a finite loss. */
export function lossScale(configs) {
  const losses = configs.map((c) => c.final?.test_loss).filter((v) => v != null && Number.isFinite(v));
  const lo = Math.min(...losses), hi = Math.max(...losses);
  const log = lo > 0 && hi / lo > 10;
  const f = (v) => (log ? Math.log(v) : v);
  const of = (v) => {
    if (v == null || !Number.isFinite(v) || !losses.length) return null;
    const t = hi > lo ? (f(v) - f(lo)) / (f(hi) - f(lo)) : 0;
    const rgb = t < 0.5 ? mix(GOOD, MIDDLE, t * 2) : mix(MIDDLE, BAD, (t - 0.5) * 2);
    return `rgb(${rgb.join(",")})`;
  };
  return { of, lo: losses.length ? lo : null, hi: losses.length ? hi : null, log };
}

/** Whether a field's values are numbers (a numeric axis), else categories in order of appearance. */
export const numeric = (values) => values.every((v) => typeof v === "number");

/** The distinct values of a field over the configurations, sorted when numeric. */
export function distinct(configs, path) {
  const seen = new Map();
  for (const c of configs) seen.set(JSON.stringify(c.params[path]), c.params[path]);
  const values = [...seen.values()];
  return numeric(values) ? values.sort((a, b) => a - b) : values;
}

/** Whether a numeric axis reads better logarithmic: every value > 0 and more than a decade between them. */
export const wantsLog = (values) => values.length > 1 && values.every((v) => v > 0) && Math.max(...values) / Math.min(...values) > 10;

/** Statuses whose weights can be opened as a session. */
export const OPENABLE = new Set(["done", "stopped", "diverged"]);
