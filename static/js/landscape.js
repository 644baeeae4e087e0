// "Inside the optimization" on the MLP and CNN pages: while the panel is open, the loss slice around the weights
// (coarse while training, fine once paused), the path training took drawn over it, the path's true loss
// against the slice's, the line from the initial weights and the sharpness — snapshots the server computes
// once per session and sends on the page's websocket (landscapefeed.js), or, while the page has no socket,
// from the REST views; the gradient-health table is an htmx fragment this refreshes when its numbers change.
// The optimizer race lives in race.js.
import { LandscapeFeed, partKey } from "./landscapefeed.js";
import { Race } from "./race.js";
import { decades, drawPath, getJSON, paintSlice, smallChart } from "./slice.js";

const $ = (id) => document.getElementById(id);

/** What a view waiting for its numbers says (the first request of a kind compiles its program). */
const WAITING = {
  slice: (n) => `computing the loss on a ${n}×${n} plane through the weights (the first time compiles, ~10-20 s)…`,
  path: "computing the true loss along the path training took…",
  line: "computing the loss along the straight line from the initial weights (the first time compiles)…",
  sharp: "computing the sharpness: the top eigenvalue of the loss's Hessian (the first time compiles)…",
};

/** A note under a view: a sentence, "computing…" while it waits (class busy), or an error in words. */
function note(id, text, kind = "") {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle("busy", kind === "busy");
  el.classList.toggle("error", kind === "error");
}

/** An empty slice canvas says it is computing (until the first slice replaces it). */
function placeholder(c) {
  const ctx = c.getContext("2d");
  ctx.fillStyle = "#f2f4f6";
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.fillStyle = "#545e69";
  ctx.font = "16px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.fillText("computing…", c.width / 2, c.height / 2);
  c.dataset.state = "computing";
}

/** Two numbers with just enough digits to tell them apart (3 at least). */
function pair(a, b) {
  for (let d = 3; d < 7; d++) if (a.toPrecision(d) !== b.toPrecision(d)) return [a.toPrecision(d), b.toPrecision(d)];
  return [a.toPrecision(3), b.toPrecision(3)];
}

/** A value on the colour bar: short, and exponential where plain digits would not tell small losses apart. */
function tick(v) {
  if (v === 0) return "0";
  return Math.abs(v) < 1e-3 || Math.abs(v) >= 1e4 ? v.toExponential(1) : String(+v.toPrecision(3));
}

/** The colour bar's values: five places from the lowest loss (bottom) to the top of the scale. */
function legend(scale) {
  const ticks = $("ls-ticks");
  ticks.replaceChildren(
    ...[0, 0.25, 0.5, 0.75, 1].map((x) => {
      const s = document.createElement("span");
      s.textContent = tick(scale.at(x));
      s.style.bottom = `${100 * x}%`;
      return s;
    }),
  );
  ticks.dataset.scale = scale.log ? "log" : "linear";
}

/** The sentence under the slice. */
function caption(out) {
  const path = out.trajectory;
  const [least, most] = out.loss_min == null ? ["–", "–"] : pair(out.loss_min, out.loss_max);
  const far = Math.max(0, ...path.off_plane.filter((v) => v != null));
  const here = out.center_loss?.toPrecision(4) ?? "off scale";
  const words = [`epoch ${out.epoch}: loss ${here} here (●), from ${least} to ${most} on the plane (±${+out.span.toPrecision(3)})`];
  words.push(`colours on a ${$("ls-log").checked ? "log" : "linear"} scale`);
  if (out.off_scale) words.push(`${out.off_scale} cells off scale (✕)`);
  if (path.alpha.length > 1) words.push(`the path (white, from ○) is at most ${far.toPrecision(2)} off this plane`);
  if (out.explained_variance) {
    const share = (100 * (out.explained_variance[0] + out.explained_variance[1])).toFixed(0);
    words.push(`the two PCA directions explain ${share} % of its movement`);
  }
  return `${words.join("; ")}.`;
}

