// "Draw your own": draw with the mouse or a finger (or upload a picture); the drawing is made grey, scaled
// to the images' size and classified as you draw (POST .../predict, with its feature maps), with every
// class's probability. While the drawing is the chosen image, its answer follows the training.

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 2000;

/** The predict answer's feature maps as a frame's arrays ({name: {shape, data}}). */
function asArrays(featureMaps) {
  const arrays = {};
  for (const [name, a] of Object.entries(featureMaps)) {
    const flat = a.data.flat(Number.POSITIVE_INFINITY);
    arrays[name] = { shape: a.shape, data: a.dtype === "uint8" ? Uint8Array.from(flat) : Float32Array.from(flat) };
  }
  return arrays;
}

export class DrawPad {
  /**
   * @param {string} api the session's REST address
   * @param {{onAnswer: (maps: object, caption: string) => void, onClear: () => void}} handlers `onAnswer`: the
   *   network classified the drawing (its feature maps, a sentence); `onClear`: the pad was wiped.
   */
  constructor(api, { onAnswer, onClear }) {
    Object.assign(this, { api, onAnswer, onClear });
    this.pad = $("draw");
    this.pen = this.pad.getContext("2d");
    this.header = null; // the newest frame's header: the images' size and the class names
    this.drawing = false;
    this.asking = false;
    this.again = false;
    this.askedAt = 0;
    this.listen();
    this.clear();
  }

  listen() {
    const pad = this.pad;
    pad.addEventListener("pointerdown", (e) => this.start(e));
    pad.addEventListener("pointermove", (e) => {
      if (!this.drawing) return;
      const [x, y] = this.at(e);
      this.pen.lineTo(x, y);
      this.pen.stroke();
      this.classify();
    });
    pad.addEventListener("pointerup", () => {
      this.drawing = false;
      this.classify();
    });
    $("draw-clear").addEventListener("click", () => this.clear());
    $("draw-file").addEventListener("change", (e) => this.upload(e.target));
  }

  /** A frame arrived; `active`: the drawing is the chosen image (its answer then follows the training). */
  follow(h, active) {
    this.header = h;
    if (active && h.status === "running" && performance.now() - this.askedAt > REFRESH_MS) {
      this.askedAt = performance.now();
      this.classify();
    }
  }

  clear() {
    this.pen.fillStyle = "#000";
    this.pen.fillRect(0, 0, this.pad.width, this.pad.height);
    $("draw-probs").textContent = "";
    this.pad.dataset.drawn = "";
    this.onClear();
  }

  at(e) {
    const r = this.pad.getBoundingClientRect();
    return [((e.clientX - r.left) * this.pad.width) / r.width, ((e.clientY - r.top) * this.pad.height) / r.height];
  }

  start(e) {
    if (!this.header) return;
    this.drawing = true;
    this.pad.setPointerCapture(e.pointerId);
    const [x, y] = this.at(e);
    const pen = this.pen;
    pen.strokeStyle = "#fff";
    pen.lineCap = "round";
    pen.lineJoin = "round";
    pen.lineWidth = this.pad.width / (this.header.input_shape[0] <= 8 ? 7 : 11);
    pen.beginPath();
    pen.moveTo(x, y);
    pen.lineTo(x + 0.1, y);
    pen.stroke();
  }

  async upload(input) {
    const file = input.files[0];
    input.value = "";
    if (!file) return;
    $("draw-error").hidden = true;
    try {
      const bitmap = await createImageBitmap(file);
      this.clear();
      const pad = this.pad;
      const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
      const w = bitmap.width * scale;
      const h = bitmap.height * scale;
      this.pen.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
      this.classify();
    } catch {
      this.error(`${file.name} is not a picture this page can read (try a PNG or JPEG)`);
    }
  }

  error(text) {
    $("draw-error").textContent = text;
    $("draw-error").hidden = false;
  }

  /** The drawing as the network's input: grey, scaled down to the images' size, 0..1 per pixel. */
  asImage() {
    const [rows, cols] = this.header.input_shape;
    const small = document.createElement("canvas");
    small.width = cols;
    small.height = rows;
    const ctx = small.getContext("2d");
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(this.pad, 0, 0, cols, rows);
    const px = ctx.getImageData(0, 0, cols, rows).data;
    const image = [];
    for (let y = 0; y < rows; y++) {
      const row = [];
      for (let x = 0; x < cols; x++) {
        const p = (y * cols + x) * 4;
        row.push((0.299 * px[p] + 0.587 * px[p + 1] + 0.114 * px[p + 2]) / 255);
      }
      image.push(row);
    }
    return image;
  }

  /** Ask the network about the drawing (one question at a time: a stroke meanwhile asks once more after). */
  async classify() {
    if (!this.header) return;
    if (this.asking) {
      this.again = true;
      return;
    }
    this.asking = true;
    try {
      const r = await fetch(`${this.api}/predict`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ images: [this.asImage()], feature_maps: true }),
      });
      const out = await r.json();
      if (!r.ok) throw new Error(out.detail?.[0]?.msg || `the server answered ${r.status}`);
      this.answer(out);
    } catch (err) {
      this.error(`could not classify the drawing: ${err.message}`);
    } finally {
      this.asking = false;
      if (this.again) {
        this.again = false;
        this.classify();
      }
    }
  }

  answer(out) {
    const best = out.classes[0];
    this.showProbs(out.outputs[0]);
    this.pad.dataset.drawn = String(best);
    this.askedAt = performance.now();
    const said = `${this.header.class_names[best]} (${(100 * out.outputs[0][best]).toFixed(0)} %)`;
    this.onAnswer(asArrays(out.feature_maps), `your drawing: the network says ${said}`);
  }

  showProbs(probs) {
    const names = this.header.class_names;
    const best = probs.indexOf(Math.max(...probs));
    const el = $("draw-probs");
    el.innerHTML = probs
      .map((p, k) => {
        const bar = `<span class="bar" style="width: ${(100 * p).toFixed(1)}%"></span>`;
        return `<div class="prob${k === best ? " best" : ""}"><span>${names[k]}</span>${bar}<span>${(100 * p).toFixed(0)} %</span></div>`;
      })
      .join("");
    el.setAttribute("aria-label", `the network says ${names[best]} (${(100 * probs[best]).toFixed(0)} %)`);
  }
}
