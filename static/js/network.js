// The network diagram: the server renders the nodes (#network-form); this paints each neuron's live map,
// draws the links between nodes as SVG paths coloured and thickened by weight, and opens the weight editor
// when a link or a bias is clicked.
import { cssOf, paintBytes, paintClasses, paintProbability } from "./colors.js";

const SVG = "http://www.w3.org/2000/svg";
const DOMAIN = 6;
// A network wider than its panel is drawn smaller down to this zoom; below it the panel scrolls and says so.
const MIN_ZOOM = 0.5;

// The seven inputs are fixed functions of (x1, x2): drawn once, scaled into [−1, 1] by their largest value.
const FEATURES = {
  x1: (a) => a / DOMAIN,
  x2: (_a, b) => b / DOMAIN,
  x1_sq: (a) => (a * a) / (DOMAIN * DOMAIN),
  x2_sq: (_a, b) => (b * b) / (DOMAIN * DOMAIN),
  x1x2: (a, b) => (a * b) / (DOMAIN * DOMAIN),
  sin_x1: (a) => Math.sin(a),
  sin_x2: (_a, b) => Math.sin(b),
};

/** Bytes (side × side) of a feature over the plane; row 0 is the top (x2 = +6). */
export function featureBytes(name, side = 25) {
  const f = FEATURES[name];
  const out = new Uint8Array(side * side);
  for (let r = 0; r < side; r++) {
    const x2 = DOMAIN - ((r + 0.5) * 2 * DOMAIN) / side;
    for (let c = 0; c < side; c++) {
      const x1 = -DOMAIN + ((c + 0.5) * 2 * DOMAIN) / side;
      const v = Math.max(-1, Math.min(1, f(x1, x2)));
      out[r * side + c] = Math.round(((v + 1) / 2) * 255);
    }
  }
  return out;
}

const fmt = (v) => (Math.abs(v) >= 100 || (Math.abs(v) < 0.001 && v !== 0) ? v.toExponential(2) : v.toFixed(3));

export class Network {
  /**
   * @param {HTMLElement} wrap   persistent container (#network-wrap) holding the svg and the swapped form
   * @param {{readonly: boolean, onInspect: Function, onEdit: Function}} opts
   */
  constructor(wrap, opts) {
    this.wrap = wrap;
    this.svg = wrap.querySelector("svg.links");
    this.tip = document.getElementById("link-tip");
    this.opts = opts;
    this.frame = null;
    this.links = []; // per layer: {paths: [{vis, hit}], rows, cols}
    new ResizeObserver(() => this.layout()).observe(wrap);
    window.addEventListener("resize", () => this.layout());
  }

  /** Find the nodes of the (re-)rendered form, draw the fixed input maps, lay the links out. */
  scan() {
    const form = this.wrap.querySelector("#network-form");
    if (!form) return;
    if (form === this.form) return this.layout();
    this.form = form;
    const inputs = [...form.querySelectorAll("canvas[data-input]")];
    inputs.sort((a, b) => a.dataset.input - b.dataset.input);
    const hidden = [];
    for (const c of form.querySelectorAll("canvas[data-layer]:not([data-output])")) {
      const layer = +c.dataset.layer;
      hidden[layer] ||= [];
      hidden[layer][+c.dataset.unit] = c;
    }
    this.columns = [inputs, ...hidden, [...form.querySelectorAll("canvas[data-output]")]];
    this.hidden = hidden;
    this.biases = [...form.querySelectorAll("button.bias")];
    for (const c of form.querySelectorAll("canvas[data-feature]")) {
      paintBytes(c, featureBytes(c.dataset.feature), 25);
      this.hover(c, () => ({ feature: c.dataset.feature, label: `input ${c.parentElement.textContent.trim()}` }));
    }
    hidden.forEach((layer, i) => {
      layer.forEach((c, j) => {
        const index = hidden.slice(0, i).reduce((n, l) => n + l.length, 0) + j;
        this.hover(c, () => ({ neuron: index, label: `neuron ${j + 1} of hidden layer ${i + 1}` }));
      });
    });
    for (const b of this.biases) {
      b.addEventListener("click", (e) => this.editBias(b, e));
      b.addEventListener("mouseenter", () => this.showTip(b, this.biasText(b)));
      b.addEventListener("focus", () => this.showTip(b, this.biasText(b)));
      b.addEventListener("mouseleave", () => this.hideTip());
      b.addEventListener("blur", () => this.hideTip());
    }
    this.layout();
    if (this.frame) this.paint(this.frame);
  }

