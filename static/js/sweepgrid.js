// The small multiples: one tile per configuration, its latest small decision map (bytes row by row, the top
// row first: "values" 0..255 for the output −1..+1 on the page's diverging scale, "classes" a class index in
// the class colours), its border the test loss's colour, its label the swept values; a diverged or stopped
// tile says so. Each tile opens its configuration as a session.
import { CLASS_COLORS, MID, paintBytes } from "./colors.js";
import { label, lossText, OPENABLE } from "./sweepfmt.js";

function bytesOf(b64) {
  const raw = atob(b64);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

/** Paint a map of class indices (one byte each) in the class colours. */
function paintIndices(canvas, bytes, side) {
  canvas.width = side;
  canvas.height = side;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(side, side);
  for (let i = 0; i < side * side; i++) img.data.set([...(CLASS_COLORS[bytes[i]] || MID), 255], i * 4);
  ctx.putImageData(img, 0, 0);
}

/** The form that opens configuration `k` as a live session of this browser's (the route sets its cookie). */
export function openForm(sweepId, k, what, live = true) {
  const form = document.createElement("form");
  form.method = "post";
  form.action = `/ui/sweeps/${sweepId}/configurations/${k}/open`;
  form.className = "open-form";
  const button = document.createElement("button");
  button.type = "submit";
  button.className = "open-btn";
  button.textContent = "open as a session";
  button.setAttribute("aria-label", `open ${what} as a session`);
  button.title = live
    ? "a live session of its own, continuing from this configuration's trained weights"
    : "its weights are gone: this sweep is read back from an earlier run of the server";
  form.append(button);
  return form;
}

export class SweepGrid {
  constructor(el, hooks) {
    this.el = el;
    this.hooks = hooks;
    this.tiles = [];
    el.addEventListener("pointerleave", () => hooks.hover(null));
  }

  build(configs, swept, sweepId, live) {
    this.swept = swept;
    this.live = live;
    this.el.replaceChildren();
    this.tiles = configs.map((c) => this.tile(c, sweepId));
    this.el.append(...this.tiles);
  }

  tile(c, sweepId) {
    const li = document.createElement("li");
    li.className = "tile";
    li.dataset.index = c.index;
    const words = label(c, this.swept) || `configuration ${c.index}`;
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 25;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `decision map of ${words}`);
    const name = document.createElement("p");
    name.className = "tile-label";
    // a line per swept field ("learning rate 0.03", "weight seed 1"): easier to scan down a column of tiles
    name.replaceChildren(...words.split(" · ").map((part) => Object.assign(document.createElement("span"), { textContent: part })));
    const info = document.createElement("p");
    info.className = "tile-info";
    const badge = document.createElement("span");
    badge.className = "tile-badge";
    const frame = document.createElement("div");
    frame.className = "tile-map";
    frame.append(canvas, badge);
    li.append(frame, name, info, openForm(sweepId, c.index, words, this.live));
    li.addEventListener("pointerenter", () => this.hooks.hover(c.index));
    li.addEventListener("focusin", () => this.hooks.hover(c.index));
    return li;
  }

  /** Status, test loss and border colour of every tile. */
  update(configs, scale) {
    for (const c of configs) {
      const li = this.tiles[c.index];
      if (!li) continue;
      li.dataset.status = c.status;
      const colour = scale.of(c.final?.test_loss);
      li.style.setProperty("--loss", colour || "var(--line)");
      const loss = c.final ? `test loss ${lossText(c.final.test_loss)}` : "";
      li.querySelector(".tile-info").textContent = [loss, c.status === "done" ? "" : `${c.status}${c.epochs ? ` at epoch ${c.epochs}` : ""}`].filter(Boolean).join(" · ");
      const badge = li.querySelector(".tile-badge");
      badge.textContent = c.status === "diverged" ? "diverged" : c.status === "stopped" ? "stopped" : "";
      badge.hidden = !badge.textContent;
      li.querySelector(".open-btn").disabled = !this.live || !OPENABLE.has(c.status);
    }
  }

  /** Paint the maps of a `maps` answer ({resolution, kind, items: {index: base64}}). */
  paint(maps) {
    for (const [k, b64] of Object.entries(maps.items || {})) {
      const li = this.tiles[+k];
      if (!li) continue;
      const canvas = li.querySelector("canvas");
      const bytes = bytesOf(b64);
      if (maps.kind === "classes") paintIndices(canvas, bytes, maps.resolution);
      else paintBytes(canvas, bytes, maps.resolution);
      li.dataset.painted = "true";
    }
  }

  highlight(k) {
    for (const li of this.tiles) li.classList.toggle("hot", +li.dataset.index === k);
  }

  filter(set) {
    for (const li of this.tiles) li.classList.toggle("out", !!set && !set.has(+li.dataset.index));
  }
}
