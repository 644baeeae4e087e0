"""A class's state: its join code, mode, roster and challenge rounds, what each role may read of it, and its
record in the store. Plain data and pure functions; ``classes.Classes`` changes it and runs it.

Tokens are kept as hashes only (the teacher's and each student's), so a class read back from the store
still knows who is who and the database never holds a token that works."""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from server.classspec import Challenge
from server.sessions.broadcast import Mailbox
from server.store import ClassRecord, token_hash

# Six characters from an alphabet without look-alikes (no 0/O, 1/I/L): 31⁶ ≈ 887 million codes.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6


def new_code(taken: set[str] | dict[str, Any]) -> str:
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if code not in taken:
            return code


def typed_code(text: str) -> str:
    """A code as a student may type it (lower case, spaces or a dash in the middle) in its one form."""
    return re.sub(r"[\s\-]", "", text).upper()


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Student:
    id: str
    name: str
    token_hash: str
    joined: datetime
    session_id: str | None = None  # their own session, once they made the presenter's theirs
    sockets: int = 0  # class streams they have open (their connection state)
    last_seen: datetime | None = None

    def check(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token_hash(token), self.token_hash)


@dataclass
class Round:
    """One challenge the teacher set, and how each student did: their best value of the metric within the
    limits, and when (seconds after the start) they first met the goal."""

    challenge: Challenge
    started: datetime
    ends: datetime
    best: dict[str, float] = field(default_factory=dict)
    met: dict[str, float] = field(default_factory=dict)

    def running(self, at: datetime) -> bool:
        return at < self.ends

    def score(self, student_id: str, spec: Any, metrics: dict[str, float | None], at: datetime) -> None:
        """Take a student's session as it is now into the results (only while the round runs)."""
        value = metrics.get(self.challenge.metric)
        if not self.running(at) or value is None or self.challenge.broken_limits(spec):
            return
        best = self.best.get(student_id)
        if best is None or self.challenge.better(value, best):
            self.best[student_id] = value
        if student_id not in self.met and self.challenge.met(spec, metrics):
            self.met[student_id] = round((at - self.started).total_seconds(), 1)

    def leaderboard(self, names: dict[str, str]) -> list[dict[str, Any]]:
        """Students who met the goal first (earliest first), then the rest by their best value."""
        ids = set(self.best) | set(self.met)
        sign = 1 if self.challenge.comparison in ("<", "<=") else -1

        def order(sid: str) -> tuple[int, float, float]:
            met = self.met.get(sid)
            return (0 if met is not None else 1, met if met is not None else 0.0, sign * self.best.get(sid, 0.0))

        ranked = sorted((sid for sid in ids if sid in names), key=order)
        return [
            {
                "rank": i + 1,
                "student_id": sid,
                "name": names[sid],
                "best": self.best.get(sid),
                "met_at": self.met.get(sid),
            }
            for i, sid in enumerate(ranked)
        ]

    def public(self, names: dict[str, str], at: datetime) -> dict[str, Any]:
        return {
            "challenge": self.challenge.model_dump(),
            "goal": self.challenge.describe(),
            "started_at": self.started.isoformat(),
            "ends_at": self.ends.isoformat(),
            "seconds_left": max(0.0, round((self.ends - at).total_seconds(), 1)),
            "running": self.running(at),
            "leaderboard": self.leaderboard(names),
        }


