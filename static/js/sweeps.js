// The sweeps page: the form of a new sweep (sweepform.js) and, once started or at /sweeps/{id}, the sweep's
// view (sweepview.js). Starting one stays on the page: its address becomes /sweeps/{id}.
import { SweepForm } from "./sweepform.js";
import { SweepView } from "./sweepview.js";

const $ = (id) => document.getElementById(id);
const catalog = JSON.parse($("sweep-catalog").textContent);
const view = new SweepView();

function show(id, owner) {
  $("sweep-form-section").hidden = true;
  $("sweep-view").hidden = false;
  document.title = `Neuroglass — sweep ${id}`;
  view.open(id, owner);
}

const sweep = document.body.dataset.sweep;
if (sweep) {
  show(sweep, document.body.dataset.owner === "true");
} else {
  new SweepForm(catalog, (answer) => {
    history.pushState(null, "", `/sweeps/${answer.id}`);
    show(answer.id, true);
    $("view-h").focus();
  });
}

// Back from /sweeps/{id} to the form (or forward again): the page that address shows.
window.addEventListener("popstate", () => location.reload());
