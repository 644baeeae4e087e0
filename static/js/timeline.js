// The timeline under the loss chart: a slider over the session's checkpoints. Dragging it back shows the
// network as it was then — the checkpoint's own frame, painted by the page's painter — while the live frames
// keep arriving unpainted; "continue from here" makes that moment the present (an htmx form: the server
// answers with the panels the restored spec changes), "back to live" returns to the stream.
import { decodeFrame } from "./frames.js";

const $ = (id) => document.getElementById(id);

export class Timeline {
  /**
   * @param {{api: string, live: object, paint: (frame: object) => void, readonly: boolean,
   *   onRestored: () => void}} opts `paint` draws a frame (live or past: `frame.header.checkpoint`);
   *   `onRestored` reloads what the page keeps beside frames (the loss history, the data).
   */
  constructor({ api, live, paint, readonly, onRestored }) {
    Object.assign(this, { api, live, paint, readonly, onRestored });
    this.range = $("timeline-range");
    this.out = $("timeline-epoch");
    this.banner = $("timeline-banner");
    this.checkpoints = [];
    this.viewing = null; // the epoch shown, or null: live
    this.asked = 0; // the newest request: older answers are dropped
    if (!this.range) return;
    this.range.disabled = false;
    const load = () => this.load();
    this.range.addEventListener("pointerdown", load);
    this.range.addEventListener("focus", load);
    this.range.addEventListener("input", () => this.show(+this.range.value));
    $("timeline-live").addEventListener("click", () => this.leave());
    document.body.addEventListener("ng:restored", () => {
      this.leave(false);
      this.onRestored();
    });
  }

  /** A live frame arrived: keep the slider's right end at "live" and say so. */
  follow(header) {
    if (this.viewing !== null || !this.range) return;
    this.out.value = `live · epoch ${header.epoch.toLocaleString()}`;
    this.range.setAttribute("aria-valuetext", `live, epoch ${header.epoch}`);
  }

  /** The checkpoints there are now (the slider spans them; its right end is the newest). */
  async load() {
    const before = this.range.value; // a key or a drag meanwhile wins over "stay at live"
    const r = await fetch(`${this.api}/checkpoints`);
    if (!r.ok) return;
    this.checkpoints = (await r.json()).checkpoints;
    const last = Math.max(0, this.checkpoints.length - 1);
    const atLive = this.viewing === null && this.range.value === before;
    this.range.max = String(last);
    if (atLive) this.range.value = String(last);
  }

  /** Show the checkpoint at slider position i (pausing a playing session, so the moment stays). */
  async show(i) {
    const moment = this.checkpoints[i];
    if (!moment) return;
    const ask = ++this.asked;
    if (!this.readonly && this.live.status === "running") this.live.request({ action: "pause" }).catch(() => {});
    const r = await fetch(`${this.api}/checkpoints/${moment.epoch}/frame?encoding=binary`);
    if (ask !== this.asked) return;
    if (!r.ok) {
      await this.load(); // thinned away meanwhile: take the checkpoints as they are now
      return;
    }
    const frame = decodeFrame(await r.arrayBuffer());
    this.viewing = moment.epoch;
    const now = this.live.frame?.header;
    const reshaped = now && JSON.stringify(now.layers) !== JSON.stringify(frame.header.layers);
    $("timeline-text").textContent =
      `viewing epoch ${moment.epoch.toLocaleString()}` +
      (now ? ` (it is at epoch ${now.epoch.toLocaleString()} now)` : "") +
      (reshaped ? " — the network had another shape then: continue from here to see it whole" : "");
    const input = $("timeline-epoch-input");
    if (input) input.value = String(moment.epoch);
    this.out.value = `epoch ${moment.epoch.toLocaleString()}`;
    this.range.setAttribute("aria-valuetext", `epoch ${moment.epoch}`);
    this.banner.hidden = false;
    document.body.classList.add("time-travel");
    this.paint(frame, { reshaped });
  }

  /** Back to the live stream (after "back to live", or once the session continued from the moment). */
  leave(repaint = true) {
    this.asked++;
    this.viewing = null;
    this.banner.hidden = true;
    document.body.classList.remove("time-travel");
    this.range.value = this.range.max;
    if (repaint && this.live.frame) this.paint(this.live.frame, { reshaped: false });
    if (this.live.frame) this.follow(this.live.frame.header);
  }
}
