// The output panel's big map: the network's output over the plane (or, while a neuron or an input is
// hovered, that unit's map), the data points over it, and clicking (or arrow keys + Enter) to add a point.
import { cssClass, cssOf, paintBytes, paintClasses } from "./colors.js";
import { featureBytes } from "./network.js";

const DOMAIN = 6;

export class OutputMap {
  constructor({ map, layer, caption, showTest, discretize, readonly, onAdd }) {
    Object.assign(this, { map, layer, caption, showTest, discretize, readonly, onAdd });
    this.frame = null;
    this.data = null;
    this.inspecting = null;
    this.cursor = null; // keyboard cursor [x1, x2]
    new ResizeObserver(() => this.drawPoints()).observe(layer);
    showTest.addEventListener("change", () => this.drawPoints());
    discretize.addEventListener("change", () => this.render());
    if (!readonly) {
      map.addEventListener("click", (e) => {
        const x1 = -DOMAIN + (2 * DOMAIN * e.offsetX) / map.clientWidth;
        const x2 = DOMAIN - (2 * DOMAIN * e.offsetY) / map.clientHeight;
        this.onAdd(clamp(x1), clamp(x2));
      });
      map.addEventListener("keydown", (e) => this.key(e));
      map.addEventListener("blur", () => { this.cursor = null; this.drawPoints(); });
    }
  }

  key(e) {
    const moves = { ArrowLeft: [-0.5, 0], ArrowRight: [0.5, 0], ArrowUp: [0, 0.5], ArrowDown: [0, -0.5] };
    if (moves[e.key]) {
      e.preventDefault();
      const [x, y] = this.cursor || [0, 0];
      this.cursor = [clamp(x + moves[e.key][0]), clamp(y + moves[e.key][1])];
      this.drawPoints();
    } else if (e.key === "Enter" && this.cursor) {
      e.preventDefault();
      this.onAdd(...this.cursor);
    }
  }

  setFrame(frame) {
    this.frame = frame;
    this.render();
  }

  setData(data) {
    this.data = data;
    this.drawPoints();
  }

  /** Show a neuron's or an input's map instead of the output (null: back to the output). */
  inspect(what) {
    this.inspecting = what;
    this.caption.hidden = !what;
    this.caption.textContent = what ? `showing ${what.label}` : "";
    this.render();
  }

  render() {
    const f = this.frame;
    const what = this.inspecting;
    if (what?.feature) {
      paintBytes(this.map, featureBytes(what.feature, 50), 50);
      return;
    }
    if (!f) return;
    const { header: h, arrays: a } = f;
    if (what && what.neuron != null && a.neurons && what.neuron < a.neurons.shape[0]) {
      const side = h.neuron_resolution;
      paintBytes(this.map, a.neurons.data, side, what.neuron * side * side);
      return;
    }
    const out = a.output;
    const discrete = this.discretize.checked;
    if (out.shape.length === 3) paintClasses(this.map, out.data, out.shape[0], out.shape[1], discrete);
    else paintBytes(this.map, out.data, out.shape[0], 0, discrete);
    this.map.dataset.painted = h.epoch;
  }

  drawPoints() {
    const c = this.layer;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(c.clientWidth * dpr), hgt = Math.round(c.clientHeight * dpr);
    if (!w || !hgt) return;
    if (c.width !== w) c.width = w;
    if (c.height !== hgt) c.height = hgt;
    const ctx = c.getContext("2d");
    ctx.clearRect(0, 0, w, hgt);
    const d = this.data;
    const at = ([x1, x2]) => [((x1 + DOMAIN) / (2 * DOMAIN)) * w, ((DOMAIN - x2) / (2 * DOMAIN)) * hgt];
    const colour = d?.problem === "regression" ? (y) => cssOf(y) : (y) => cssClass(y);
    const radius = Math.max(2.5, Math.min(4, w / 90)) * (d && d.train.points.length > 1500 ? 0.7 : 1);
    const draw = (set, stroke) => {
      ctx.lineWidth = dpr;
      ctx.strokeStyle = stroke;
      set.points.forEach((p, i) => {
        const [x, y] = at(p);
        ctx.beginPath();
        ctx.arc(x, y, radius * dpr, 0, 2 * Math.PI);
        ctx.fillStyle = colour(set.labels[i]);
        ctx.fill();
        ctx.stroke();
      });
    };
    if (d) {
      draw(d.train, "#fff");
      if (this.showTest.checked) draw(d.test, "#1b1f24");
    }
    if (this.cursor) {
      const [x, y] = at(this.cursor);
      ctx.strokeStyle = "#1b1f24";
      ctx.lineWidth = 2 * dpr;
      ctx.beginPath();
      ctx.moveTo(x - 10 * dpr, y); ctx.lineTo(x + 10 * dpr, y);
      ctx.moveTo(x, y - 10 * dpr); ctx.lineTo(x, y + 10 * dpr);
      ctx.stroke();
    }
  }
}

const clamp = (v) => Math.round(Math.max(-DOMAIN, Math.min(DOMAIN, v)) * 1000) / 1000;