@dataclass
class Classroom:
    id: str
    code: str
    name: str
    owner_hash: str  # the teacher's token, hashed
    presenter_id: str
    created: datetime
    expires: datetime
    status: str = "open"  # open | ended
    mode: str = "following"  # following (students see the presenter) | released (they may make it theirs)
    panel: str | None = None  # the panel the presenter shows
    spotlight: str | None = None  # the student whose session everybody sees
    students: dict[str, Student] = field(default_factory=dict)
    rounds: list[Round] = field(default_factory=list)
    experiment_id: str | None = None  # the presenter saved when the class ended
    boxes: set[Mailbox] = field(default_factory=set)  # class streams: the teacher's and the students'
    teachers: set[Mailbox] = field(default_factory=set)  # those of them that get the roster
    version: int = 0  # bumped by every change the class stream tells
    written: int = -1  # the version last written to the store
    client: str = ""  # the address of the client that opened it (its classes count against it)

    def is_teacher(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token_hash(token), self.owner_hash)

    def student_by_token(self, token: str | None) -> Student | None:
        return next((st for st in self.students.values() if st.check(token)), None)

    @property
    def round(self) -> Round | None:
        """The last challenge set (running or over), if any."""
        return self.rounds[-1] if self.rounds else None

    def results(self, at: datetime | None = None) -> list[dict[str, Any]]:
        """Every challenge round set in the class, oldest first, with its leaderboard (what a teacher looks
        back at after the class)."""
        at = at or now()
        names = self.names()
        return [r.public(names, at) for r in self.rounds]

    def summary(self) -> dict[str, Any]:
        """A line of the teacher's list of their classes."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "code": self.code if self.status == "open" else None,
            "created_at": self.created.isoformat(),
            "students": len(self.students),
            "rounds": len(self.rounds),
            "dashboard_url": f"/classes/{self.id}",
        }

    def names(self) -> dict[str, str]:
        return {sid: st.name for sid, st in self.students.items()}

    def followed(self) -> str:
        """The session the class sees: the spotlighted student's, else the presenter's."""
        st = self.students.get(self.spotlight or "")
        return st.session_id if st is not None and st.session_id is not None else self.presenter_id

    def public(self, at: datetime | None = None) -> dict[str, Any]:
        """What anyone in the class (or holding its id) may read."""
        at = at or now()
        current = self.round
        return {
            "id": self.id,
            "code": self.code if self.status == "open" else None,
            "name": self.name,
            "status": self.status,
            "mode": self.mode,
            "panel": self.panel,
            "presenter_id": self.presenter_id,
            "following": self.followed(),
            "spotlight": self.spotlight,
            "spotlight_name": self.students[self.spotlight].name if self.spotlight in self.students else None,
            "students": len(self.students),
            "expires_at": self.expires.isoformat(),
            "challenge": None if current is None else current.public(self.names(), at),
            "version": self.version,
        }


def expiry(hours: float, at: datetime | None = None) -> datetime:
    return (at or now()) + timedelta(hours=hours)


def record_of(c: Classroom) -> ClassRecord:
    """The class as the store keeps it."""
    data = {
        "mode": c.mode,
        "panel": c.panel,
        "spotlight": c.spotlight,
        "students": [
            {
                "id": st.id,
                "name": st.name,
                "token_hash": st.token_hash,
                "joined": st.joined.isoformat(),
                "session_id": st.session_id,
            }
            for st in c.students.values()
        ],
        "rounds": [
            {
                "challenge": r.challenge.model_dump(),
                "started": r.started.isoformat(),
                "ends": r.ends.isoformat(),
                "best": r.best,
                "met": r.met,
            }
            for r in c.rounds
        ],
    }
    return ClassRecord(
        c.id, c.code, c.name, c.owner_hash, c.status, c.presenter_id, c.experiment_id, data, c.created, now(), c.expires
    )


def from_record(r: ClassRecord) -> Classroom:
    """A class as it was written (its sockets and connection states are gone: nobody is connected)."""
    d = r.data
    c = Classroom(r.id, r.code, r.name, r.owner_hash, r.presenter_id, r.created_at, r.expires_at, r.status)
    c.mode, c.panel, c.spotlight = d.get("mode", "following"), d.get("panel"), d.get("spotlight")
    c.experiment_id = r.experiment_id
    for s in d.get("students", []):
        st = Student(s["id"], s["name"], s["token_hash"], datetime.fromisoformat(s["joined"]), s.get("session_id"))
        c.students[st.id] = st
    for x in d.get("rounds", []):
        started, ends = datetime.fromisoformat(x["started"]), datetime.fromisoformat(x["ends"])
        c.rounds.append(Round(Challenge.model_validate(x["challenge"]), started, ends, x["best"], x["met"]))
    return c
