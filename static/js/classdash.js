// The teacher's dashboard (templates/classdash.html): the roster, every student's decision map, the
// leaderboard and the challenge, live over /ws/classes/{id}; the class controls over its REST API.
// Everything a student typed is set as text (never as HTML).
const $ = (id) => document.getElementById(id);
const classId = document.body.dataset.class;
const api = (path) => `/api/v1/classes/${classId}${path}`;
let state = JSON.parse($("dash-state").textContent);

async function call(method, path, body) {
  const r = await fetch(api(path), {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 204) return null;
  let answer = null;
  try {
    answer = await r.json();
  } catch {
    answer = null;
  }
  if (!r.ok) {
    const detail = answer?.detail;
    if (Array.isArray(detail)) {
      const first = detail[0] || {};
      const where = (first.loc || []).filter((p) => p !== "body").join(".");
      throw new Error(`${where ? `${where}: ` : ""}${first.msg || "not accepted"}`);
    }
    throw new Error(typeof detail === "string" ? detail : `the server answered ${r.status}`);
  }
  return answer;
}

function showError(text, box = $("dash-error")) {
  box.textContent = text;
  box.hidden = !text;
}

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

const fmt = (v, digits = 3) => (v === null || v === undefined ? "—" : Number(v).toPrecision(digits));
const pct = (v) => (v === null || v === undefined ? "—" : `${(100 * v).toFixed(1)} %`);

// ------------------------------------------------------------------------ the roster

function challengeCell(st) {
  const td = el("td");
  if (st.met_at != null) td.append(el("span", "met ✓", "met"));
  else if (st.breaks?.length) td.append(el("span", `over: ${st.breaks.join(", ")}`, "broken"));
  else if (st.best !== null && st.best !== undefined) td.append(el("span", `best ${fmt(st.best)}`));
  else td.textContent = "—";
  return td;
}

function actionsCell(st, c) {
  const td = el("td");
  if (c.status !== "open") return td;
  if (st.session_id) {
    const spot = el("button", c.spotlight === st.id ? "in the spotlight" : "spotlight");
    spot.type = "button";
    spot.disabled = c.spotlight === st.id;
    spot.title = `show ${st.name}'s session to the whole class`;
    spot.setAttribute("aria-label", `${spot.textContent}: ${st.name}`);
    spot.addEventListener("click", () => act("PUT", "/spotlight", { student_id: st.id }));
    td.append(spot, " ");
  }
  const remove = el("button", "remove", "danger");
  remove.type = "button";
  remove.title = `take ${st.name} out of the class`;
  remove.setAttribute("aria-label", `remove ${st.name}`);
  remove.addEventListener("click", () => {
    if (confirm(`Remove ${st.name} from the class?`)) act("DELETE", `/students/${st.id}`);
  });
  td.append(remove);
  return td;
}

function renderRoster(roster, c) {
  const body = $("roster").tBodies[0];
  body.replaceChildren();
  $("roster-count").textContent = roster.length ? `(${roster.length})` : "";
  $("roster-empty").hidden = roster.length > 0;
  $("roster").hidden = roster.length === 0;
  for (const st of roster) {
    const tr = el("tr");
    if (c.spotlight === st.id) tr.className = "spotlit";
    const name = el("td", null, "name");
    const dot = el("span", null, `dot${st.connected ? " on" : ""}`);
    dot.title = st.connected ? "connected" : "not connected";
    name.append(dot, el("span", st.name), el("span", st.connected ? " (connected)" : " (away)", "sr-only"));
    const m = st.metrics || {};
    tr.append(
      name,
      el("td", st.session_id ? `own copy · ${st.status}` : "following"),
      el("td", st.epoch ?? "—"),
      el("td", fmt(m.test_loss)),
      el("td", pct(m.test_accuracy)),
      el("td", st.neurons ?? "—"),
      challengeCell(st),
      actionsCell(st, c),
    );
    body.append(tr);
  }
}

// ------------------------------------------------------------------------ the decision maps

const tiles = new Map(); // student id → {li, img, map}

function renderMaps(roster) {
  const list = $("maps");
  const seen = new Set();
  for (const st of roster) {
    seen.add(st.id);
    let tile = tiles.get(st.id);
    if (!tile) {
      const li = el("li");
      tile = { li, name: el("span", "", "tile-name"), facts: el("span", "", "hint"), box: el("div", "", "no-map") };
      li.append(tile.box, tile.name, tile.facts);
      tiles.set(st.id, tile);
    }
    tile.name.textContent = st.name;
    tile.facts.textContent = st.session_id ? `epoch ${st.epoch} · loss ${fmt(st.metrics?.test_loss, 2)}` : "following";
    tile.li.classList.toggle("met-goal", st.met_at != null);
    if (st.session_id && st.map !== tile.map) {
      tile.map = st.map;
      const img = el("img");
      img.alt = `${st.name}'s decision map at epoch ${st.epoch}`;
      img.width = 112;
      img.height = 112;
      img.src = api(`/students/${st.id}/map.png?v=${encodeURIComponent(st.map)}`);
      tile.box.replaceWith(img);
      tile.box = img;
    } else if (!st.session_id && tile.box.tagName === "IMG") {
      const box = el("div", "not their own yet", "no-map");
      tile.box.replaceWith(box);
      tile.box = box;
      tile.map = null;
    } else if (!st.session_id) tile.box.textContent = "not their own yet";
    list.append(tile.li); // in the roster's order
  }
  for (const [id, tile] of tiles) {
    if (!seen.has(id)) {
      tile.li.remove();
      tiles.delete(id);
    }
  }
}

// ------------------------------------------------------------------------ the class and its challenge

function clock(ch) {
  if (!ch?.ends_at) return "";
  const left = Math.round((Date.parse(ch.ends_at) - Date.now()) / 1000);
  if (left <= 0) return "time is up";
  return `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left`;
}

function renderClass(c) {
  $("dash-status").textContent = c.status;
  $("dash-status").dataset.status = c.status;
  $("dash-mode").textContent =
    c.status !== "open"
      ? "The class has ended."
      : c.mode === "following"
        ? "Students follow the class's session (locked)."
        : "Released: students may make the session their own.";
  $("dash-spotlight").textContent = c.spotlight_name ? `In the spotlight: ${c.spotlight_name}.` : "";
  if ($("dash-release")) {
    $("dash-release").disabled = c.mode === "released";
    $("dash-lock").disabled = c.mode === "following";
    $("dash-unspot").disabled = !c.spotlight;
  }
  const ch = c.challenge;
  $("challenge-now").textContent = ch ? ch.goal : "No challenge set.";
  $("challenge-clock").textContent = clock(ch);
  if ($("ch-end")) $("ch-end").disabled = !ch?.running;
  const board = $("board");
  board.replaceChildren();
  const rows = ch?.leaderboard || [];
  $("board-empty").hidden = rows.length > 0;
  for (const row of rows) {
    const li = el("li");
    li.append(el("b", row.name), ` ${fmt(row.best)}`);
    if (row.met_at != null) li.append(" ", el("span", `met ✓ after ${Math.round(row.met_at)} s`, "met"));
    board.append(li);
  }
}

function render(next) {
  state = { ...state, ...next };
  renderClass(state.class);
  if (state.roster) {
    renderRoster(state.roster, state.class);
    renderMaps(state.roster);
  }
}

async function act(method, path, body) {
  showError("");
  try {
    const answer = await call(method, path, body);
    if (answer?.id === classId) render({ class: answer });
  } catch (err) {
    showError(err.message);
  }
}

function bind(id, method, path, body) {
  $(id)?.addEventListener("click", () => act(method, path, body));
}

bind("dash-pause-all", "POST", "/pause_all");
bind("dash-release", "POST", "/release");
bind("dash-lock", "POST", "/lock");
bind("dash-unspot", "PUT", "/spotlight", { student_id: null });
$("dash-end")?.addEventListener("click", () => {
  if (confirm("End the class? The code stops working; the roster and results are kept.")) act("POST", "/end");
});
$("dash-reopen")?.addEventListener("click", async () => {
  try {
    await call("POST", "/reopen");
    location.reload();
  } catch (err) {
    showError(err.message);
  }
});

// "the class's data": the points every student must keep, read from the presenter's session as it is now
const KEPT_DATA = ["n", "noise", "train_percent", "seed"];

async function challengeBody(form) {
  const data = new FormData(form);
  const body = { metric: data.get("metric"), comparison: data.get("comparison") };
  for (const key of ["value", "minutes", "max_neurons", "max_layers"]) {
    const v = String(data.get(key) ?? "").trim();
    if (v !== "") body[key] = Number(v);
  }
  if (data.get("dataset")) body.dataset = data.get("dataset");
  if (data.get("keep_data")) {
    const r = await fetch(`/api/v1/sessions/${state.class.presenter_id}`, { credentials: "same-origin" });
    if (!r.ok) throw new Error("the class's session is gone: its data cannot be kept");
    const dataset = (await r.json()).spec.dataset;
    body.dataset ??= dataset.name;
    body.keep = Object.fromEntries(KEPT_DATA.map((k) => [`dataset.${k}`, dataset[k]]));
  }
  return body;
}

const form = $("challenge-form");
form?.addEventListener("submit", async (e) => {
  e.preventDefault();
  showError("", $("ch-error"));
  try {
    render({ class: await call("PUT", "/challenge", await challengeBody(form)) });
  } catch (err) {
    showError(err.message, $("ch-error"));
  }
});
$("ch-end")?.addEventListener("click", () => act("DELETE", "/challenge"));

setInterval(() => {
  $("challenge-clock").textContent = clock(state.class.challenge);
}, 1000);

// ------------------------------------------------------------------------ live

let retry = 1000;
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/classes/${classId}`);
  ws.onopen = () => {
    retry = 1000;
  };
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.type === "roster") render({ class: msg.class, roster: msg.roster });
    else if (msg.type === "class" || msg.type === "hello") render({ class: msg.class });
    else if (msg.type === "ended") render({ class: { ...state.class, status: "ended" } });
  };
  ws.onclose = (e) => {
    if (e.code === 4410 || e.code === 4404) return;
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 10000);
  };
}

render(state);
if (state.class.status === "open") connect();
