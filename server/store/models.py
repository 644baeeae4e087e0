"""The store's tables (SQLAlchemy 2 declarative). The schema itself is made by the Alembic migrations in
``server/store/migrations``; these classes must match them (a test compares the two)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def now() -> datetime:
    return datetime.now(UTC)


def aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)  # SQLite keeps no time zone: it is UTC


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Experiment(Base):
    """A saved experiment: its spec, its whole training state (safetensors), its history and a thumbnail."""

    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    slug: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_folded: Mapped[str] = mapped_column(String(200), index=True)  # lower-case: search by name
    description: Mapped[str] = mapped_column(Text, default="")
    owner_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the owner token
    kind: Mapped[str] = mapped_column(String(8))  # the engine's name: mlp | cnn
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    epoch: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    parent_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # forked from
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    state: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # the session file (sessions.saved)
    thumbnail: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # PNG


class LiveSession(Base):
    """The latest written state of a live session, so it comes back (paused) after a restart."""

    __tablename__ = "live_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token: Mapped[str] = mapped_column(String(64))
    epoch: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    state: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # the session file (sessions.saved)


class SweepRow(Base):
    """A sweep's request and its results so far (each configuration's status, final metrics and history)."""

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the sweep's token
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True)
    total: Mapped[int] = mapped_column(Integer)  # configurations
    epochs: Mapped[int] = mapped_column(Integer)  # each configuration's
    result: Mapped[str] = mapped_column(Text)  # the answer of GET /api/v1/sweeps/{id}, as JSON text
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class ClassRow(Base):
    """A class: its join code, the presenter's session, and (as JSON text) its roster and challenges with
    their results, so a teacher can reopen it later."""

    __tablename__ = "classes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(8), index=True)  # the join code (unique among open classes)
    name: Mapped[str] = mapped_column(String(200))
    owner_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the teacher's token
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | ended
    presenter_id: Mapped[str] = mapped_column(String(32))  # the presenter's live session
    experiment_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the presenter, saved at the end
    data: Mapped[str] = mapped_column(Text)  # roster, challenges and results (sessions.classroom), JSON text
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