export class Landscape {
  /** @param {{frame: object|null, status: string}} live the page's session (its newest frame and status) */
  constructor(live, { api, session }) {
    Object.assign(this, { live, api, session });
    const panel = $("optimization");
    this.liveCells = +panel.dataset.live || 31; // cells per side while training (a CNN's: fewer, each is a forward pass)
    this.fineCells = +panel.dataset.fine || 51; // once paused
    this.open = false;
    this.seed = 0;
    this.shown = ""; // what the picture shows: directions|span|seed|resolution|epoch
    this.drawn = false; // a slice is on the canvas (later requests keep it while they wait)
    this.slowSeen = false; // the line and the sharpness have arrived once
    this.charts = null;
    this.looping = false; // the HTTP loop runs (no socket to bring the snapshots)
    this.seen = {}; // part → the key of the numbers shown (partKey)
    this.race = new Race(api, +panel.dataset.race || 41);
    this.feed = new LandscapeFeed(live, {
      onSnapshot: (snap) => this.snapshot(snap),
      onLost: () => this.loop(),
      onOpen: () => {
        if (this.open) this.watch();
      },
    });
    $("landscape-tab").addEventListener("click", () => this.setOpen(!this.open));
    $("ls-new").addEventListener("click", () => {
      this.seed += 1;
      this.redo();
    });
    for (const id of ["ls-directions", "ls-span"]) $(id).addEventListener("change", () => this.redo());
    this.scaleChosen = false; // until the visitor picks one, the log scale is on when the losses span > 2 decades
    $("ls-log").addEventListener("change", () => {
      this.scaleChosen = true;
      if (this.last) this.draw(this.last);
    });
    // a fix applied (or any change of the spec): the numbers move on at once
    document.body.addEventListener("ng:spec", () => {
      if (this.feed.watching) return; // the next snapshot brings the numbers of the new spec
      this.redo();
      if (this.open) this.gradientsTable();
    });
    if (new URLSearchParams(location.hash.slice(1)).has("landscape")) this.setOpen(true);
  }

  redo() {
    this.shown = "";
    if (this.open && this.feed.watching) this.watch();
  }

  /** What the slice shows: the settings a snapshot (or a request) is for. */
  settings() {
    const span = $("ls-span").value;
    return {
      directions: $("ls-directions").value,
      resolution: this.fineCells,
      live_resolution: this.liveCells,
      span: span ? +span : null,
      seed: this.seed,
    };
  }

  /** Ask the socket for snapshots with the panel's settings; without a socket, the HTTP loop. */
  async watch() {
    const asked = this.settings();
    this.asked = asked;
    clearTimeout(this.slowTimer); // a slice on the canvas stays while the new one computes; a long wait says so
    const cells = this.live.status === "running" ? this.liveCells : this.fineCells;
    this.slowTimer = setTimeout(() => this.waiting(cells), this.drawn ? 1500 : 0);
    try {
      if (await this.feed.watch(asked)) return;
    } catch (err) {
      note("ls-caption", `the loss landscape could not be computed: ${err.message}`, "error");
    }
    clearTimeout(this.slowTimer);
    this.loop();
  }

  setOpen(on) {
    this.open = on;
    $("optimization").hidden = !on;
    $("landscape-tab").setAttribute("aria-expanded", String(on));
    if (!on) {
      this.feed.stop();
      return;
    }
    if (!this.charts) {
      this.charts = {
        // a CNN's path has its losses at some points only (null between): join them
        path: smallChart(
          $("path-chart"),
          [
            { label: "true loss", stroke: "#1b1f24", spanGaps: true },
            { label: "slice loss", stroke: "#0877bd", dash: [4, 3], spanGaps: true },
          ],
          "epoch",
        ),
        line: smallChart($("line-chart"), [{ label: "loss", stroke: "#1b1f24" }], "t"),
        sharp: smallChart(
          $("sharp-chart"),
          [
            { label: "top eigenvalue", stroke: "#1b1f24" },
            { label: "2 / learning rate", stroke: "#b3261e", dash: [4, 3] },
          ],
          "epoch",
        ),
      };
    }
    this.shown = "";
    if (!this.drawn) this.waiting(this.live.status === "running" ? this.liveCells : this.fineCells);
    $("optimization").scrollIntoView({ block: "nearest" });
    this.watch();
  }

  /** A snapshot from the socket: each part that brings new numbers is shown (a stale one, asked for with other
  settings, is left out). */
  snapshot(snap) {
    const asked = this.asked;
    const w = snap.watch;
    if (!this.open || !asked || w.directions !== asked.directions || w.seed !== asked.seed || w.span !== asked.span) return;
    clearTimeout(this.slowTimer);
    if (snap.errors.slice) note("ls-caption", `the loss landscape could not be computed: ${snap.errors.slice.message}`, "error");
    else if (snap.slice) this.draw(snap.slice);
    if (this.fresh("line", snap.line)) {
      this.charts.line.setData([snap.line.t, snap.line.loss]);
      note("line-note", "");
    }
    if (snap.errors.line) note("line-note", `the loss along the line could not be computed: ${snap.errors.line.message}`, "error");
    if (this.fresh("sharpness", snap.sharpness)) this.sharpness(snap.sharpness);
    if (snap.errors.sharpness) note("sharp-note", `the sharpness could not be computed: ${snap.errors.sharpness.message}`, "error");
    if (snap.line || snap.sharpness) this.slowSeen = true;
    // the table is a fragment: the server renders the feed's numbers (not computed again per viewer)
    if (this.fresh("gradients", snap.gradients)) this.gradientsTable();
  }

