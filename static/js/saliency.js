// "What the answer depends on": the chosen test image's saliency (GET .../saliency; bright = the score of
// the class the network picks depends much on that pixel), painted hot; it follows the training.

const REFRESH_MS = 2000;

/** black → red → yellow → white */
function hot(q) {
  const t = (3 * q) / 255;
  return [Math.min(255, 255 * t), Math.max(0, Math.min(255, 255 * t - 255)), Math.max(0, 255 * t - 510), 255];
}

export class Saliency {
  constructor(canvas, api) {
    this.canvas = canvas;
    this.api = api;
    this.at = 0; // when it was last fetched
    this.shown = null; // [example, epoch] it shows
  }

  /** A frame arrived: fetch again when the epoch moved on — every two seconds while training, at once when
  it stops. */
  follow(h, example) {
    const s = this.shown;
    if (!s || (s[1] !== h.epoch && (h.status !== "running" || performance.now() - this.at > REFRESH_MS))) this.show(example);
  }

  async show(e) {
    this.at = performance.now();
    try {
      const r = await fetch(`${this.api}/saliency?examples=${e}&encoding=list`);
      if (!r.ok) return;
      const out = await r.json();
      this.paint(out.maps.data[0]);
      this.shown = [e, out.epoch];
      this.canvas.dataset.example = String(e);
      this.canvas.dataset.epoch = String(out.epoch);
    } catch {
      /* the next frame asks again */
    }
  }

  paint(rows) {
    const c = this.canvas;
    c.height = rows.length;
    c.width = rows[0].length;
    const ctx = c.getContext("2d");
    const img = ctx.createImageData(c.width, c.height);
    rows.forEach((row, y) => {
      row.forEach((q, x) => {
        img.data.set(hot(q), (y * c.width + x) * 4);
      });
    });
    ctx.putImageData(img, 0, 0);
  }
}
