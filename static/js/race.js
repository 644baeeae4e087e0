// The optimizer race of the optimization panel: copies of the network trained from its current weights
// with up to three optimizers (POST .../race), their paths on one shared plane and their loss curves.
// Watchers may race too: it never changes the session.
import { drawPath, paintSlice, smallChart } from "./slice.js";

const $ = (id) => document.getElementById(id);
const RUN_COLOURS = ["#ffffff", "#ff4fd8", "#00e5ff"];

/** The runs the form asks for, each with the index of its row (its colour). */
function chosenRuns() {
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const optimizer = $(`race-opt-${i}`).value;
    if (optimizer) runs.push({ optimizer, learning_rate: +$(`race-lr-${i}`).value, index: i });
  }
  return runs;
}

/** The first of the server's reasons for refusing, in words. */
function refusal(out, status) {
  const d = out.detail?.[0];
  return d ? `${d.loc?.slice(-1)[0] ?? ""}: ${d.msg}`.replace(/^: /, "") : `the server answered ${status}`;
}

export class Race {
  constructor(api, resolution) {
    this.api = api;
    this.resolution = resolution;
    this.chart = null;
    $("race-btn").addEventListener("click", () => this.run());
  }

  async run() {
    const runs = chosenRuns();
    const center = $("race-center").value;
    const request = {
      runs: runs.map(({ optimizer, learning_rate }) => ({ optimizer, learning_rate })),
      epochs: +$("race-epochs").value,
      resolution: this.resolution,
    };
    if (center !== "") request.center = runs.findIndex((r) => r.index === +center);
    const note = $("race-note");
    note.classList.remove("error");
    note.textContent = `racing ${runs.length} copies for ${request.epochs} epochs…`;
    $("race-btn").disabled = true;
    try {
      const r = await fetch(`${this.api}/race`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(request),
      });
      const out = await r.json();
      if (!r.ok) throw new Error(refusal(out, r.status));
      this.show(out, runs.map((run) => RUN_COLOURS[run.index]));
    } catch (err) {
      note.textContent = `the race could not run: ${err.message}`;
      note.classList.add("error");
    } finally {
      $("race-btn").disabled = false;
    }
  }

  /** The race's answer: the paths on the shared plane, a sentence per run, the loss curves. */
  show(out, colours) {
    document.querySelector(".race-out").hidden = false; // shown from the first race on
    const c = $("race-plane");
    const plane = paintSlice(c, out.loss, out.span);
    out.runs.forEach((run, k) => {
      drawPath(plane, run.alpha, run.beta, colours[k]);
    });
    c.dataset.runs = String(out.runs.length);
    const ends = out.runs.map((run) => {
      const loss = run.curve.train_loss.at(-1)?.toPrecision(3) ?? "off scale";
      const far = Math.max(...run.off_plane.filter((v) => v != null)).toPrecision(2);
      return `${run.label}: loss ${loss}, at most ${far} off the plane`;
    });
    $("race-note").textContent = `${[`from epoch ${out.from_epoch}, ${out.epochs} epochs each`, ...ends, ...out.notes].join("; ")}.`;
    if (this.chart) this.chart.destroy();
    const series = out.runs.map((run, k) => ({ label: run.label, stroke: colours[k] === "#ffffff" ? "#1b1f24" : colours[k] }));
    this.chart = smallChart($("race-chart"), series, "epoch");
    this.chart.setData([out.runs[0].curve.epoch, ...out.runs.map((run) => run.curve.train_loss)]);
  }
}
