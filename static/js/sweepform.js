// The form of a new sweep: a base experiment, a row per swept field (a list of values, or a range that fills
// the list in, linear or log spaced; a set of checkboxes for a choice; architectures as "4,2; 8,8"), epochs,
// early stopping and a live count. It posts the SweepSpec to POST /api/v1/sweeps itself; a 422 is shown
// beside the field its `loc` names, in words.
import { nameOf, valueText } from "./sweepfmt.js";

const $ = (id) => document.getElementById(id);
const slug = (key) => key.replace(/[^\w]/g, "-");

/** Evenly spaced values from low to high (log spaced if asked), rounded to whole numbers for integer fields. */
export function spaced(low, high, count, log, integer) {
  const out = [];
  for (let i = 0; i < count; i++) {
    const t = count > 1 ? i / (count - 1) : 0;
    let v = log ? Math.exp(Math.log(low) + t * (Math.log(high) - Math.log(low))) : low + t * (high - low);
    v = integer ? Math.round(v) : +v.toPrecision(3);
    if (!out.includes(v)) out.push(v);
  }
  return out;
}

/** A 422's entry in words a student understands (`label`: the field's name). */
function inWords(e, label) {
  const ctx = e.ctx || {};
  const given = e.input != null && typeof e.input !== "object" ? ` (you entered ${e.input})` : "";
  if (e.type === "greater_than_equal" || e.type === "greater_than") return `${label} must be at least ${ctx.ge ?? ctx.gt}${given}`;
  if (e.type === "less_than_equal" || e.type === "less_than") return `${label} can be at most ${ctx.le ?? ctx.lt}${given}`;
  if (/int_(parsing|from_float|type)/.test(e.type)) return `${label} must be a whole number${given}`;
  if (/float_(parsing|type)/.test(e.type)) return `${label} must be a number${given}`;
  return String(e.msg)
    .replace(/^Value error, /, "")
    .replace(/Input should be greater than or equal to (\S+)/, "it must be at least $1")
    .replace(/Input should be less than or equal to (\S+)/, "it can be at most $1")
    .replace(/Input should be a valid integer.*/, "it must be a whole number")
    .replace(/Input should be (.+)/, "choose $1");
}

/** Read one typed value list: numbers, whole numbers, or architectures ("4,2; 8,8"; "" = no hidden layer). */
function parseValues(text, kind) {
  if (kind === "architectures") {
    return text.split(";").map((a) => {
      const widths = a.trim() ? a.split(",").map((w) => Number(w.trim())) : [];
      if (widths.some((w) => !Number.isInteger(w) || w < 1)) throw new Error(`“${a.trim()}” is not a list of whole numbers of neurons`);
      return widths;
    });
  }
  const items = text.split(/[,\s]+/).filter(Boolean);
  if (!items.length) throw new Error("type at least one value, or fill them in from a range");
  return items.map((item) => {
    const v = Number(item);
    if (!Number.isFinite(v)) throw new Error(`“${item}” is not a number`);
    if (kind !== "number" && !Number.isInteger(v)) throw new Error(`“${item}” is not a whole number`);
    return kind === "widths" ? [v] : v;
  });
}

export class SweepForm {
  /** `catalog`: {bases, fields} as the page rendered them; `onStarted(answer)` after a 202. */
  constructor(catalog, onStarted) {
    this.fields = Object.fromEntries(catalog.fields.map((f) => [f.key, f]));
    this.bases = Object.fromEntries(catalog.bases.map((b) => [b.key, b]));
    this.onStarted = onStarted;
    this.rows = new Map(); // key → row element
    this.form = $("sweep-form");
    this.base = $("sweep-base");
    this.base.addEventListener("change", () => this.showBase());
    $("add-field-btn").addEventListener("click", () => this.add($("add-field").value));
    $("early-stop").addEventListener("change", () => this.toggleEarly());
    this.form.addEventListener("input", () => this.count());
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    this.showBase();
    this.add("training.learning_rate");
  }

  get spec() {
    return this.bases[this.base.value].spec;
  }

  /** The base's main settings under its picker; a CNN base has no hidden layers to sweep. */
  showBase() {
    const s = this.spec;
    const net = s.network.kind === "cnn" ? `CNN of ${s.network.layers.length} layers` : `hidden layers ${valueText(s.network.hidden) || "none"}`;
    $("base-facts").textContent =
      `${s.dataset.name} data · ${net} · ${s.training.optimizer}, learning rate ${s.training.learning_rate}, batch size ${s.training.batch_size}`;
    for (const option of $("add-field").options) this.refreshOption(option);
  }