  /** The gradient-health fragment, fetched (the first time) or refreshed. */
  gradientsTable() {
    if ($("gradients").hasAttribute("hx-get")) htmx.trigger("#gradients", "ng:refresh");
    else htmx.ajax("GET", `/ui/sessions/${document.body.dataset.session}/gradients`, { target: "#gradients", swap: "outerHTML" });
  }

  /** Whether a part brings numbers not shown yet (and remember them as shown). */
  fresh(name, part) {
    const key = partKey(part);
    if (!part || this.seen[name] === key) return false;
    this.seen[name] = key;
    return true;
  }

  /** Without a socket, while open: ask for the slice when something it shows changed (the epoch, an
  option), the slower views at most once a second while training. */
  async loop() {
    if (this.looping) return;
    this.looping = true;
    try {
      await this.poll();
    } finally {
      this.looping = false;
    }
  }

  async poll() {
    let slowAt = 0;
    while (this.open && !this.feed.watching) {
      const running = this.live.status === "running";
      const epoch = this.live.frame?.header.epoch ?? 0;
      const t0 = performance.now();
      const changed = await this.refresh(running ? this.liveCells : this.fineCells, epoch);
      if (changed && performance.now() - slowAt > (running ? 1000 : 0)) {
        slowAt = performance.now();
        await this.refreshSlow();
      }
      const wait = Math.max(0, (running ? 200 : 400) - (performance.now() - t0));
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  async refresh(resolution, epoch) {
    const directions = $("ls-directions").value;
    const span = $("ls-span").value;
    const key = `${directions}|${span}|${this.seed}|${resolution}|${epoch}`;
    if (key === this.shown) return false;
    const q = new URLSearchParams({ directions, resolution, seed: this.seed });
    if (span) q.set("span", span);
    // a slice on the canvas stays while the next one computes; a wait longer than a moment says so
    const slow = setTimeout(() => this.waiting(resolution), this.drawn ? 1500 : 0);
    try {
      this.draw(await getJSON(`${this.api}/landscape?${q}`));
    } catch (err) {
      note("ls-caption", `the loss landscape could not be computed: ${err.message}`, "error");
      if (!this.drawn) note("path-note", "", "");
    } finally {
      clearTimeout(slow);
    }
    this.shown = key; // do not ask again until something changes
    return true;
  }

  /** The slice (and the path's losses, which come with it) are on their way. */
  waiting(resolution) {
    note("ls-caption", WAITING.slice(resolution), "busy");
    if (this.drawn) return;
    placeholder($("landscape"));
    note("path-note", WAITING.path, "busy");
    if (!this.slowSeen) {
      note("line-note", WAITING.line, "busy");
      note("sharp-note", WAITING.sharp, "busy");
    }
  }

  /** The line from the initial weights and the sharpness; a failure shows in words (the next round tries again). */
  async refreshSlow() {
    try {
      const line = await getJSON(`${this.api}/interpolation?steps=41`);
      this.charts.line.setData([line.t, line.loss]);
      note("line-note", "");
    } catch (err) {
      note("line-note", `the loss along the line could not be computed: ${err.message}`, "error");
    }
    try {
      this.sharpness(await getJSON(`${this.api}/sharpness`));
    } catch (err) {
      note("sharp-note", `the sharpness could not be computed: ${err.message}`, "error");
    }
    this.slowSeen = true;
    this.gradientsTable();
  }

  sharpness(sharp) {
    const h = sharp.history;
    this.charts.sharp.setData([h.map((p) => p.epoch), h.map((p) => p.top_eigenvalue), h.map(() => sharp.stability_threshold)]);
    const top = sharp.top_eigenvalue;
    const limit = sharp.stability_threshold;
    const sharper = top > limit ? " — sharper than that: expect the loss to oscillate or climb" : "";
    note(
      "sharp-note",
      top == null
        ? "the curvature is off scale"
        : `top eigenvalue ${top.toPrecision(3)}; plain gradient descent is stable below 2 / learning rate = ${limit.toPrecision(3)}${sharper}`,
    );
  }

  /** The slice with the path training took, and the current weights at its centre. */
  draw(out) {
    const c = $("landscape");
    const path = out.trajectory;
    this.last = out;
    if (!this.scaleChosen) $("ls-log").checked = decades(out.loss) > 2;
    const plane = paintSlice(c, out.loss, out.span, $("ls-log").checked);
    const { ctx, scale, px, py } = plane;
    drawPath(plane, path.alpha, path.beta, "#fff");
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(px(0), py(0), 6, 0, 2 * Math.PI); // the current weights
    ctx.fillStyle = "#fff";
    ctx.fill();
    ctx.stroke();
    c.dataset.epoch = String(out.epoch);
    c.dataset.resolution = String(out.resolution);
    c.dataset.directions = out.directions;
    c.dataset.state = "drawn";
    this.drawn = true;
    legend(scale);
    note("ls-caption", caption(out));
    this.charts.path.setData([path.epochs, path.true_loss, path.plane_loss]);
    note("path-note", "");
  }
}
