// "How a convolution works": the fragment is server-rendered (htmx steps and plays it); this paints its
// image with the patch outlined, moves the patch where the image is clicked, follows the chosen test image,
// and refreshes the numbers now and then while the network trains.

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 2000;
const PLAY_MS = 700; // one step of "play"

/** Paint the walkthrough's input (test image or input map) and outline the patch. */
function paintImage() {
  const c = $("conv-image");
  if (!c || c.dataset.painted) return;
  const px = JSON.parse(c.dataset.pixels);
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(c.width, c.height);
  px.forEach((row, y) => {
    row.forEach((q, x) => {
      img.data.set([q, q, q, 255], (y * c.width + x) * 4);
    });
  });
  ctx.putImageData(img, 0, 0);
  const [top, left] = JSON.parse(c.dataset.origin);
  const size = +c.dataset.size;
  ctx.strokeStyle = "#0b5fb0";
  ctx.lineWidth = Math.max(0.5, c.width / 84);
  ctx.strokeRect(left + 0.25, top + 0.25, size - 0.5, size - 0.5);
  c.dataset.painted = "1";
}

/** A click on the image: the patch (its n × n outputs) centred there. */
function movePatch(c, e) {
  const box = c.getBoundingClientRect();
  const y = ((e.clientY - box.top) / box.height) * c.height;
  const x = ((e.clientX - box.left) / box.width) * c.width;
  const [ph, pw] = JSON.parse(c.dataset.pads);
  const [ho, wo] = JSON.parse(c.dataset.map);
  const s = +c.dataset.stride;
  const n = +c.dataset.n;
  const clamp = (v, hi) => Math.max(0, Math.min(hi, v));
  $("conv-row").value = clamp(Math.round((y + ph) / s - n / 2), ho - n);
  $("conv-col").value = clamp(Math.round((x + pw) / s - n / 2), wo - n);
  $("conv-picked").value = "1";
  htmx.trigger("#conv-form", "change");
}

export class ConvWalk {
  constructor() {
    this.playing = null; // the play timer
    this.lastRefresh = 0;
    this.lastTouch = 0; // when the user last stepped, played or picked something here
    this.walkedEpoch = 0; // the epoch the numbers were last fetched for (the page loads them at epoch 0)
    document.addEventListener("click", (e) => {
      const c = e.target.closest?.("#conv-image");
      if (c) movePatch(c, e);
      if (e.target.closest?.("#conv-play")) this.togglePlay();
    });
    for (const type of ["click", "change", "keydown"])
      document.addEventListener(
        type,
        (e) => {
          if (e.target.closest?.("#conv-walk")) this.lastTouch = performance.now();
        },
        true,
      );
    document.addEventListener("change", (e) => e.target.closest?.("#conv-form") && this.setPlaying(false));
    document.addEventListener("htmx:afterSettle", () => {
      paintImage();
      this.showPlaying();
    });
    document.addEventListener("htmx:load", paintImage);
  }

  togglePlay() {
    if (this.playing) return this.setPlaying(false);
    if ($("conv-next")?.disabled) $("conv-first")?.click(); // at the end: start again
    this.setPlaying(true);
  }

  /** "play": click "next" every PLAY_MS (never while a step is still on its way) until the last step. */
  setPlaying(on) {
    clearInterval(this.playing);
    this.playing = on ? setInterval(() => this.playStep(), PLAY_MS) : null;
    this.showPlaying();
  }

  playStep() {
    const next = $("conv-next");
    if (document.querySelector("#conv-walk.htmx-request, #conv-walk .htmx-request")) return;
    if (!next || next.disabled) return this.setPlaying(false);
    next.click();
  }

  showPlaying() {
    const walk = $("conv-walk");
    const btn = $("conv-play");
    const on = this.playing !== null;
    if (walk) walk.dataset.playing = String(on);
    if (!btn) return;
    btn.textContent = on ? "❚❚ pause" : "▶ play";
    btn.setAttribute("aria-pressed", String(on));
    btn.title = on ? "stop at this step" : "step through it by itself";
  }

  /** The chosen test image changed: walk over it instead. */
  example(e) {
    const field = $("conv-example");
    if (!field || field.value === String(e)) return;
    field.value = String(e);
    htmx.trigger("#conv-form", "change");
  }

  /** A frame arrived: bring the numbers up to the new weights — every few seconds while training, at once
  when training stops (not while it plays, or just after the user touched it). */
  tick(epoch, running) {
    const walk = $("conv-walk");
    if (epoch === this.walkedEpoch || !walk || !$("conv-form") || this.playing) return;
    const now = performance.now();
    if (running && (now - this.lastRefresh < REFRESH_MS || now - this.lastTouch < REFRESH_MS)) return;
    this.lastRefresh = now;
    this.walkedEpoch = epoch;
    htmx.trigger(walk, "ng:refresh");
  }
}
