// The results table: a row per configuration (its swept values, status, epochs, final losses and
// accuracies, "open as a session"), sorted by any column with the buttons in its header (aria-sort says how).
import { openForm } from "./sweepgrid.js";
import { label, lossText, nameOf, OPENABLE, pctText, valueText } from "./sweepfmt.js";

const METRICS = [
  ["train_loss", "train loss", lossText],
  ["test_loss", "test loss", lossText],
  ["train_accuracy", "train accuracy", pctText],
  ["test_accuracy", "test accuracy", pctText],
];

/** Compare two cells' values: numbers by size, lists by length then items, text by its words; none last. */
function compare(a, b) {
  if (a == null || b == null) return a == null ? (b == null ? 0 : 1) : -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (Array.isArray(a) && Array.isArray(b)) return a.length - b.length || valueText(a).localeCompare(valueText(b), "en", { numeric: true });
  return String(a).localeCompare(String(b), "en", { numeric: true });
}

export class SweepTable {
  constructor(el, hooks) {
    this.el = el;
    this.hooks = hooks;
    this.sort = { key: "index", dir: 1 };
    this.configs = [];
    el.tBodies[0].addEventListener("pointerleave", () => hooks.hover(null));
  }

  build(configs, swept, sweepId, live) {
    this.swept = swept;
    this.live = live;
    this.sweepId = sweepId;
    this.columns = [
      { key: "index", name: "#", get: (c) => c.index, text: (v) => v },
      ...swept.map((p) => ({ key: `param:${p}`, name: nameOf(p), get: (c) => c.params[p], text: valueText, title: p })),
      { key: "status", name: "status", get: (c) => c.status, text: (v) => v },
      { key: "epochs", name: "epochs", get: (c) => c.epochs, text: (v) => v.toLocaleString("en") },
      ...METRICS.map(([m, name, text]) => ({ key: m, name, get: (c) => c.final?.[m] ?? null, text, numeric: true })),
    ];
    this.head();
    this.configs = configs;
  }

  /** The header: a sort button per column (and the "open" column, which does not sort). */
  head() {
    const tr = document.createElement("tr");
    for (const col of this.columns) {
      const th = document.createElement("th");
      th.scope = "col";
      th.dataset.key = col.key;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.textContent = col.name;
      if (col.title) button.title = col.title;
      button.addEventListener("click", () => this.sortBy(col.key));
      th.append(button);
      tr.append(th);
    }
    const open = document.createElement("th");
    open.scope = "col";
    open.innerHTML = '<span class="sr-only">open</span>';
    tr.append(open);
    this.el.tHead.replaceChildren(tr);
    this.marks();
  }

  sortBy(key) {
    this.sort = { key, dir: this.sort.key === key ? -this.sort.dir : 1 };
    this.marks();
    this.rows();
  }

  marks() {
    for (const th of this.el.tHead.querySelectorAll("th[data-key]")) {
      const on = th.dataset.key === this.sort.key;
      th.setAttribute("aria-sort", on ? (this.sort.dir > 0 ? "ascending" : "descending") : "none");
      th.querySelector("button").dataset.arrow = on ? (this.sort.dir > 0 ? "▲" : "▼") : "";
    }
  }

  update(configs) {
    this.configs = configs;
    this.rows();
  }

  /** The body, in the chosen order (ties in the sweep's order). */
  rows() {
    const col = this.columns.find((c) => c.key === this.sort.key);
    const order = [...this.configs].sort((a, b) => {
      const va = col.get(a), vb = col.get(b);
      if (va == null || vb == null) return compare(va, vb) || a.index - b.index;
      return this.sort.dir * compare(va, vb) || a.index - b.index;
    });
    this.el.tBodies[0].replaceChildren(...order.map((c) => this.row(c)));
    this.highlight(this.hot);
    this.filter(this.kept);
  }

  row(c) {
    const tr = document.createElement("tr");
    tr.dataset.index = c.index;
    tr.dataset.status = c.status;
    for (const col of this.columns) {
      const td = document.createElement(col.key === "index" ? "th" : "td");
      if (col.key === "index") td.scope = "row";
      const v = col.get(c);
      td.textContent = v == null ? "–" : col.text(v);
      if (col.numeric || col.key === "epochs" || col.key === "index") td.className = "num";
      tr.append(td);
    }
    const td = document.createElement("td");
    td.append(openForm(this.sweepId, c.index, label(c, this.swept) || `configuration ${c.index}`, this.live));
    td.querySelector("button").disabled = !this.live || !OPENABLE.has(c.status);
    tr.append(td);
    tr.addEventListener("pointerenter", () => this.hooks.hover(c.index));
    tr.addEventListener("focusin", () => this.hooks.hover(c.index));
    return tr;
  }

  highlight(k) {
    this.hot = k;
    for (const tr of this.el.tBodies[0].rows) tr.classList.toggle("hot", +tr.dataset.index === k);
  }

  filter(set) {
    this.kept = set;
    for (const tr of this.el.tBodies[0].rows) tr.classList.toggle("out", !!set && !set.has(+tr.dataset.index));
  }
}
