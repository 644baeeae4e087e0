// "How a convolution works": the fragment is server-rendered (htmx steps and plays it); this paints its
// image with the patch outlined, moves the patch where the image is clicked, follows the chosen test image,
// and refreshes the numbers now and then while the network trains.

const REFRESH_MS = 2000;
const PLAY_MS = 700; // one step of "play"
let playing = null; // the play timer
let lastRefresh = 0;
let lastTouch = 0; // when the user last stepped, played or picked something here
let walkedEpoch = 0; // the epoch the numbers were last fetched for (the page loads them at epoch 0)

/** Paint the walkthrough's input (test image or input map) and outline the patch. */
function paintImage() {
  const c = document.getElementById("conv-image");
  if (!c || c.dataset.painted) return;
  const px = JSON.parse(c.dataset.pixels);
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(c.width, c.height);
  px.forEach((row, y) =>
    row.forEach((q, x) => {
      const p = (y * c.width + x) * 4;
      img.data[p] = img.data[p + 1] = img.data[p + 2] = q;
      img.data[p + 3] = 255;
    }),
  );
  ctx.putImageData(img, 0, 0);
  const [top, left] = JSON.parse(c.dataset.origin);
  const size = +c.dataset.size;
  ctx.strokeStyle = "#0b5fb0";
  ctx.lineWidth = Math.max(0.5, c.width / 84);
  ctx.strokeRect(left + 0.25, top + 0.25, size - 0.5, size - 0.5);
  c.dataset.painted = "1";
}

/** A click on the image: the patch (its n × n outputs) centred there. */
document.addEventListener("click", (e) => {
  const c = e.target.closest?.("#conv-image");
  if (!c) return;
  const box = c.getBoundingClientRect();
  const y = ((e.clientY - box.top) / box.height) * c.height;
  const x = ((e.clientX - box.left) / box.width) * c.width;
  const [ph, pw] = JSON.parse(c.dataset.pads);
  const [ho, wo] = JSON.parse(c.dataset.map);
  const s = +c.dataset.stride;
  const n = +c.dataset.n;
  const clamp = (v, hi) => Math.max(0, Math.min(hi, v));
  document.getElementById("conv-row").value = clamp(Math.round((y + ph) / s - n / 2), ho - n);
  document.getElementById("conv-col").value = clamp(Math.round((x + pw) / s - n / 2), wo - n);
  document.getElementById("conv-picked").value = "1";
  htmx.trigger("#conv-form", "change");
});

for (const type of ["click", "change", "keydown"])
  document.addEventListener(type, (e) => e.target.closest?.("#conv-walk") && (lastTouch = performance.now()), true);

/** "play": click "next" every PLAY_MS (never while a step is still on its way) until the last step. */
function setPlaying(on) {
  clearInterval(playing);
  playing = on
    ? setInterval(() => {
        const next = document.getElementById("conv-next");
        if (document.querySelector("#conv-walk.htmx-request, #conv-walk .htmx-request")) return;
        if (!next || next.disabled) return setPlaying(false);
        next.click();
      }, PLAY_MS)
    : null;
  showPlaying();
}

function showPlaying() {
  const walk = document.getElementById("conv-walk");
  const btn = document.getElementById("conv-play");
  if (walk) walk.dataset.playing = String(playing !== null);
  if (!btn) return;
  btn.textContent = playing ? "❚❚ pause" : "▶ play";
  btn.setAttribute("aria-pressed", String(playing !== null));
  btn.title = playing ? "stop at this step" : "step through it by itself";
}

document.addEventListener("click", (e) => {
  if (!e.target.closest?.("#conv-play")) return;
  if (playing) return setPlaying(false);
  const next = document.getElementById("conv-next");
  if (next?.disabled) document.getElementById("conv-first")?.click(); // at the end: start again
  setPlaying(true);
});
document.addEventListener("change", (e) => e.target.closest?.("#conv-form") && setPlaying(false));

document.addEventListener("htmx:afterSettle", () => {
  paintImage();
  showPlaying();
});
document.addEventListener("htmx:load", paintImage);

/** The chosen test image changed: walk over it instead. */
export function walkExample(e) {
  const field = document.getElementById("conv-example");
  if (!field || field.value === String(e)) return;
  field.value = String(e);
  htmx.trigger("#conv-form", "change");
}

/** A frame arrived: bring the numbers up to the new weights — every few seconds while training, at once
when training stops (not while it plays, or just after the user touched it). */
export function walkTick(epoch, running) {
  const walk = document.getElementById("conv-walk");
  if (epoch === walkedEpoch || !walk || !document.getElementById("conv-form") || playing) return;
  const now = performance.now();
  if (running && (now - lastRefresh < REFRESH_MS || now - lastTouch < REFRESH_MS)) return;
  lastRefresh = now;
  walkedEpoch = epoch;
  htmx.trigger(walk, "ng:refresh");
}
