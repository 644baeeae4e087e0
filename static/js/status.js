// The top bar's read-outs: the epoch, the run status, the losses and accuracies. The status comes from what
// the server says — every frame (the play loop sends one more when it stops), the hello and every ack on the
// websocket, and the run buttons' answers — never from asking it again.

const $ = (id) => document.getElementById(id);
const num = (v) => (v == null ? "–" : v.toFixed(3));
const pct = (v) => (v == null ? "–" : `${(100 * v).toFixed(1)} %`);
const epochText = (n) => String(n).padStart(6, "0").replace(/\B(?=(\d{3})+(?!\d))/g, ",");

export class RunStatus {
  constructor() {
    this.pausedAt = null; // step at which this page paused the session
    this.status = document.body.dataset.status;
    // The run buttons' answer says what the session does now.
    document.addEventListener("htmx:afterSwap", (e) => {
      const run = $("run-buttons");
      if (!run || !(e.detail.target === run || e.detail.elt?.id === "run-buttons")) return;
      this.settled(run.dataset.status, +run.dataset.step);
    });
  }

  /** The session's state as the server answered a control (`hello`, `ack`, the run buttons). */
  settled(status, step) {
    this.pausedAt = status === "running" ? null : step;
    this.show(status);
  }

  show(s) {
    this.status = s;
    $("status").dataset.status = s;
    $("status").textContent = s === "diverged" ? "diverged — lower the learning rate or reset" : s;
    document.body.dataset.status = s;
    const run = $("run-buttons");
    if (run) run.dataset.status = s;
  }

  /** A frame's header: its counters, and its status unless it was made before our pause went through. */
  frame(h) {
    $("epoch").value = epochText(h.epoch);
    const stale = h.status === "running" && this.pausedAt != null && h.step <= this.pausedAt;
    this.show(stale ? "paused" : h.status);
    const m = h.metrics;
    $("train-loss").value = num(m.train_loss);
    $("test-loss").value = num(m.test_loss);
    $("train-acc").value = pct(m.train_accuracy);
    $("test-acc").value = pct(m.test_accuracy);
  }
}
