// One sweep as it trains: progress with an ETA, the status counts and cancel, then four views of the same
// configurations — small decision maps, the final test loss against a field, parallel coordinates and the
// table — that share one hovered configuration and one brushed set. It reads GET /api/v1/sweeps/{id} and
// the stream /ws/sweeps/{id} (hello, started, progress, done), and the maps from both.
import { ParCoords } from "./parcoords.js";
import { SweepChart } from "./sweepchart.js";
import { lossScale } from "./sweepfmt.js";
import { SweepGrid } from "./sweepgrid.js";
import { SweepTable } from "./sweeptable.js";

const $ = (id) => document.getElementById(id);
const RUNNING = new Set(["queued", "running"]);

function eta(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "";
  if (seconds < 1) return "less than a second left";
  if (seconds < 90) return `about ${Math.round(seconds)} s left`;
  return `about ${Math.round(seconds / 60)} min left`;
}

export class SweepView {
  constructor() {
    this.configs = [];
    this.hovered = null;
    this.kept = null; // brushed set of indices (null: all)
    this.dirty = false;
    const hooks = { hover: (k) => this.hover(k), filter: (set) => this.filter(set) };
    this.grid = new SweepGrid($("sweep-grid"), hooks);
    this.table = new SweepTable($("sweep-table"), hooks);
    this.chart = new SweepChart($("sweep-chart"), $("chart-x"), $("chart-note"));
    this.pc = new ParCoords($("parcoords"), $("pc-kept"), $("clear-brush"), hooks);
    this.parts = [this.grid, this.table, this.chart, this.pc];
    $("cancel-sweep").addEventListener("click", () => this.cancel());
  }

  /** Show sweep `id` (this browser may cancel it if `owner`) and follow it until it ends. */
  async open(id, owner) {
    this.id = id;
    $("sweep-title").textContent = id;
    $("cancel-sweep").hidden = !owner;
    for (const [el, q] of [["dl-csv", "results.csv"], ["dl-history", "results.csv?history=true"], ["dl-json", "results.json"]]) {
      $(el).href = `/api/v1/sweeps/${id}/${q}`;
    }
    await this.load();
    if (RUNNING.has(this.sweep.status)) this.connect();
    else this.loadMaps();
  }

  /** The whole sweep (without histories) from GET: the views are (re)built from it. */
  async load() {
    const r = await fetch(`/api/v1/sweeps/${this.id}?history=false`);
    if (!r.ok) return this.error(`this sweep cannot be read (the server answered ${r.status})`);
    this.sweep = await r.json();
    this.configs = this.sweep.configurations;
    const request = this.sweep.request;
    const early = request.early_stop ? ` · early stopping from epoch ${request.early_stop.min_epochs}, keeping 1 in ${request.early_stop.reduction_factor}` : "";
    $("sweep-facts").textContent = `${this.sweep.total} configurations × ${this.sweep.epochs} epochs, in ${this.sweep.groups || "?"} compiled program${this.sweep.groups === 1 ? "" : "s"} · ${request.base.dataset.name} data${early}`;
    const live = document.body.dataset.live !== "false";
    for (const part of this.parts) part.build(this.configs, this.sweep.swept, this.id, live);
    $("sweep-grid").dataset.kind = request.base.network.kind;
    this.progress(this.sweep.progress, this.sweep.status);
    this.render();
  }

  async loadMaps() {
    const r = await fetch(`/api/v1/sweeps/${this.id}/maps`);
    if (r.ok) this.grid.paint(await r.json());
  }

  connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/sweeps/${this.id}`);
    this.ws = ws;
    ws.onmessage = (e) => this.message(JSON.parse(e.data));
    ws.onclose = () => {
      if (this.ws === ws && RUNNING.has(this.status)) this.error("the stream of this sweep closed: reload the page to follow it again");
    };
  }

  message(m) {
    if (m.maps) this.grid.paint(m.maps);
    if (m.type === "hello") {
      this.merge(m.sweep.configurations);
      this.progress(m.sweep.progress, m.sweep.status);
    } else if (m.type === "started" || m.type === "progress") {
      if (m.configurations) this.merge(m.configurations);
      this.progress(m.progress, "running");
    } else if (m.type === "done") {
      this.progress(m.progress, m.status);
      if (m.error) this.error(`the sweep failed: ${m.error}`);
      this.ws?.close();
      this.ws = null;
      this.load().then(() => this.loadMaps());
    } else if (m.type === "error") {
      this.error(m.message);
    }
  }

  merge(updates) {
    for (const u of updates) Object.assign(this.configs[u.index], u);
    this.render();
  }

  /** The share of the work done; a cancelled sweep's counts its cancelled configurations as whole (the
   *  server's sum), so the bar shows what trained instead. */
  fraction(p, status) {
    if (RUNNING.has(status) || status === "done" || !this.sweep) return p.fraction;
    const e = this.sweep.epochs;
    const trained = this.configs.reduce((a, c) => a + (["done", "stopped", "diverged"].includes(c.status) ? e : Math.min(c.epochs, e)), 0);
    return this.configs.length ? trained / (this.configs.length * e) : p.fraction;
  }

  progress(p, status) {
    this.status = status;
    const fraction = this.fraction(p, status);
    $("sweep-progress").value = fraction;
    $("sweep-percent").textContent = `${Math.floor(100 * fraction)} %`;
    const el = $("sweep-status");
    el.textContent = status;
    el.dataset.status = status;
    $("sweep-eta").textContent = RUNNING.has(status) ? eta(p.eta_seconds) : "";
    const counts = Object.entries(p.configurations).filter(([, n]) => n);
    $("sweep-counts").textContent = counts.map(([s, n]) => `${n} ${s}`).join(" · ");
    $("cancel-sweep").disabled = !RUNNING.has(status);
    document.body.dataset.sweepStatus = status;
  }

  /** Redraw the views at the next frame (updates come in bursts). */
  render() {
    if (this.dirty) return;
    this.dirty = true;
    requestAnimationFrame(() => {
      this.dirty = false;
      const scale = lossScale(this.configs);
      $("legend-low").textContent = scale.lo == null ? "low" : `${scale.lo.toPrecision(2)}`;
      $("legend-high").textContent = scale.hi == null ? "high" : `${scale.hi.toPrecision(2)}${scale.log ? " (log)" : ""}`;
      for (const part of this.parts) part.update(this.configs, scale);
    });
  }

  hover(k) {
    if (k === this.hovered) return;
    this.hovered = k;
    for (const part of this.parts) part.highlight?.(k);
  }

  filter(set) {
    this.kept = set;
    for (const part of this.parts) part.filter?.(set);
  }

  async cancel() {
    $("cancel-sweep").disabled = true;
    const r = await fetch(`/api/v1/sweeps/${this.id}?keep=true`, { method: "DELETE" });
    if (!r.ok) {
      $("cancel-sweep").disabled = false;
      return this.error(r.status === 403 || r.status === 401 ? "only the browser that started this sweep can cancel it" : `not cancelled: the server answered ${r.status}`);
    }
  }

  error(text) {
    $("sweep-error").textContent = text;
    $("sweep-error").hidden = !text;
  }
}
