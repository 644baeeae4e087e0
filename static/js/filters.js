// The Filters panel: every conv layer's filters, a column per filter and a row per input channel, on the
// diverging scale (scaled per layer).
import { rgbOf } from "./colors.js";
import { blank, canvasIn, prune } from "./figures.js";

/** Paint one conv layer's weights w (k, k, C_in, F) as tiles of k × k on `c`, each value over the largest. */
function paintWeights(c, w, tile) {
  const [k, , cin, f] = w.shape;
  let max = 1e-12;
  for (const v of w.data) max = Math.max(max, Math.abs(v));
  const { ctx, img } = blank(c);
  for (let y = 0; y < k; y++)
    for (let x = 0; x < k; x++)
      for (let ch = 0; ch < cin; ch++)
        for (let j = 0; j < f; j++) {
          const [r, g, b] = rgbOf(w.data[((y * k + x) * cin + ch) * f + j] / max);
          const p = ((ch * tile + y) * c.width + j * tile + x) * 4;
          img.data[p] = r;
          img.data[p + 1] = g;
          img.data[p + 2] = b;
        }
  ctx.putImageData(img, 0, 0);
}

/** A frame's conv weights in `parent`: one captioned canvas per conv layer. */
export function paintFilters(parent, frame) {
  const keys = new Set();
  frame.header.layers.forEach((layer, i) => {
    const w = frame.arrays[`w${i}`];
    if (layer.type !== "conv" || !w) return;
    const [k, , cin, f] = w.shape;
    const tile = k + 1;
    const label = `layer ${i + 1}: ${f} filters ${k}×${k} over ${cin} channel${cin > 1 ? "s" : ""}`;
    const c = canvasIn(parent, `conv${i}`, f * tile - 1, cin * tile - 1, label);
    paintWeights(c, w, tile);
    c.style.width = `${Math.min(100, (f * tile * 100) / 40)}%`;
    c.dataset.painted = String(frame.header.epoch);
    keys.add(`conv${i}`);
  });
  prune(parent, keys);
}
