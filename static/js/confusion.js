// The confusion matrix of the test set: a row per true class, a column per answer, each cell coloured by its
// share of the row (blue on the diagonal, orange off it), and each class's share right. A CNN frame names its
// classes; an MLP's classes are the page's colours (orange 0, blue 1, purple 2), shown as swatches.
import { rgbOf } from "./colors.js";

const COLOURS = ["orange", "blue", "purple"];

/** One class's row: its counts and its share right. */
function row(cm, k, i, name) {
  let sum = 0;
  for (let j = 0; j < k; j++) sum += cm.data[i * k + j];
  const cells = [];
  for (let j = 0; j < k; j++) {
    const v = cm.data[i * k + j];
    const t = sum ? v / sum : 0;
    // at most three quarters of the scale: the count stays readable (dark on the colour, contrast ≥ 4.5)
    const [r, g, b] = rgbOf(0.75 * (i === j ? t : -t));
    cells.push(`<td style="background: rgb(${r},${g},${b})">${v}</td>`);
  }
  const right = sum ? `${((100 * cm.data[i * k + i]) / sum).toFixed(0)} %` : "–";
  return { sum, html: `<tr><th scope="row">${name}</th>${cells.join("")}<td class="right-col">${right}</td></tr>` };
}

/** The classes' names as table headings: the frame's, or a swatch and colour per class. */
function classNames(header, k) {
  if (header.class_names) return header.class_names;
  return Array.from({ length: k }, (_, i) => `<span class="swatch class-${i}" aria-hidden="true"></span>${COLOURS[i] ?? `class ${i}`}`);
}

/** Fill `table` from the frame's confusion array (K × K counts). */
export function paintConfusion(table, frame) {
  const cm = frame.arrays.confusion;
  if (!cm) return;
  const k = cm.shape[0];
  const names = classNames(frame.header, k);
  const head = names.map((n) => `<th scope="col">${n}</th>`).join("");
  const rows = [`<tr><th scope="col">true \\ said</th>${head}<th scope="col">right</th></tr>`];
  let total = 0;
  for (let i = 0; i < k; i++) {
    const r = row(cm, k, i, names[i]);
    total += r.sum;
    rows.push(r.html);
  }
  table.innerHTML = rows.join("");
  table.dataset.total = String(total);
}
