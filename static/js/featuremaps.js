// The Feature maps panel: what every layer outputs for the chosen image (a test image, from the frame, or
// the user's drawing), each map from its own minimum (dark) to its maximum (bright), or on one scale per
// layer or one for every map.
import { blank, canvasIn, greyTile, prune } from "./figures.js";

/** The lowest and highest value of example e's maps over every layer. */
function globalRange(frame, e) {
  let lo = Infinity;
  let hi = -Infinity;
  frame.header.layers.forEach((_, i) => {
    const r = frame.arrays[`map_ranges${i}`];
    if (!r) return;
    const ch = r.shape[1];
    for (let m = 0; m < ch; m++) {
      lo = Math.min(lo, r.data[(e * ch + m) * 2]);
      hi = Math.max(hi, r.data[(e * ch + m) * 2 + 1]);
    }
  });
  return [lo, hi];
}

/** The lowest and highest value of example e's maps of one layer (ranges: examples × C × 2). */
function layerRange(ranges, e, ch) {
  let lo = Infinity;
  let hi = -Infinity;
  for (let m = 0; m < ch; m++) {
    lo = Math.min(lo, ranges[(e * ch + m) * 2]);
    hi = Math.max(hi, ranges[(e * ch + m) * 2 + 1]);
  }
  return [lo, hi];
}

/** Bytes of example e's maps of layer i on the chosen colour scale: per map (as sent), per layer, global. */
function scaledMaps(frame, i, e, mode, global) {
  const maps = frame.arrays[`maps${i}`];
  const [, ch, rows, cols] = maps.shape;
  const cells = rows * cols;
  const base = e * ch * cells;
  if (mode === "map") return { bytes: maps.data, offset: base };
  const ranges = frame.arrays[`map_ranges${i}`].data; // (examples, C, 2)
  const [lo, hi] = mode === "global" ? global : layerRange(ranges, e, ch);
  const span = hi > lo ? hi - lo : 1;
  const out = new Uint8Array(ch * cells);
  for (let m = 0; m < ch; m++) {
    const a = ranges[(e * ch + m) * 2];
    const b = ranges[(e * ch + m) * 2 + 1];
    for (let k = 0; k < cells; k++) {
      const v = a + (maps.data[base + m * cells + k] / 255) * (b - a);
      out[m * cells + k] = Math.round((255 * (v - lo)) / span);
    }
  }
  return { bytes: out, offset: 0 };
}

export class FeatureMaps {
  /** @param {HTMLElement} parent  @param {HTMLSelectElement} scale  @param {() => void} onScale */
  constructor(parent, scale, onScale) {
    this.parent = parent;
    this.scale = scale;
    scale.addEventListener("change", onScale);
  }

  /** Paint the maps (arrays maps{i}, map_ranges{i}) of `example` (an index, or "drawing": the first). */
  paint(frame, example) {
    const drawn = example === "drawing";
    const pick = drawn ? 0 : example;
    const keys = new Set();
    const mode = this.scale.value;
    const n0 = frame.arrays.maps0 ? frame.arrays.maps0.shape[0] : 1;
    const global = globalRange(frame, Math.min(pick, n0 - 1));
    this.parent.dataset.source = drawn ? "drawing" : "test";
    frame.header.layers.forEach((layer, i) => {
      const maps = frame.arrays[`maps${i}`];
      if (!maps) return;
      const [n, ch, rows, cols] = maps.shape; // (examples, C, H, W)
      const e = Math.min(pick, n - 1);
      const per = Math.min(ch, 8);
      const lines = Math.ceil(ch / per);
      const label = `layer ${i + 1} (${layer.type}): ${ch} maps of ${rows}×${cols}`;
      const c = canvasIn(this.parent, `maps${i}`, per * (cols + 1) - 1, lines * (rows + 1) - 1, label);
      const { ctx, img } = blank(c);
      const { bytes, offset } = scaledMaps(frame, i, e, mode, global);
      for (let m = 0; m < ch; m++) {
        greyTile(img, bytes, offset + m * rows * cols, rows, cols, (m % per) * (cols + 1), Math.floor(m / per) * (rows + 1));
      }
      c.dataset.scale = mode;
      ctx.putImageData(img, 0, 0);
      c.dataset.painted = String(frame.header.epoch);
      c.dataset.example = drawn ? "drawing" : String(e);
      keys.add(`maps${i}`);
    });
    prune(this.parent, keys);
  }
}
