// Small pictures of the datasets in the picker: a few points of each, drawn once.
import { cssClass, cssOf, MID } from "./colors.js";

export function paintPreview(canvas, { points, labels }, problem) {
  const dpr = window.devicePixelRatio || 1;
  const size = Math.round((canvas.clientWidth || 48) * dpr);
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = `rgb(${MID.join(",")})`;
  ctx.fillRect(0, 0, size, size);
  const step = Math.max(1, Math.floor(points.length / 150));
  for (let i = 0; i < points.length; i += step) {
    const [x1, x2] = points[i];
    ctx.fillStyle = problem === "regression" ? cssOf(labels[i]) : cssClass(labels[i]);
    ctx.beginPath();
    ctx.arc(((x1 + 6) / 12) * size, ((6 - x2) / 12) * size, 1.6 * dpr, 0, 2 * Math.PI);
    ctx.fill();
  }
  canvas.dataset.drawn = "1";
}
