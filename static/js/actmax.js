// "What each filter wants to see": activation maximization of every filter of a chosen conv layer at once
// (GET .../actmax), on demand or again every two seconds while training when "refresh while training" is on.
import { canvasIn } from "./figures.js";

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 2000;

/** Paint the filters' images (filters × C × H × W grey lists) side by side on `c`, first channel. */
function paintImages(c, imgs, rows, cols) {
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(c.width, c.height);
  img.data.fill(255);
  imgs.forEach((one, j) => {
    for (let y = 0; y < rows; y++)
      for (let x = 0; x < cols; x++) {
        const q = one[0][y][x];
        const p = (y * c.width + j * (cols + 1) + x) * 4;
        img.data[p] = q;
        img.data[p + 1] = q;
        img.data[p + 2] = q;
      }
  });
  ctx.putImageData(img, 0, 0);
}

export class ActMax {
  constructor(api) {
    this.api = api;
    this.select = $("actmax-layer");
    this.button = $("actmax-btn");
    this.live = $("actmax-live");
    this.note = $("actmax-note");
    this.busy = false;
    this.at = 0; // when it was last asked for
    this.button.addEventListener("click", () => this.show());
    this.select.addEventListener("change", () => this.show());
  }

  /** A frame arrived: the layer list follows the network; while training, refresh if asked to. */
  follow(frame, running) {
    this.layers(frame);
    if (this.live.checked && running && performance.now() - this.at > REFRESH_MS) this.show();
  }

  /** One option per conv layer (the choice kept when the layer still exists). */
  layers(frame) {
    const layers = frame.header.layers;
    const wanted = layers.map((l, i) => (l.type === "conv" ? i : -1)).filter((i) => i >= 0);
    const have = [...this.select.options].map((o) => +o.value);
    if (wanted.join() === have.join()) return;
    const keep = this.select.value;
    this.select.innerHTML = wanted.map((i) => `<option value="${i}">${i + 1}: conv, ${layers[i].filters} filters</option>`).join("");
    if (keep !== "" && wanted.includes(+keep)) this.select.value = keep;
    this.button.disabled = !wanted.length;
  }

  async show() {
    if (this.busy || !this.select.value) return;
    this.busy = true;
    this.at = performance.now();
    const layer = +this.select.value;
    this.note.textContent = "computing… (the first time for a layer compiles its program: a few seconds)";
    try {
      const r = await fetch(`${this.api}/actmax?layer=${layer}&steps=20&encoding=list`);
      if (!r.ok) throw new Error((await r.json()).detail?.[0]?.msg || `the server answered ${r.status}`);
      const out = await r.json();
      const imgs = out.images.data; // (filters, C, H, W)
      const f = imgs.length;
      const rows = imgs[0][0].length;
      const cols = imgs[0][0][0].length;
      const label = `layer ${layer + 1}: what each of its ${f} filters wants to see (epoch ${out.epoch})`;
      const c = canvasIn($("actmax"), "actmax", f * (cols + 1) - 1, rows, label);
      paintImages(c, imgs, rows, cols);
      c.style.width = "100%";
      c.dataset.painted = String(out.epoch);
      c.dataset.layer = String(layer);
      this.note.textContent = "";
    } catch (err) {
      this.note.textContent = `could not compute it: ${err.message}`;
    } finally {
      this.busy = false;
    }
  }
}