  refreshOption(option) {
    const f = this.fields[option.value];
    const taken = [...this.rows.keys()].some((k) => this.fields[k].path === f.path);
    option.disabled = taken || (f.path === "network.hidden" && this.spec.network.kind === "cnn");
  }

  /** A row for the field `key` (its example values filled in, ready to change). */
  add(key) {
    const f = this.fields[key];
    if (!f || this.rows.has(key)) return;
    const template = f.kind === "choice" ? "row-choice" : f.kind === "architectures" ? "row-architectures" : "row-number";
    const row = $(template).content.firstElementChild.cloneNode(true);
    row.dataset.key = key;
    row.dataset.path = f.path;
    row.id = `row-${slug(key)}`;
    row.querySelector(".row-label").textContent = f.label;
    row.querySelector(".row-path").textContent = f.path;
    const base = this.baseValue(f.path);
    row.querySelector(".row-hint").textContent = `${f.hint}${base == null ? "" : ` · now ${valueText(base)}`}`;
    row.querySelector(".remove").setAttribute("aria-label", `stop sweeping ${f.label}`);
    row.querySelector(".remove").addEventListener("click", () => this.remove(key));
    this.labelInputs(row, key);
    if (f.kind === "choice") this.fillChoices(row, f, base);
    else this.fillValues(row, f);
    $("field-rows").append(row);
    this.rows.set(key, row);
    this.afterChange();
    (row.querySelector("input:not([type=checkbox])") || row.querySelector("input"))?.focus();
  }

  baseValue(path) {
    return path.split(".").reduce((node, part) => (node == null ? null : node[part]), this.spec);
  }

  /** Give each input of a cloned row its own id and its label's `for`. */
  labelInputs(row, key) {
    for (const input of row.querySelectorAll("[data-id]")) input.id = `${slug(key)}-${input.dataset.id}`;
    for (const label of row.querySelectorAll("label[data-for]")) label.htmlFor = `${slug(key)}-${label.dataset.for}`;
    const error = row.querySelector(".row-error");
    error.id = `err-${slug(key)}`;
    for (const input of row.querySelectorAll("input")) input.setAttribute("aria-describedby", error.id);
  }

  fillChoices(row, f, base) {
    const box = row.querySelector(".choices");
    box.querySelector("legend").textContent = f.label;
    f.options.forEach((option, i) => {
      const label = document.createElement("label");
      label.className = "check";
      const input = document.createElement("input");
      input.type = "checkbox";
      input.value = option;
      input.checked = option === base || (i === (f.options.indexOf(base) + 1) % f.options.length);
      label.append(input, ` ${option}`);
      box.append(label);
    });
  }

  /** The example values, the range inputs that rewrite them, and the field's bounds on the inputs. */
  fillValues(row, f) {
    const values = row.querySelector(".values");
    values.value = f.example;
    values.placeholder = f.example;
    if (f.kind === "architectures") return;
    const [low, high, count, log] = ["low", "high", "count", "log"].map((c) => row.querySelector(`.${c}`));
    const example = f.example.split(",").map(Number);
    low.value = Math.min(...example);
    high.value = Math.max(...example);
    count.value = example.length;
    log.checked = f.log;
    for (const input of [low, high]) {
      if (f.minimum != null) input.min = f.minimum;
      if (f.maximum != null) input.max = f.maximum;
      input.title = f.hint;
    }
    for (const input of [low, high, count, log]) input.addEventListener("input", () => this.fillRange(row, f));
  }

  /** The range's values written into the row's list (or why they cannot be). */
  fillRange(row, f) {
    const [low, high, count] = ["low", "high", "count"].map((c) => Number(row.querySelector(`.${c}`).value));
    const log = row.querySelector(".log").checked;
    if (![low, high, count].every(Number.isFinite) || row.querySelector(".low").value === "" || row.querySelector(".high").value === "") return;
    if (log && low <= 0) return this.say(row, "log spacing needs a range above 0: start it at a small positive number");
    if (count < 1 || count > 50) return this.say(row, "between 2 and 50 values");
    const integer = f.kind !== "number";
    row.querySelector(".values").value = spaced(Math.min(low, high), Math.max(low, high), Math.round(count), log, integer).join(", ");
    this.say(row, "");
    this.count();
  }

  remove(key) {
    this.rows.get(key)?.remove();
    this.rows.delete(key);
    this.afterChange();
    $("add-field").focus();
  }

  afterChange() {
    for (const option of $("add-field").options) this.refreshOption(option);
    const free = [...$("add-field").options].find((o) => !o.disabled);
    if (free && $("add-field").selectedOptions[0]?.disabled) $("add-field").value = free.value;
    $("no-fields").hidden = this.rows.size > 0;
    this.count();
  }

