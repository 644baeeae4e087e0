// The classroom on a session's page: "start a class" for the owner, and the class bar
// (templates/partials/class_bar.html) kept live over the class stream /ws/classes/{id}.
// Teacher: the student count, the mode, the challenge clock, pause all / release / lock / end, and the panel
// they show (the landscape tab) sent to the class. Student: follows what the class sees (a new spotlight
// reloads the page), opens the panel the teacher opens, "make it mine" once released, back to following
// when the teacher locks, their best and rank in the challenge.
import { ensureSession } from "./session.js";

const $ = (id) => document.getElementById(id);
const bar = $("class-bar");

async function call(method, url, body) {
  const r = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let answer = null;
  try {
    answer = await r.json();
  } catch {
    answer = null;
  }
  if (!r.ok) {
    const detail = answer?.detail;
    const text = typeof detail === "string" ? detail : Array.isArray(detail) ? detail[0]?.msg : null;
    throw new Error(text || `the server answered ${r.status}`);
  }
  return answer;
}

function showError(text) {
  const box = $("class-error") || $("page-error");
  if (!box) return;
  box.textContent = text;
  box.hidden = !text;
}

// ------------------------------------------------------------------------ "start a class" (the owner)

const start = $("class-start");
if (start) {
  start.addEventListener("click", async () => {
    start.disabled = true;
    try {
      const id = await ensureSession();
      await call("POST", "/api/v1/classes", { session_id: id });
      location.assign(`/s/${id}`);
    } catch (err) {
      start.disabled = false;
      showError(`The class could not start: ${err.message}`);
    }
  });
}

// ------------------------------------------------------------------------ the class bar

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function clockText(ch) {
  if (!ch) return "";
  if (!ch.ends_at) return "";
  const left = Math.round((Date.parse(ch.ends_at) - Date.now()) / 1000);
  if (left <= 0) return "time is up";
  const m = Math.floor(left / 60);
  const s = String(left % 60).padStart(2, "0");
  return `${m}:${s} left`;
}

class ClassBar {
  constructor(el) {
    this.el = el;
    this.id = el.dataset.class;
    this.role = el.dataset.role;
    this.student = el.dataset.student || null;
    this.forked = el.dataset.forked === "true";
    this.state = JSON.parse($("class-state").textContent);
    this.closed = false;
    this.retry = 1000;
    setInterval(() => this.tick(), 1000);
    if (this.role === "teacher") this.teacherControls();
    else this.studentControls();
    this.render(this.state);
    this.connect();
  }

  api(path) {
    return `/api/v1/classes/${this.id}${path}`;
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/classes/${this.id}`);
    ws.onmessage = (e) => this.message(JSON.parse(e.data));
    ws.onopen = () => {
      this.retry = 1000;
    };
    ws.onclose = (e) => {
      if (this.closed || e.code === 4410 || e.code === 4404) return;
      setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 10000);
    };
  }

  message(msg) {
    if (msg.type === "hello" || msg.type === "class" || msg.type === "roster") this.render(msg.class);
    else if (msg.type === "removed" && msg.student_id === this.student) {
      this.finish("The teacher removed you from the class.");
    } else if (msg.type === "ended") this.finish("The class has ended. Thank you for taking part!");
  }

  finish(text) {
    this.closed = true;
    this.el.classList.add("class-over");
    for (const b of this.el.querySelectorAll("button")) b.disabled = true;
    showError(text);
  }

  render(c) {
    const before = this.state;
    this.state = c;
    this.el.dataset.mode = c.mode;
    const ch = c.challenge;
    const goal = $("class-challenge");
    goal.hidden = !ch;
    goal.textContent = ch ? `${this.role === "teacher" ? "challenge" : "goal"}: ${ch.goal}` : "";
    this.tick();
    if (this.role === "teacher") this.renderTeacher(c);
    else this.renderStudent(c, before);
  }

  tick() {
    const clock = $("class-clock");
    if (clock) clock.textContent = clockText(this.state.challenge);
  }

  // ---------------------------------------------------------------- the teacher

  teacherControls() {
    const act = (id, method, path, body) =>
      $(id).addEventListener("click", async () => {
        showError("");
        try {
          this.render(await call(method, this.api(path), body));
        } catch (err) {
          showError(err.message);
        }
      });
    act("class-pause-all", "POST", "/pause_all");
    act("class-release", "POST", "/release");
    act("class-lock", "POST", "/lock");
    $("class-end").addEventListener("click", async () => {
      if (!confirm("End the class? The code stops working; the roster and results are kept.")) return;
      try {
        await call("POST", this.api("/end"));
        this.finish("The class has ended: its roster and results are on the dashboard.");
      } catch (err) {
        showError(err.message);
      }
    });
    // the panel the teacher opens, the class opens too
    const tab = $("landscape-tab");
    if (tab) {
      new MutationObserver(() => {
        const panel = tab.getAttribute("aria-expanded") === "true" ? "landscape" : "main";
        if (panel === this.state.panel) return;
        this.state.panel = panel;
        call("PUT", this.api("/panel"), { panel }).catch((err) => showError(err.message));
      }).observe(tab, { attributes: true, attributeFilter: ["aria-expanded"] });
    }
  }

  renderTeacher(c) {
    $("class-students").textContent = plural(c.students, "student");
    $("class-mode-words").textContent =
      c.mode === "following" ? "students follow you" : "released: students may change their own copy";
    $("class-release").hidden = c.mode === "released";
    $("class-lock").hidden = c.mode === "following";
    if (c.status === "ended") this.finish("The class has ended.");
  }

  // ---------------------------------------------------------------- a student

  studentControls() {
    const fork = $("class-fork");
    if (!fork) return;
    fork.addEventListener("click", async () => {
      fork.disabled = true;
      showError("");
      try {
        const s = await call("POST", this.api(`/students/${this.student}/fork`));
        location.assign(`/s/${s.id}`);
      } catch (err) {
        fork.disabled = this.state.mode !== "released";
        showError(err.message);
      }
    });
  }

  renderStudent(c, before) {
    if (c.status === "ended") return this.finish("The class has ended. Thank you for taking part!");
    if (this.forked) {
      // locked: everyone back to following
      if (c.mode === "following" && before.mode === "released") location.assign(`/class/${this.id}`);
    } else {
      if (c.following !== this.el.dataset.following) {
        location.reload(); // a new spotlight (or back to the teacher): the page of the session now shown
        return;
      }
      const fork = $("class-fork");
      fork.disabled = c.mode !== "released";
      $("class-fork-hint").textContent =
        c.mode === "released" ? "go on from here on your own" : "when the teacher releases the class";
      this.followPanel(c.panel);
    }
    this.renderRank(c.challenge);
  }

  followPanel(panel) {
    const tab = $("landscape-tab");
    if (!tab) return;
    const open = tab.getAttribute("aria-expanded") === "true";
    if ((panel === "landscape") !== open) tab.click();
  }

  renderRank(ch) {
    const out = $("class-rank");
    if (!ch) {
      out.textContent = "";
      return;
    }
    const board = ch.leaderboard || [];
    const mine = board.find((row) => row.student_id === this.student);
    if (!mine) {
      out.textContent = this.forked ? "no result yet" : "make it yours to take part";
      return;
    }
    const best = mine.best === null || mine.best === undefined ? "—" : Number(mine.best).toPrecision(3);
    out.textContent = `${mine.met_at != null ? "goal met ✓ · " : ""}your best ${best} · rank ${mine.rank} of ${board.length}`;
  }
}

if (bar) new ClassBar(bar);
