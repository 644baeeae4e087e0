// The top bar's read-outs: the epoch, the run status (with "compiling…" and why a run stopped by itself), the
// learning rate a schedule gives now, the losses and accuracies. The status comes from what the server says —
// every frame (the play loop sends one more when it stops), the hello and every ack on the websocket, its
// status and stopped messages, and the run buttons' answers — never from asking it again.

const $ = (id) => document.getElementById(id);
const num = (v) => (v == null ? "–" : v.toFixed(3));
const pct = (v) => (v == null ? "–" : `${(100 * v).toFixed(1)} %`);
const epochText = (n) => String(n).padStart(6, "0").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
const rateText = (v) => String(Number(v.toPrecision(3)));

export class RunStatus {
  constructor() {
    this.pausedAt = null; // step at which this page paused the session
    this.status = document.body.dataset.status;
    this.stopped = $("status").dataset.stopped || null; // why the last run stopped by itself, in words
    this.compiling = null; // the server's message while a new training program compiles
    // The run buttons' answer says what the session does now.
    document.addEventListener("htmx:afterSwap", (e) => {
      const run = $("run-buttons");
      if (!run || !(e.detail.target === run || e.detail.elt?.id === "run-buttons")) return;
      this.settled(run.dataset.status, +run.dataset.step);
    });
  }

  /** The session's state as the server answered a control (`hello`, `ack`, the run buttons). */
  settled(status, step, stopped) {
    this.pausedAt = status === "running" ? null : step;
    if (stopped !== undefined) this.stopped = stopped;
    if (status !== "running") this.compiling = null;
    this.show(status);
  }

  /** The server compiles a new program for this network: say so until a frame of the running session. */
  compilingNow(message) {
    this.compiling = message || "compiling";
    this.show(this.status);
  }

  /** A stop condition paused the session: say why until it runs again. */
  stoppedBy(reason) {
    this.stopped = reason;
    this.show("paused");
  }

  show(s) {
    this.status = s;
    if (s === "running") this.stopped = null;
    const el = $("status");
    el.dataset.status = s;
    el.toggleAttribute("data-compiling", Boolean(this.compiling));
    let text = s === "diverged" ? "diverged — lower the learning rate or reset" : s;
    if (s === "paused" && this.stopped) text = `paused — ${this.stopped}`;
    if (this.compiling) text = "compiling…";
    el.textContent = text;
    el.title = this.compiling ?? (this.stopped && s === "paused" ? this.stopped : "");
    document.body.dataset.status = s;
    const run = $("run-buttons");
    if (run) run.dataset.status = s;
  }

  /** A frame's header: its counters, and its status unless it was made before our pause went through. */
  frame(h) {
    $("epoch").value = epochText(h.epoch);
    const stale = h.status === "running" && this.pausedAt != null && h.step <= this.pausedAt;
    if (h.status === "running" && !stale) this.compiling = null;
    if (h.stopped !== undefined && !stale) this.stopped = h.stopped;
    this.show(stale ? "paused" : h.status);
    this.rate(h.learning_rate_now);
    const m = h.metrics;
    $("train-loss").value = num(m.train_loss);
    $("test-loss").value = num(m.test_loss);
    $("train-acc").value = pct(m.train_accuracy);
    $("test-acc").value = pct(m.test_accuracy);
  }

  /** "now 0.0075" beside the learning-rate field while a schedule makes the rate differ from the base rate. */
  rate(now) {
    const out = $("lr-now");
    const base = Number($("lr")?.value);
    if (!out || now == null || !Number.isFinite(base)) return;
    const differs = Math.abs(now - base) > 1e-6 * base;
    out.textContent = differs ? `now ${rateText(now)}` : "";
    out.hidden = !differs;
  }
}