  toggleEarly() {
    const on = $("early-stop").checked;
    for (const id of ["early-min", "early-factor"]) $(id).disabled = !on;
    this.count();
  }

  say(row, text) {
    const el = row.querySelector(".row-error");
    el.textContent = text;
    el.hidden = !text;
    for (const input of row.querySelectorAll("input")) input.toggleAttribute("aria-invalid", !!text);
  }

  /** Each row's values ({path: values}); a row that cannot be read says why (and is left out). */
  grid(quiet = false) {
    const grid = {};
    let ok = true;
    for (const [key, row] of this.rows) {
      const f = this.fields[key];
      try {
        const values = f.kind === "choice" ? [...row.querySelectorAll(".choices input:checked")].map((i) => i.value) : parseValues(row.querySelector(".values").value, f.kind);
        if (!values.length) throw new Error(`tick at least one ${f.label}`);
        grid[f.path] = values;
        if (!quiet) this.say(row, "");
      } catch (err) {
        ok = false;
        if (!quiet) this.say(row, `${f.label}: ${err.message}`);
      }
    }
    return ok ? grid : null;
  }

  /** "6 configurations × 300 epochs" as the form stands. */
  count() {
    const grid = this.grid(true);
    const epochs = Number($("sweep-epochs").value);
    const el = $("sweep-count");
    if (!grid || !this.rows.size) {
      el.textContent = this.rows.size ? "some values cannot be read yet" : "no configurations yet: add a field";
      return;
    }
    const n = Object.values(grid).reduce((a, v) => a * v.length, 1);
    const e = Number.isFinite(epochs) && epochs > 0 ? epochs : 0;
    el.textContent = `${n.toLocaleString("en")} configuration${n === 1 ? "" : "s"} × ${e.toLocaleString("en")} epochs`;
    el.dataset.configurations = n;
  }

  body(grid) {
    const out = { base: this.spec, grid, epochs: Number($("sweep-epochs").value) };
    if ($("sweep-record").value) out.record_every = Number($("sweep-record").value);
    if ($("early-stop").checked) {
      out.early_stop = { kind: "asha", min_epochs: Number($("early-min").value), reduction_factor: Number($("early-factor").value) };
    }
    return out;
  }

  async submit() {
    this.clearErrors();
    const grid = this.grid();
    if (!grid) return;
    if (!this.rows.size) return this.place("grid", "add at least one field to sweep");
    const button = $("start-sweep");
    button.disabled = true;
    try {
      const r = await fetch("/api/v1/sweeps", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(this.body(grid)) });
      const answer = await r.json().catch(() => ({}));
      if (r.ok) return this.onStarted(answer);
      if (Array.isArray(answer.detail)) for (const e of answer.detail) this.placeError(e);
      else if (r.status === 429) this.place("form", "this browser already runs as many sweeps as the server allows: wait for one to end, or cancel it");
      else this.place("form", `the sweep did not start: ${answer.detail || `the server answered ${r.status}`}`);
    } catch {
      this.place("form", "the server cannot be reached: is it still running?");
    } finally {
      button.disabled = false;
    }
  }

  clearErrors() {
    for (const el of this.form.querySelectorAll(".error:not(#base-note)")) {
      el.hidden = true;
      el.textContent = "";
    }
    for (const el of this.form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  /** One entry of a 422 beside the field its loc names: a swept path's row, epochs, early stopping, the base. */
  placeError(e) {
    const [, where, path] = e.loc || [];
    const row = (where === "grid" || where === "random") && path ? [...this.rows.values()].find((r) => r.dataset.path === path) : null;
    if (row) {
      const f = this.fields[row.dataset.key];
      const message = String(e.msg).replace(new RegExp(`^${path.replace(/\./g, "\\.")} = `), `${f.label} = `);
      return this.say(row, inWords({ ...e, msg: message }, f.label));
    }
    const known = { epochs: "epochs", record_every: "record_every", early_stop: "early_stop", base: "base", grid: "grid" };
    const slot = known[where] || "form";
    const words = slot === "early_stop" ? "early stopping" : slot === "record_every" ? "record every" : nameOf(slot);
    this.place(slot, inWords(e, words));
  }

  place(slot, text) {
    const el = $(`err-${slot}`);
    el.textContent = el.textContent ? `${el.textContent}; ${text}` : text;
    el.hidden = false;
    const input = { epochs: "sweep-epochs", record_every: "sweep-record", early_stop: "early-min" }[slot];
    if (input) $(input).setAttribute("aria-invalid", "true");
  }
}
