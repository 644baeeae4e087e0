// Parallel coordinates (as TensorBoard's HParams): a vertical axis per swept field and one for the final test
// loss, a line per configuration coloured by its test loss. Dragging along an axis brushes a range of it (a
// click clears it): the lines outside every brush fade, and the other views hear which configurations are
// kept; hovering a line highlights its configuration everywhere.
import { distinct, lossText, nameOf, numeric, valueText, wantsLog } from "./sweepfmt.js";

const SVG = "http://www.w3.org/2000/svg";
const HEIGHT = 270, TOP = 48, BOTTOM = 22, SIDE = 46, NONE_GAP = 14;
const LOSS = "final test loss";

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  parent?.append(node);
  return node;
}

/** An axis: how a value maps to a height (null values above the top, in the "none" slot) and its ticks. */
function axis(name, values) {
  const known = values.filter((v) => v != null && (typeof v !== "number" || Number.isFinite(v)));
  const bottom = HEIGHT - BOTTOM;
  if (!numeric(known)) {
    const cats = [...new Map(known.map((v) => [JSON.stringify(v), v])).values()];
    const step = (bottom - TOP) / Math.max(1, cats.length - 1);
    const y = (v) => (v == null ? TOP - NONE_GAP : cats.length === 1 ? (TOP + bottom) / 2 : bottom - step * cats.findIndex((c) => JSON.stringify(c) === JSON.stringify(v)));
    return { name, y, ticks: cats.map((c) => [y(c), valueText(c)]) };
  }
  const lo = Math.min(...known), hi = Math.max(...known);
  const log = wantsLog(known);
  const f = (v) => (log ? Math.log10(v) : v);
  const y = (v) => (v == null || !Number.isFinite(v) ? TOP - NONE_GAP : hi === lo ? (TOP + bottom) / 2 : bottom - ((f(v) - f(lo)) / (f(hi) - f(lo))) * (bottom - TOP));
  const show = name === LOSS ? lossText : valueText;
  const seen = [...new Set(known)];
  const marks = seen.length > 6 ? [lo, log ? 10 ** ((f(lo) + f(hi)) / 2) : (lo + hi) / 2, hi] : seen;
  return { name, y, log, ticks: marks.map((v) => [y(v), show(v)]) };
}

export class ParCoords {
  constructor(svg, status, clear, hooks) {
    this.svg = svg;
    this.status = status;
    this.clear = clear;
    this.hooks = hooks;
    this.brushes = new Map(); // axis index → [y0, y1]
    this.configs = [];
    clear.addEventListener("click", () => {
      this.brushes.clear();
      this.draw();
      this.apply();
    });
    new ResizeObserver(() => this.draw()).observe(svg.parentElement);
  }

  build(configs, swept) {
    this.swept = swept;
    this.configs = configs;
    this.brushes.clear();
  }

  update(configs, scale) {
    this.configs = configs;
    this.scale = scale;
    this.draw();
    this.apply();
  }

  /** The axes (fields, then the loss) and each configuration's height on each. */
  layout() {
    const fields = this.swept.map((p) => axis(nameOf(p), distinct(this.configs, p).length ? this.configs.map((c) => c.params[p]) : []));
    const loss = axis(LOSS, this.configs.map((c) => c.final?.test_loss ?? null));
    const axes = [...fields, loss];
    const width = Math.max(260, this.svg.parentElement.clientWidth);
    const gap = (width - 2 * SIDE) / Math.max(1, axes.length - 1);
    axes.forEach((a, i) => {
      a.x = axes.length === 1 ? width / 2 : SIDE + i * gap;
    });
    const get = [...this.swept.map((p) => (c) => c.params[p]), (c) => c.final?.test_loss ?? null];
    this.heights = new Map(this.configs.map((c) => [c.index, axes.map((a, i) => a.y(get[i](c)))]));
    return { axes, width };
  }

  draw() {
    if (!this.swept || !this.configs.length) return;
    const { axes, width } = this.layout();
    this.axes = axes;
    this.svg.setAttribute("width", width);
    this.svg.setAttribute("height", HEIGHT);
    const focused = this.svg.contains(document.activeElement) ? document.activeElement.dataset.axis : null;
    this.svg.replaceChildren();
    const lines = el("g", { class: "pc-lines" }, this.svg);
    // a configuration that has not trained yet has no line; one without a finite loss ends in the "none" slot
    for (const c of this.configs) if (c.final || c.status === "diverged") this.line(c, lines, axes);
    axes.forEach((a, i) => {
      this.axisEl(a, i);
    });
    this.highlight(this.hot);
    if (focused != null) this.svg.querySelector(`.pc-axis[data-axis="${focused}"]`)?.focus();
  }

  line(c, parent, axes) {
    const ys = this.heights.get(c.index);
    const d = axes.map((a, i) => `${i ? "L" : "M"}${a.x.toFixed(1)},${ys[i].toFixed(1)}`).join("");
    const g = el("g", { class: "pc-line", "data-index": c.index, "data-status": c.status }, parent);
    el("path", { d, class: "pc-stroke", stroke: this.scale?.of(c.final?.test_loss) || "#9aa3ab" }, g);
    el("path", { d, class: "pc-hit" }, g);
    g.addEventListener("pointerenter", () => this.hooks.hover(c.index));
    g.addEventListener("pointerleave", () => this.hooks.hover(null));
  }