  hover(el, what) {
    const show = () => this.opts.onInspect(what());
    const hide = () => this.opts.onInspect(null);
    el.addEventListener("mouseenter", show);
    el.addEventListener("focus", show);
    el.addEventListener("mouseleave", hide);
    el.addEventListener("blur", hide);
  }

  /** Fit the diagram to the panel's width: compact column heads first, then a smaller zoom (TF Playground
   *  shrinks its network too); a network still too wide at MIN_ZOOM scrolls inside the panel, with a note. */
  fit() {
    const cols = this.form?.querySelector(".columns");
    if (!cols) return;
    const room = this.wrap.clientWidth - 2;
    cols.style.zoom = "";
    this.form.classList.remove("compact");
    if (cols.offsetWidth > room) this.form.classList.add("compact");
    const zoom = Math.max(MIN_ZOOM, Math.min(1, room / cols.offsetWidth));
    if (zoom < 1) cols.style.zoom = zoom.toFixed(3);
    const note = this.form.querySelector(".scroll-note");
    if (note) note.hidden = cols.offsetWidth * zoom <= room + 0.5;
  }

  /** Place one path per weight between the right edge of each source and the left edge of each target. */
  layout() {
    if (!this.columns) return;
    this.fit();
    const box = this.wrap.getBoundingClientRect();
    const at = (el, side) => {
      const r = el.getBoundingClientRect();
      return [
        (side === "right" ? r.right : r.left) - box.left + this.wrap.scrollLeft,
        r.top + r.height / 2 - box.top + this.wrap.scrollTop,
      ];
    };
    this.svg.setAttribute("width", this.wrap.scrollWidth);
    this.svg.setAttribute("height", this.wrap.scrollHeight);
    this.svg.replaceChildren();
    const visible = document.createElementNS(SVG, "g");
    const hits = document.createElementNS(SVG, "g");
    this.svg.append(visible, hits);
    this.links = [];
    for (let i = 0; i + 1 < this.columns.length; i++) {
      const src = this.columns[i], dst = this.columns[i + 1];
      const layer = { rows: src.length, cols: dst.length, paths: [] };
      src.forEach((s, r) => {
        const [x1, y1] = at(s, "right");
        dst.forEach((t, c) => {
          const [x2, y2] = at(t, "left");
          const mx = (x1 + x2) / 2;
          const d = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
          const { vis, hit } = this.linkPaths(d, i, r, c);
          visible.append(vis);
          hits.append(hit);
          layer.paths.push({ vis, hit });
        });
      });
      this.links.push(layer);
    }
    this.listenLinks(hits);
    if (this.frame) this.paintLinks(this.frame);
  }

  /** The two paths of one weight: the visible line and a wider, invisible one to hover, click or focus. */
  linkPaths(d, i, r, c) {
    const vis = document.createElementNS(SVG, "path");
    vis.setAttribute("d", d);
    vis.setAttribute("class", "vis");
    vis.setAttribute("stroke", "#c8cdd2");
    vis.setAttribute("stroke-width", "1");
    const hit = document.createElementNS(SVG, "path");
    hit.setAttribute("d", d);
    hit.setAttribute("class", "hit");
    hit.dataset.layer = i;
    hit.dataset.row = r;
    hit.dataset.col = c;
    hit.dataset.label = this.linkLabel(i, r, c);
    if (!this.opts.readonly) {
      hit.setAttribute("tabindex", "0");
      hit.setAttribute("role", "button");
      hit.setAttribute("aria-label", `weight ${hit.dataset.label}: press Enter to type a new value`);
    }
    return { vis, hit };
  }

  /** Hover or focus a link: its weight; click it or press Enter on it: type a new one. */
  listenLinks(hits) {
    hits.addEventListener("mouseover", (e) => e.target.dataset.layer && this.showTip(e.target, this.weightText(e.target)));
    hits.addEventListener("focusin", (e) => e.target.dataset.layer && this.showTip(e.target, this.weightText(e.target)));
    hits.addEventListener("mouseout", () => this.hideTip());
    hits.addEventListener("focusout", () => this.hideTip());
    hits.addEventListener("click", (e) => e.target.dataset.layer && this.editWeight(e.target, e));
    hits.addEventListener("keydown", (e) => {
      if ((e.key === "Enter" || e.key === " ") && e.target.dataset.layer) {
        e.preventDefault();
        this.editWeight(e.target, e);
      }
    });
  }

