// Small pieces the CNN page's pictures share: a captioned canvas per key, pruning the figures of layers the
// network no longer has, and grey images painted into ImageData.

/** A canvas for `key` inside `parent`, created once (data-key) in a captioned figure; sized w × h device
pixels, labelled and captioned with `label`. */
export function canvasIn(parent, key, w, h, label) {
  let c = parent.querySelector(`canvas[data-key="${key}"]`);
  if (!c) {
    const fig = document.createElement("figure");
    fig.dataset.key = key;
    c = document.createElement("canvas");
    c.dataset.key = key;
    c.setAttribute("role", "img");
    const cap = document.createElement("figcaption");
    fig.append(c, cap);
    parent.append(fig);
  }
  if (c.width !== w) c.width = w;
  if (c.height !== h) c.height = h;
  c.setAttribute("aria-label", label);
  c.parentElement.querySelector("figcaption").textContent = label;
  return c;
}

/** Drop the figures whose key is not in `keys` (layers the network no longer has). */
export function prune(parent, keys) {
  for (const fig of [...parent.children]) if (!keys.has(fig.dataset.key)) fig.remove();
}

/** A grey image (rows × cols bytes at `offset`) painted into a tile of an ImageData at (x0, y0). */
export function greyTile(img, bytes, offset, rows, cols, x0, y0) {
  for (let y = 0; y < rows; y++)
    for (let x = 0; x < cols; x++) {
      const q = bytes[offset + y * cols + x];
      const p = ((y0 + y) * img.width + x0 + x) * 4;
      img.data[p] = q;
      img.data[p + 1] = q;
      img.data[p + 2] = q;
      img.data[p + 3] = 255;
    }
}

/** A blank (white) ImageData the size of `c`, with its context. */
export function blank(c) {
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(c.width, c.height);
  img.data.fill(255);
  return { ctx, img };
}

/** Paint one grey image ({bytes, offset, rows, cols}) on `c`, resized to it. */
export function paintGrey(c, { bytes, offset, rows, cols }) {
  c.width = cols;
  c.height = rows;
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(cols, rows);
  greyTile(img, bytes, offset, rows, cols, 0, 0);
  ctx.putImageData(img, 0, 0);
}