  axisEl(a, i) {
    const keys = "↑ ↓ keep one value, with Shift more, Escape clears";
    const g = el("g", { class: "pc-axis", "data-axis": i, tabindex: 0, role: "group", "aria-label": `${a.name} axis: ${keys}` }, this.svg);
    g.addEventListener("keydown", (e) => this.key(e, i));
    el("line", { x1: a.x, x2: a.x, y1: TOP, y2: HEIGHT - BOTTOM }, g);
    // the outer names run inwards from the edges (so they are never cut off); the others alternate rows
    const last = i === this.axes.length - 1;
    const anchor = i === 0 ? "start" : last ? "end" : "middle";
    const x = i === 0 ? 2 : last ? a.x + SIDE - 2 : a.x;
    const title = el("text", { x, y: i % 2 ? 30 : 14, class: "pc-name", "text-anchor": anchor }, g);
    title.textContent = a.name + (a.log ? " (log)" : "");
    for (const [y, text] of a.ticks) {
      el("line", { x1: a.x - 3, x2: a.x, y1: y, y2: y, class: "pc-tick" }, g);
      const t = el("text", { x: a.x - 5, y: y + 3, class: "pc-tick-label", "text-anchor": "end" }, g);
      t.textContent = text;
    }
    if (i === this.axes.length - 1 && this.configs.some((c) => c.final && c.final.test_loss == null)) {
      const none = el("text", { x: a.x - 5, y: TOP - NONE_GAP + 3, class: "pc-tick-label", "text-anchor": "end" }, g);
      none.textContent = "✕ none";
    }
    const b = this.brushes.get(i);
    if (b) el("rect", { x: a.x - 7, y: b[0], width: 14, height: Math.max(1, b[1] - b[0]), class: "pc-brush" }, g);
    const hit = el("rect", { x: a.x - 14, y: TOP - NONE_GAP - 6, width: 28, height: HEIGHT - BOTTOM - TOP + NONE_GAP + 12, class: "pc-hit-axis" }, g);
    hit.addEventListener("pointerdown", (e) => this.brushStart(e, i));
  }

  /** Drag along axis `i`: the brush follows the pointer; a click (no drag) clears it. */
  brushStart(e, i) {
    e.preventDefault();
    const top = this.svg.getBoundingClientRect().top;
    const y0 = e.clientY - top;
    let moved = false;
    const move = (ev) => {
      const y1 = ev.clientY - top;
      if (Math.abs(y1 - y0) < 3 && !moved) return;
      moved = true;
      this.brushes.set(i, [Math.min(y0, y1), Math.max(y0, y1)]);
      this.draw();
      this.apply();
    };
    const up = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
      if (!moved) this.brushes.delete(i);
      this.draw();
      this.apply();
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }

  /** The keyboard's brush on axis `i`: ↑ / ↓ keep the next value up or down (Shift: add it), Escape clears. */
  key(e, i) {
    const ticks = this.axes[i].ticks.map(([y]) => y).sort((a, b) => b - a); // from the bottom up
    const b = this.brushes.get(i);
    if (e.key === "Escape" || e.key === "Delete") {
      this.brushes.delete(i);
    } else if (e.key === "ArrowUp" || e.key === "ArrowDown") {
      const step = e.key === "ArrowUp" ? 1 : -1;
      const at = b && this.keyTick?.[0] === i ? this.keyTick[1] : step > 0 ? -1 : ticks.length;
      const next = Math.max(0, Math.min(ticks.length - 1, at + step));
      const y = ticks[next];
      this.brushes.set(i, e.shiftKey && b ? [Math.min(b[0], y - 6), Math.max(b[1], y + 6)] : [y - 6, y + 6]);
      this.keyTick = [i, next];
    } else {
      return;
    }
    e.preventDefault();
    this.draw();
    this.apply();
  }

  /** Which configurations lie inside every brush; the others fade, and the views hear it. */
  apply() {
    let kept = null;
    if (this.brushes.size) {
      kept = new Set();
      for (const [k, ys] of this.heights) {
        if ([...this.brushes].every(([i, [y0, y1]]) => ys[i] >= y0 - 2 && ys[i] <= y1 + 2)) kept.add(k);
      }
    }
    for (const g of this.svg.querySelectorAll(".pc-line")) g.classList.toggle("out", !!kept && !kept.has(+g.dataset.index));
    this.clear.disabled = !kept;
    const n = this.configs.length;
    this.status.textContent = kept ? `${kept.size} of ${n} configurations inside the brushed ranges` : `${n} configurations`;
    this.hooks.filter(kept);
  }

  highlight(k) {
    this.hot = k;
    for (const g of this.svg.querySelectorAll(".pc-line")) {
      const on = +g.dataset.index === k;
      g.classList.toggle("hot", on);
      if (on) g.parentElement.append(g); // drawn last: on top of the others
    }
  }
}
