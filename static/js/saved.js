// Saved work on every page: copy a share link, let the saved-work forms show their refusals (their answers are
// fragments with the reason in words, whatever the status), keep /experiments' address in step with its
// search and page, and — on pages without a session — say why a request failed.
const $ = (id) => document.getElementById(id);

/** A button with data-copy="<input id>" copies that input's text (or selects it, for Ctrl+C). */
document.addEventListener("click", async (e) => {
  const button = e.target.closest?.("[data-copy]");
  if (!button) return;
  const input = $(button.dataset.copy);
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
    button.textContent = "copied ✓";
  } catch {
    button.textContent = "press Ctrl+C";
  }
  setTimeout(() => {
    button.textContent = "copy";
  }, 2000);
});

/** Answers to the saved-work forms (marked data-swap-errors) are swapped even when refused (403, 413, 503). */
document.addEventListener("htmx:beforeSwap", (e) => {
  const status = e.detail.xhr.status;
  if (status >= 400 && e.detail.elt.closest?.("[data-swap-errors]")) {
    e.detail.shouldSwap = true;
    e.detail.isError = false;
  }
});

/** The experiments list says which search and page it shows: the address follows, so a reload keeps them. */
document.addEventListener("htmx:afterSettle", () => {
  const list = $("experiment-list");
  if (list?.dataset.url && location.pathname === "/experiments") history.replaceState(null, "", list.dataset.url);
});

/** A page without a session (the playground's own bootstrap says it there): why a request failed. */
if (!document.body?.dataset.session) {
  const say = (text) => {
    const el = $("page-error");
    if (!el) return;
    el.textContent = text;
    el.hidden = !text;
  };
  document.addEventListener("htmx:responseError", (e) => say(`the server answered ${e.detail.xhr.status}: try again`));
  document.addEventListener("htmx:sendError", () => say("the server cannot be reached: is it still running?"));
  document.addEventListener("htmx:afterRequest", (e) => {
    if (e.detail.successful) say("");
  });
}
