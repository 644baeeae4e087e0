// The output's numbers beyond the losses: R² and RMSE for regression, the MLP's confusion matrix for
// classification, and the chart options (accuracy shown, log epochs, log loss) remembered across reloads.
import { paintConfusion } from "./confusion.js";

const KEY = "neuroglass.charts";
const BOXES = { acc: "show-acc", logX: "log-epochs", logY: "log-loss" };
const $ = (id) => document.getElementById(id);
const num = (v) => (v == null ? "–" : v.toFixed(3));

/** The chart options from the page's checkboxes, as saved last time; `onChange` runs when one is switched. */
export function chartOptions(onChange) {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(KEY)) || {};
  } catch {
    /* nothing saved, or unreadable: the defaults */
  }
  const options = { acc: saved.acc ?? true, logX: saved.logX ?? false, logY: saved.logY ?? false };
  for (const [key, id] of Object.entries(BOXES)) {
    const box = $(id);
    if (!box) continue;
    box.checked = options[key];
    box.addEventListener("change", () => {
      options[key] = box.checked;
      try {
        localStorage.setItem(KEY, JSON.stringify(options));
      } catch {
        /* storage refused (private mode): the choice lasts until the page is left */
      }
      onChange(key);
    });
  }
  return options;
}

/** R² and RMSE (train and test) for regression: their rows show only when the frame has them. */
export function paintFit(m) {
  const regression = m.train_r2 != null || m.test_r2 != null || m.test_rmse != null;
  for (const el of document.querySelectorAll(".metrics .fit")) el.hidden = !regression;
  if (!regression) return;
  for (const [id, v] of [["train-r2", m.train_r2], ["test-r2", m.test_r2], ["train-rmse", m.train_rmse], ["test-rmse", m.test_rmse]]) {
    const out = $(id);
    if (out) out.value = num(v);
  }
}

/** The MLP's confusion matrix of the test points (classification frames carry `confusion`); hidden otherwise. */
export function paintClasses(frame) {
  const block = $("confusion-block");
  if (!block) return;
  block.hidden = !frame.arrays.confusion;
  if (frame.arrays.confusion) paintConfusion($("confusion"), frame);
}
