// One diverging colour scale for neuron maps, the output map and links: orange −1, light grey 0, blue +1
// (TF Playground's). A byte q of a frame map stands for −1 + 2q/255.

export const NEG = [245, 147, 34];
export const MID = [232, 234, 235];
export const POS = [8, 119, 189];
export const CLASS_COLORS = [NEG, POS, [123, 50, 148]];

const mix = (a, b, t) => a.map((v, i) => Math.round(v + (b[i] - v) * t));

/** rgb of a value in [−1, 1] (clipped) */
export function rgbOf(v) {
  const t = Math.max(-1, Math.min(1, v));
  return t < 0 ? mix(MID, NEG, -t) : mix(MID, POS, t);
}
export const cssOf = (v) => `rgb(${rgbOf(v).join(",")})`;
export const cssClass = (k) => `rgb(${(CLASS_COLORS[k] || MID).join(",")})`;

// 256 entries: byte → rgb
export const LUT = new Uint8ClampedArray(256 * 3);
for (let q = 0; q < 256; q++) LUT.set(rgbOf(-1 + (2 * q) / 255), q * 3);

/** Paint a (side × side) byte map on `canvas` (resized to side × side); `discrete` shows only the sign. */
export function paintBytes(canvas, bytes, side, offset = 0, discrete = false) {
  if (canvas.width !== side) canvas.width = side;
  if (canvas.height !== side) canvas.height = side;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(side, side);
  const px = img.data;
  for (let i = 0, n = side * side; i < n; i++) {
    let q = bytes[offset + i];
    if (discrete) q = q >= 128 ? 255 : 0;
    px[i * 4] = LUT[q * 3];
    px[i * 4 + 1] = LUT[q * 3 + 1];
    px[i * 4 + 2] = LUT[q * 3 + 2];
    px[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

/** Paint class probabilities (K, side, side) bytes on [0, 1]: a blend of the class colours (or the argmax). */
export function paintClasses(canvas, bytes, k, side, discrete = false) {
  if (canvas.width !== side) canvas.width = side;
  if (canvas.height !== side) canvas.height = side;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(side, side);
  const px = img.data;
  const n = side * side;
  for (let i = 0; i < n; i++) {
    let r = 0, g = 0, b = 0, best = 0, bestP = -1;
    for (let c = 0; c < k; c++) {
      const p = bytes[c * n + i] / 255;
      if (p > bestP) { bestP = p; best = c; }
      const col = CLASS_COLORS[c] || MID;
      r += p * col[0]; g += p * col[1]; b += p * col[2];
    }
    if (discrete) [r, g, b] = CLASS_COLORS[best] || MID;
    px[i * 4] = r; px[i * 4 + 1] = g; px[i * 4 + 2] = b; px[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

/** Paint one class's probability (bytes on [0, 1]) from light grey to the class colour. */
export function paintProbability(canvas, bytes, offset, side, cls) {
  if (canvas.width !== side) canvas.width = side;
  if (canvas.height !== side) canvas.height = side;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(side, side);
  const col = CLASS_COLORS[cls] || POS;
  for (let i = 0, n = side * side; i < n; i++) {
    const c = mix(MID, col, bytes[offset + i] / 255);
    img.data.set([c[0], c[1], c[2], 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
}