  linkLabel(i, r, c) {
    const name = (col, k) => {
      if (col === 0) return `input ${this.columns[0][k]?.dataset.feature ?? k + 1}`;
      if (col === this.columns.length - 1) return this.columns[col].length > 1 ? `output ${k}` : "the output";
      return `neuron ${k + 1} of layer ${col}`;
    };
    return `from ${name(i, r)} to ${name(i + 1, c)}`;
  }

  value(name, index) {
    const a = this.frame?.arrays[name];
    if (!a) return null;
    const flat = a.shape.length === 2 ? index[0] * a.shape[1] + index[1] : index[0];
    return a.data[flat];
  }

  weightText(hit) {
    const v = this.value(`w${hit.dataset.layer}`, [+hit.dataset.row, +hit.dataset.col]);
    const edit = this.opts.readonly ? "" : " — click to change";
    return v == null ? hit.dataset.label : `weight ${fmt(v)} (${hit.dataset.label})${edit}`;
  }

  biasText(b) {
    const v = this.value(`b${b.dataset.layer}`, [+b.dataset.unit]);
    return v == null ? "bias" : `bias ${fmt(v)}${this.opts.readonly ? "" : " — click to change"}`;
  }

  showTip(el, text) {
    const r = el.getBoundingClientRect();
    this.tip.textContent = text;
    this.tip.hidden = false;
    const room = document.documentElement.clientWidth - this.tip.offsetWidth - 8;
    this.tip.style.left = `${Math.max(8, Math.min(r.left + r.width / 2 - this.tip.offsetWidth / 2, room)) + window.scrollX}px`;
    this.tip.style.top = `${r.top + window.scrollY - this.tip.offsetHeight - 6}px`;
  }

  hideTip() {
    this.tip.hidden = true;
  }

  editWeight(hit, event) {
    this.hideTip();
    if (this.opts.readonly) return;
    const index = [+hit.dataset.row, +hit.dataset.col];
    const layer = +hit.dataset.layer;
    this.opts.onEdit({
      layer, param: "w", index, value: this.value(`w${layer}`, index),
      label: `weight ${hit.dataset.label}`, x: event.pageX ?? null, y: event.pageY ?? null, from: hit,
    });
  }

  editBias(b, event) {
    this.hideTip();
    if (this.opts.readonly) return;
    const layer = +b.dataset.layer, index = [+b.dataset.unit];
    this.opts.onEdit({
      layer, param: "b", index, value: this.value(`b${layer}`, index),
      label: b.getAttribute("aria-label").replace(/:.*/, ""), x: event.pageX || null, y: event.pageY || null, from: b,
    });
  }

  /** A frame arrived: neuron maps, output units, links, biases. Parts whose shape no longer matches the
   *  diagram (the frame predates an architecture change) wait for the next frame. */
  paint(frame) {
    this.frame = frame;
    if (!this.columns) return;
    const { header: h, arrays: a } = frame;
    const sizes = this.hidden.map((l) => l.length);
    if (a.neurons && h.layers.length === sizes.length && h.layers.every((u, i) => u === sizes[i])) {
      const side = h.neuron_resolution;
      let k = 0;
      for (const layer of this.hidden) {
        for (const c of layer) {
          paintBytes(c, a.neurons.data, side, k * side * side);
          c.dataset.painted = h.epoch;
          k++;
        }
      }
    }
    const outs = this.columns[this.columns.length - 1];
    const out = a.output;
    if (out) {
      const side = h.output_resolution;
      if (out.shape.length === 3 && out.shape[0] === outs.length) {
        outs.forEach((c, k) => {
          paintProbability(c, out.data, k * side * side, side, k);
        });
      } else if (out.shape.length === 3 && outs.length === 1) {
        paintClasses(outs[0], out.data, out.shape[0], side);
      } else if (outs.length === 1) {
        paintBytes(outs[0], out.data, side);
      }
    }
    this.paintLinks(frame);
    for (const b of this.biases) {
      const v = this.value(`b${b.dataset.layer}`, [+b.dataset.unit]);
      if (v != null) b.style.background = cssOf(v);
    }
  }

  paintLinks(frame) {
    this.links.forEach((layer, i) => {
      const w = frame.arrays[`w${i}`];
      if (!w || w.shape[0] !== layer.rows || w.shape[1] !== layer.cols) return;
      layer.paths.forEach(({ vis }, k) => {
        const v = w.data[k];
        vis.setAttribute("stroke", cssOf(v));
        vis.setAttribute("stroke-width", (0.6 + Math.min(Math.abs(v), 5) * 1.5).toFixed(2));
      });
    });
  }
}
