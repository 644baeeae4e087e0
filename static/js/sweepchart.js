// The final test loss against one swept field (uPlot): a line per combination of the other swept fields (up
// to six; more are pooled into one), its mean over the seeds with their spread (min–max) as a band when a seed
// is swept. The x axis is logarithmic when the values span more than a decade and are all above 0; a field
// of words or architectures is an axis of categories.
import { distinct, nameOf, numeric, valueText, wantsLog } from "./sweepfmt.js";

const SEEDS = new Set(["seed", "dataset.seed"]);
const COLOURS = ["#1b1f24", "#0877bd", "#c05600", "#7b3294", "#1e6b32", "#8a6d00"];
const MAX_LINES = 6;

const finite = (v) => v != null && Number.isFinite(v);

/** For each x, the mean, min and max of the finite test losses of `members` (null where none). */
function stats(members, path, xs) {
  const out = { mean: [], min: [], max: [], n: 0 };
  for (const x of xs) {
    const key = JSON.stringify(x);
    const losses = members.filter((c) => JSON.stringify(c.params[path]) === key).map((c) => c.final?.test_loss).filter(finite);
    out.n = Math.max(out.n, losses.length);
    out.mean.push(losses.length ? losses.reduce((a, b) => a + b, 0) / losses.length : null);
    out.min.push(losses.length ? Math.min(...losses) : null);
    out.max.push(losses.length ? Math.max(...losses) : null);
  }
  return out;
}

/** The lines: configurations grouped by the other non-seed fields (pooled into one past MAX_LINES). */
function lines(configs, swept, path) {
  const others = swept.filter((p) => p !== path && !SEEDS.has(p));
  const groups = new Map();
  for (const c of configs) {
    const key = others.map((p) => `${nameOf(p)} ${valueText(c.params[p])}`).join(" · ");
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(c);
  }
  if (groups.size > MAX_LINES) return { pooled: true, groups: [["all configurations", configs]] };
  return { pooled: false, groups: [...groups.entries()].map(([k, v]) => [k || "test loss", v]) };
}

export class SweepChart {
  constructor(el, select, note) {
    this.el = el;
    this.select = select;
    this.note = note;
    this.plot = null;
    this.signature = "";
    select.addEventListener("change", () => this.draw(true));
    new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: this.plot.height })).observe(el);
  }

  width() {
    return Math.max(240, this.el.clientWidth);
  }

  build(configs, swept) {
    this.configs = configs;
    this.swept = swept;
    this.select.replaceChildren(
      ...swept.map((p) => {
        const o = document.createElement("option");
        o.value = p;
        o.textContent = nameOf(p);
        return o;
      }),
    );
    this.select.value = swept.find((p) => !SEEDS.has(p)) || swept[0];
    this.select.disabled = swept.length < 2;
  }

  update(configs) {
    this.configs = configs;
    this.draw(false);
  }

  /** The uPlot data and series of the chosen field. */
  model() {
    const path = this.select.value;
    const xs = distinct(this.configs, path);
    const isNumber = numeric(xs);
    const x = isNumber ? xs : xs.map((_, i) => i);
    const seeded = this.swept.some((p) => SEEDS.has(p) && p !== path);
    const { pooled, groups } = lines(this.configs, this.swept, path);
    const data = [x], series = [{ label: nameOf(path), value: (_u, v) => (v == null ? "–" : isNumber ? valueText(v) : valueText(xs[v])) }];
    const bands = [];
    groups.forEach(([name, members], i) => {
      const s = stats(members, path, xs);
      const colour = COLOURS[i % COLOURS.length];
      data.push(s.mean);
      series.push({ label: pooled || seeded ? `${name} (mean)` : name, stroke: colour, width: 2, spanGaps: true, points: { show: true, size: 6 } });
      if ((seeded || pooled) && s.n > 1) {
        data.push(s.min, s.max);
        series.push({ label: "min", stroke: "transparent", points: { show: false } }, { label: "max", stroke: "transparent", points: { show: false } });
        bands.push({ series: [series.length - 1, series.length - 2], fill: `${colour}26` });
      }
    });
    return { path, xs, isNumber, data, series, bands, seeded, pooled };
  }

  draw(force) {
    if (!this.configs?.length || !this.swept?.length) return;
    const m = this.model();
    const signature = JSON.stringify(m.data);
    if (!force && signature === this.signature) return;
    this.signature = signature;
    const logX = m.isNumber && wantsLog(m.xs);
    const ys = m.data.slice(1).flat().filter(finite);
    const logY = ys.length > 1 && wantsLog(ys);
    this.plot?.destroy();
    this.plot = new window.uPlot(this.options(m, logX, logY), m.data, this.el);
    const words = [];
    if (m.seeded || m.pooled) words.push(`the band is the spread (min–max) ${m.pooled ? "over the other fields" : "over the seeds"} around the mean`);
    if (logX) words.push(`${nameOf(m.path)} on a log axis`);
    if (logY) words.push("loss on a log axis");
    this.note.textContent = words.length ? `${words.join("; ")}.` : "";
    this.legend(m);
    this.el.dataset.logX = logX;
    this.el.dataset.bands = m.bands.length;
  }

  /** The lines' names and colours under the chart (the bands' edges need none). */
  legend(m) {
    const items = m.series.slice(1).filter((s) => s.stroke !== "transparent").map((s) => {
      const li = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = s.stroke;
      li.append(swatch, s.label);
      return li;
    });
    document.getElementById("chart-legend").replaceChildren(...items);
  }

  options(m, logX, logY) {
    // ticks at the swept values themselves (the grid's points), whatever the scale
    const labels = (_u, vals) => vals.map((v) => (v == null ? "" : m.isNumber ? valueText(v) : valueText(m.xs[v])));
    const xAxis = { label: nameOf(m.path), size: 40, labelSize: 16, values: labels, splits: () => m.data[0], filter: (_u, splits) => splits };
    return {
      width: this.width(),
      height: 240,
      scales: {
        x: logX ? { time: false, distr: 3, log: 10 } : { time: false, range: m.isNumber ? undefined : [-0.5, m.xs.length - 0.5] },
        y: logY ? { distr: 3, log: 10 } : {},
      },
      series: m.series,
      bands: m.bands,
      axes: [xAxis, { label: "final test loss", size: 56, labelSize: 16, values: (_u, vals) => vals.map((v) => (v == null ? "" : +v.toPrecision(2))) }],
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
    };
  }
}
