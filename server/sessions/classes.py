"""``Classes``: live classrooms. A teacher opens a class on a session (the presenter's); students join by
its code and follow the presenter's frames (the session's own fan-out: computed once, the same bytes to
every socket); the teacher locks, releases and pauses everyone; students make the presenter's session
theirs (a fork continuing from its weights) and compete on a challenge; the teacher's dashboard gets the
roster and leaderboard once a second. Classes are written to the store as they change, so they outlive
a restart and can be read and reopened later."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import logging
import secrets
import time
import uuid
from datetime import timedelta
from typing import Any

from PIL import Image

from server.classspec import Challenge
from server.config import Settings
from server.errors import Conflict, Forbidden, NotFound, TooMany, Unavailable
from server.sessions import broadcast
from server.sessions.broadcast import Mailbox
from server.sessions.classroom import (
    Classroom,
    Round,
    Student,
    expiry,
    from_record,
    new_code,
    now,
    record_of,
    typed_code,
)
from server.sessions.library import Library
from server.sessions.registry import CLIENT, Registry
from server.sessions.runner import Runner, Workers
from server.sessions.session import Session, Snapshot
from server.store import Store, StoreError, token_hash

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0  # the dashboard's roster and the challenge's scoring
WRITE_SECONDS = 5.0  # a changed class is written at most this often (and at every change of mode or roster)
LISTED_CLASSES = 100  # a teacher's list of their classes reads at most this many of their cookies


class Classes:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        runner: Runner,
        workers: Workers,
        library: Library | None,
        store: Store | None,
    ):
        self.settings, self.registry, self.runner, self.workers = settings, registry, runner, workers
        self.library, self.store = library, store
        self.open: dict[str, Classroom] = {}  # open classes by id
        self.codes: dict[str, str] = {}  # join code -> class id
        self.gone: dict[str, str] = {}  # codes of classes that ended lately -> why (a late student is told)
        self.of_session: dict[str, tuple[str, str]] = {}  # a student's session -> (class id, student id)
        # (kind, client) -> times of its recent join attempts ("join") and wrong codes ("wrong")
        self.joins: dict[tuple[str, str], collections.deque[float]] = {}
        self.maps: dict[str, tuple[tuple[Any, ...], bytes]] = {}  # session -> (moment, decision-map PNG)
        self.task: asyncio.Task[None] | None = None
        self.last_write = 0.0

    # ------------------------------------------------------------------------------------ lifecycle

    def _saved(self) -> Library:
        if self.library is None:
            raise Unavailable("this server runs without a store: classes are off")
        return self.library

    async def open_class(self, presenter: Session, name: str) -> tuple[Classroom, str]:
        """A new class on the presenter's session; answers it and the teacher's token."""
        self._saved()
        client = CLIENT.get()
        mine = [c for c in self.open.values() if c.client == client] if client else []
        if len(mine) >= self.settings.max_classes_per_client:
            raise TooMany(f"one client runs at most {self.settings.max_classes_per_client} classes at once")
        token = secrets.token_urlsafe(24)
        at = now()
        c = Classroom(
            uuid.uuid4().hex,
            new_code(self.codes),
            name or "class",
            token_hash(token),
            presenter.id,
            at,
            expiry(self.settings.class_hours, at),
        )
        c.client = client
        self._admit(c)
        self.runner.cohorts.prepare(presenter)  # the students' copies will play together: compile for them now
        await self._write(c)
        return c, token

    def _admit(self, c: Classroom) -> None:
        self.open[c.id] = c
        self.codes[c.code] = c.id
        self.registry.pinned.add(c.presenter_id)
        for st in c.students.values():
            if st.session_id is not None:
                self.of_session[st.session_id] = (c.id, st.id)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._ticker())

    def get(self, class_id: str) -> Classroom:
        c = self.open.get(class_id)
        if c is None:
            raise NotFound(f"no open class {class_id!r} (it may have ended: its results are kept)")
        return c

    async def read(self, class_id: str) -> Classroom:
        """An open class, or an ended one from the store."""
        if class_id in self.open:
            return self.open[class_id]
        rec = await self.store.class_record(class_id) if self.store is not None else None
        if rec is None:
            raise NotFound(f"no class {class_id!r}")
        return from_record(rec)

    async def taught(self, tokens: dict[str, str]) -> list[Classroom]:
        """The classes these teacher tokens run (class id → token: a browser's class cookies), open or ended,
        newest first; ids unknown here or a token that is not the teacher's are left out."""
        out = []
        for class_id, token in list(tokens.items())[:LISTED_CLASSES]:
            try:
                c = await self.read(class_id)
            except NotFound:
                continue
            if c.is_teacher(token):
                out.append(c)
        return sorted(out, key=lambda c: c.created, reverse=True)

    @staticmethod
    def teacher(c: Classroom, token: str | None) -> Classroom:
        if token is None:
            raise Forbidden("this changes the class: send the teacher's token as 'Authorization: Bearer <token>'")
        if not c.is_teacher(token):
            raise Forbidden("only the class's teacher may do this (wrong token)")
        return c

    @staticmethod
    def student(c: Classroom, student_id: str, token: str | None) -> Student:
        st = c.students.get(student_id)
        if st is None:
            raise NotFound(f"no student {student_id!r} in this class (the teacher may have removed them)")
        if not st.check(token):
            raise Forbidden("only this student may do this (send their token as 'Authorization: Bearer <token>')")
        return st

    async def end(self, c: Classroom) -> None:
        """End the class: the code stops working, the presenter is saved as an experiment, everything is kept."""
        if c.status != "open":
            return
        presenter = self.registry.sessions.get(c.presenter_id)
        if presenter is not None:
            with contextlib.suppress(StoreError):
                record, _ = await self._saved().save(presenter, f"{c.name}: the presenter's session")
                c.experiment_id = record.id
        at = now()
        current = c.round
        if current is not None and current.running(at):
            self._score(c, at)  # the last scores, then the running challenge ends with the class
            current.ends = at
        c.status = "ended"
        self._drop(c)
        self._changed(c)
        for box in list(c.boxes):
            box.note({"type": "ended", "class": c.public()})
        await self._write(c)

    def _drop(self, c: Classroom) -> None:
        self.open.pop(c.id, None)
        self.codes.pop(c.code, None)
        expired = now() >= c.expires
        self.gone[c.code] = "its code has expired" if expired else "the teacher has ended it"
        while len(self.gone) > 10_000:
            self.gone.pop(next(iter(self.gone)))
        self.registry.pinned.discard(c.presenter_id)
        for st in c.students.values():
            if st.session_id is not None:
                self.of_session.pop(st.session_id, None)

    async def reopen(self, c: Classroom) -> Classroom:
        """An ended class open again under a new code: the presenter's session (still live, or opened from
        the one saved at the end), the roster and the results as they were."""
        if c.status == "open":
            return c
        presenter = self.registry.sessions.get(c.presenter_id)
        if presenter is None:
            if c.experiment_id is None:
                raise Conflict("this class's presenter session is gone and was not saved: open a new class")
            presenter = await self._saved().open(c.experiment_id)
        c.presenter_id, c.status, c.code = presenter.id, "open", new_code(self.codes)
        c.expires, c.spotlight, c.mode = expiry(self.settings.class_hours), None, "following"
        c.client = CLIENT.get()
        self._admit(c)
        self.runner.cohorts.prepare(presenter)
        self._changed(c)
        await self._write(c)
        return c

    # ----------------------------------------------------------------------------------------- joining

    def _throttle(self, kind: str, limit: int, words: str, count: bool = True) -> None:
        """At most ``limit`` events of ``kind`` (a join attempt, a wrong code) a minute from one address: 429
        past it; ``count`` this one."""
        client = CLIENT.get() or "unknown"
        times = self.joins.setdefault((kind, client), collections.deque())
        t = time.monotonic()
        while times and t - times[0] > 60:
            times.popleft()
        if len(times) >= limit:
            raise TooMany(f"{words} from one address: at most {limit} a minute")
        if count:
            times.append(t)
        if len(self.joins) > 10_000:  # forget quiet clients
            self.joins = {k: v for k, v in self.joins.items() if v and t - v[-1] < 60}

    def _wrong_code(self, message: str) -> NotFound:
        """A code that opens no class, counted against the address: guessing codes is what the limit stops (a
        whole class joining from behind one school address is not)."""
        self._throttle("wrong", self.settings.joins_per_minute, "too many wrong codes")
        return NotFound(message)

    async def join(self, code: str, name: str) -> tuple[Classroom, Student, str]:
        """A student joins the class with this code; answers the class, the student and their token."""
        # a flood of attempts, right or wrong: a class's worth a minute is fine, far more is not
        flood = max(self.settings.joins_per_minute, self.settings.max_class_students) * 2
        self._throttle("join", flood, "too many joins")
        self._throttle("wrong", self.settings.joins_per_minute, "too many wrong codes", count=False)
        typed = typed_code(code)
        c = self.open.get(self.codes.get(typed, ""))
        if c is not None and now() >= c.expires:
            await self.end(c)
            c = None
        if c is None:
            if typed in self.gone:
                raise self._wrong_code(f"the class with the code {typed} has ended: {self.gone[typed]}")
            raise self._wrong_code(f"no class has the code {code.strip()!r}: check it with your teacher")
        if len(c.students) >= self.settings.max_class_students:
            raise Conflict(f"this class is full ({self.settings.max_class_students} students)")
        token = secrets.token_urlsafe(24)
        st = Student(uuid.uuid4().hex[:12], self._unique_name(c, name), token_hash(token), now())
        c.students[st.id] = st
        self._changed(c)
        await self._write(c)
        return c, st, token

    @staticmethod
    def _unique_name(c: Classroom, name: str) -> str:
        taken = {st.name for st in c.students.values()}
        if name not in taken:
            return name
        return next(f"{name} ({k})" for k in range(2, len(taken) + 2) if f"{name} ({k})" not in taken)

    async def remove(self, c: Classroom, student_id: str) -> None:
        st = c.students.pop(student_id, None)
        if st is None:
            raise NotFound(f"no student {student_id!r} in this class")
        if c.spotlight == student_id:
            c.spotlight = None
        if st.session_id is not None:
            await self._forget_fork(st)
        self._changed(c)
        for box in list(c.boxes):
            box.note({"type": "removed", "student_id": student_id})
        await self._write(c)

    async def _forget_fork(self, st: Student) -> None:
        self.of_session.pop(st.session_id or "", None)
        s = self.registry.sessions.get(st.session_id or "")
        if s is not None:
            broadcast.notify(s, {"type": "closed", "reason": "the teacher removed you from the class"})
            await self.registry.delete(s)

    # ----------------------------------------------------------------------------- the teacher's moves

    async def set_mode(self, c: Classroom, mode: str) -> None:
        """``following`` (lock: everybody back to the presenter; their own sessions pause) or ``released``."""
        c.mode = mode
        if mode == "following":
            c.spotlight = None
            await self._pause_forks(c)
        self._changed(c)
        await self._write(c)

    async def pause_all(self, c: Classroom) -> None:
        presenter = self.registry.sessions.get(c.presenter_id)
        if presenter is not None:
            await self.runner.pause(presenter)
        await self._pause_forks(c)
        self._changed(c)

    async def _pause_forks(self, c: Classroom) -> None:
        for st in c.students.values():
            s = self.registry.sessions.get(st.session_id or "")
            if s is not None:
                await self.runner.pause(s)

    async def set_panel(self, c: Classroom, panel: str) -> None:
        if c.panel != panel:
            c.panel = panel
            self._changed(c)

    async def set_spotlight(self, c: Classroom, student_id: str | None) -> None:
        if student_id is not None:
            st = c.students.get(student_id)
            if st is None:
                raise NotFound(f"no student {student_id!r} in this class", loc=("student_id",))
            if st.session_id is None or st.session_id not in self.registry.sessions:
                raise Conflict(f"{st.name} has no session of their own to show yet", loc=("student_id",))
        c.spotlight = student_id
        self._changed(c)
        await self._write(c)

    async def set_challenge(self, c: Classroom, challenge: Challenge | None) -> None:
        """A new round (the last one, if still running, ends now), or none: the running round ends."""
        at = now()
        current = c.round
        if current is not None and current.running(at):
            current.ends = at
        if challenge is not None:
            c.rounds.append(Round(challenge, at, at + timedelta(minutes=challenge.minutes)))
            self._score(c, at)
        self._changed(c)
        await self._write(c)

    # --------------------------------------------------------------------------------- students' moves

    async def fork(self, c: Classroom, st: Student) -> Session:
        """The student's own session, continuing from the presenter's weights as they are now."""
        if c.mode != "released":
            raise Conflict("the teacher has not released the class yet: you follow the presenter for now")
        presenter = self.registry.get(c.presenter_id)
        library = self._saved()
        s = await library.open_file(await library.file(presenter))
        if st.session_id is not None:
            await self._forget_fork(st)
        st.session_id = s.id
        self.of_session[s.id] = (c.id, st.id)
        self._changed(c)
        await self._write(c)
        return s

    def class_of(self, session_id: str) -> tuple[Classroom, Student] | None:
        """The class and student a session belongs to, if it is a student's own."""
        found = self.of_session.get(session_id)
        if found is None or found[0] not in self.open:
            return None
        c = self.open[found[0]]
        st = c.students.get(found[1])
        return None if st is None else (c, st)

    def presenting(self, session_id: str) -> Classroom | None:
        return next((c for c in self.open.values() if c.presenter_id == session_id), None)

    # ----------------------------------------------------------------------------------- the streams

    def subscribe(self, c: Classroom, st: Student | None, teacher: bool) -> Mailbox:
        box = Mailbox()
        c.boxes.add(box)
        if teacher:
            c.teachers.add(box)
        if st is not None:
            st.sockets += 1
            st.last_seen = now()
            self._changed(c)
        return box

    def unsubscribe(self, c: Classroom, box: Mailbox, st: Student | None) -> None:
        c.boxes.discard(box)
        c.teachers.discard(box)
        if st is not None:
            st.sockets = max(0, st.sockets - 1)
            st.last_seen = now()
            self._changed(c)

    def _changed(self, c: Classroom) -> None:
        """Tell every class stream the class's new state."""
        c.version += 1
        message = {"type": "class", "class": c.public()}
        for box in list(c.boxes):
            box.note(message)

    def roster(self, c: Classroom) -> list[dict[str, Any]]:
        """Each student as the teacher's dashboard shows them."""
        current = c.round
        out = []
        for st in c.students.values():
            s = self.registry.sessions.get(st.session_id or "")
            broken = current.challenge.broken_limits(s.spec) if current is not None and s is not None else []
            out.append(
                {
                    "id": st.id,
                    "name": st.name,
                    "connected": st.sockets > 0,
                    "last_seen": st.last_seen.isoformat() if st.last_seen is not None else None,
                    "session_id": s.id if s is not None else None,
                    "status": s.status if s is not None else None,
                    "epoch": s.epoch if s is not None else None,
                    "metrics": dict(s.metrics) if s is not None else None,
                    "neurons": s.spec.network.neurons if s is not None else None,
                    "breaks": broken,
                    "best": current.best.get(st.id) if current is not None else None,
                    "met_at": current.met.get(st.id) if current is not None else None,
                    "map": f"{s.epoch}-{s.revision}" if s is not None else None,
                }
            )
        return out

    def dashboard(self, c: Classroom) -> dict[str, Any]:
        return {"type": "roster", "class": c.public(), "roster": self.roster(c)}

    # ------------------------------------------------------------------------------------- the ticker

    def _score(self, c: Classroom, at: Any) -> None:
        current = c.round
        if current is None or not current.running(at):
            return
        for st in c.students.values():
            s = self.registry.sessions.get(st.session_id or "")
            if s is not None:
                before = (current.best.get(st.id), current.met.get(st.id))
                current.score(st.id, s.spec, s.metrics, at)
                if (current.best.get(st.id), current.met.get(st.id)) != before:
                    c.version += 1

    async def tick(self) -> None:
        """Score the running challenges, send the teachers their dashboards, end expired classes, write."""
        at = now()
        for c in list(self.open.values()):
            if at >= c.expires:
                await self.end(c)
                continue
            was = c.round is not None and c.round.running(at - timedelta(seconds=TICK_SECONDS))
            self._score(c, at)
            if was and c.round is not None and not c.round.running(at):
                self._changed(c)  # the round just ended: everybody is told
            if c.teachers:
                message = self.dashboard(c)
                for box in list(c.teachers):
                    box.put(message)
        if time.monotonic() - self.last_write > WRITE_SECONDS:
            self.last_write = time.monotonic()
            for c in list(self.open.values()):
                if c.version != c.written:
                    await self._write(c)

    async def _ticker(self) -> None:
        while self.open:
            await asyncio.sleep(TICK_SECONDS)
            try:
                await self.tick()
            except Exception:  # one bad tick must not stop the classes
                log.exception("a class tick failed")

    async def _write(self, c: Classroom) -> None:
        if self.store is None:
            return
        version = c.version
        try:
            await self.store.put_class(record_of(c))
            c.written = version
        except StoreError as exc:
            log.warning("could not write class %s: %s", c.id, exc)

    async def start(self) -> None:
        """Bring back the classes the last run left open (after the live sessions came back)."""
        if self.store is None:
            return
        async for rec in self.store.open_classes():
            c = from_record(rec)
            if c.presenter_id in self.registry.sessions and now() < c.expires:
                self._admit(c)
            else:
                c.status = "ended"
                await self._write(c)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for c in list(self.open.values()):
            await self._write(c)

    # ------------------------------------------------------------------------------------- pictures

    async def decision_map(self, s: Session) -> bytes:
        """A session's decision map as a small PNG (the dashboard's small multiples), made once per moment."""
        moment = (s.epoch, s.revision, s.spec_version)
        cached = self.maps.get(s.id)
        if cached is not None and cached[0] == moment:
            return cached[1]
        snap = Snapshot.of(s)

        def draw() -> bytes:
            png = io.BytesIO()
            Image.fromarray(snap.engine.thumbnail(snap.spec, snap.cfg, snap.state), "RGB").save(png, format="PNG")
            return png.getvalue()

        data = await self.workers.view(draw)
        if len(self.maps) > 4 * self.settings.max_sessions:
            self.maps = {k: v for k, v in self.maps.items() if k in self.registry.sessions}
        self.maps[s.id] = (moment, data)
        return data
