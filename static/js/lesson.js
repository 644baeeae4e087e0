// The top bar's lessons menu (a <details>: Escape or a click elsewhere closes it, the arrow keys move through
// it), and a lesson beside the playground (templates/partials/lesson_aside.html): outline the panels the
// lesson points at (again after htmx swaps a panel in anew), mark the variant being tried, and keep the
// lesson's address in the address bar (a reload opens the lesson afresh; "link to this experiment" keeps the
// student's changes). The session's own page (/s/{id}) and its watchers' (/watch/{id}) show the lesson too.
const aside = document.getElementById("lesson-aside");
const menu = document.getElementById("lessons-menu");

/** Escape closes the menu (focus back on its button); ↓ / ↑ move between its links. */
function menuKeys(e) {
  const links = [...menu.querySelectorAll(".lessons-menu-pop a")];
  const at = links.indexOf(document.activeElement);
  if (e.key === "Escape") {
    menu.open = false;
    menu.querySelector("summary").focus();
  } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    e.preventDefault();
    if (!menu.open) menu.open = true;
    const step = e.key === "ArrowDown" ? 1 : -1;
    const next = at < 0 ? (step > 0 ? 0 : links.length - 1) : (at + step + links.length) % links.length;
    links[next].focus();
  }
}

if (menu) {
  menu.addEventListener("keydown", menuKeys);
  document.addEventListener("click", (e) => {
    if (menu.open && !menu.contains(e.target)) menu.open = false;
  });
}

/** Outline every element the lesson's selectors find; the ones already outlined stay. */
function outline() {
  for (const selector of JSON.parse(aside.dataset.panels || "[]")) {
    for (const el of document.querySelectorAll(selector)) el.classList.add("lesson-highlight");
  }
}

/** The variant last applied is pressed; start over releases them all. */
function markVariant(button) {
  for (const b of aside.querySelectorAll(".lesson-variant")) {
    b.setAttribute("aria-pressed", String(b === button));
  }
}

/** Opened at /lessons/{slug}: the address stays there (a session's own /s/{id} and /watch/{id} keep theirs). */
function keepAddress() {
  const here = aside.dataset.address;
  if (!here) return;
  const keep = () => history.replaceState(null, "", here);
  document.body.addEventListener("ng:spec", keep);
  keep();
}

if (aside) {
  outline();
  document.addEventListener("htmx:afterSettle", outline);
  document.addEventListener("htmx:oobAfterSwap", outline);
  markVariant(null);
  aside.addEventListener("htmx:afterRequest", (e) => {
    if (!e.detail.successful) return;
    const button = e.detail.elt;
    if (button.classList.contains("lesson-variant")) markVariant(button);
    else if (button.id === "lesson-start-over") markVariant(null);
  });
  keepAddress();
}
