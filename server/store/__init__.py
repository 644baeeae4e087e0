"""The store: saved experiments and live-session snapshots in a SQL database (SQLAlchemy 2, async).

The one module that talks to the database; only the sessions layer and its routes use it. An embedded
SQLite file is the default (created on first use, WAL journal); PostgreSQL through a
``postgresql+asyncpg://`` URL. The schema comes from the Alembic migrations (``migrations/``), applied by
``Store.start``. Answers are plain frozen records, never ORM objects; a failed read or write is a
``StoreError`` (the routes answer 503) and leaves what was there intact (every write is one transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, delete, event, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from server.store.classes import ClassRecord as ClassRecord
from server.store.classes import ClassRecords
from server.store.models import Experiment, LiveSession, SweepRow, aware, now

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK_KEY = 0x4E47_4C53  # "NGLS": one advisory lock id for the whole schema


class StoreError(Exception):
    """The database could not be reached, or a read or write failed."""


@dataclass(frozen=True)
class ExperimentRecord:
    """A saved experiment as answers show it (without its state and thumbnail)."""

    id: str
    slug: str
    name: str
    description: str
    kind: str
    spec: dict[str, Any]
    epoch: int
    metrics: dict[str, Any]
    parent_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class LiveRecord:
    id: str
    token: str
    epoch: int
    state: bytes


@dataclass(frozen=True)
class SweepRecord:
    id: str
    name: str
    status: str
    result: dict[str, Any]
    created_at: datetime
    updated_at: datetime


_COLUMNS = (
    Experiment.id,
    Experiment.slug,
    Experiment.name,
    Experiment.description,
    Experiment.kind,
    Experiment.spec,
    Experiment.epoch,
    Experiment.metrics,
    Experiment.parent_id,
    Experiment.created_at,
    Experiment.updated_at,
)


_aware = aware


def _record(row: Any) -> ExperimentRecord:
    values = list(row)
    values[-2], values[-1] = _aware(values[-2]), _aware(values[-1])
    return ExperimentRecord(*values)


def _bytes(row: Any) -> bytes:
    return bytes(row[0])


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def redacted(url: str) -> str:
    """The URL without its password, to name it in messages."""
    return make_url(url).render_as_string(hide_password=True)


class Store(ClassRecords):
    def __init__(self, url: str):
        self.url = url
        parsed = make_url(url)
        self.sqlite = parsed.get_backend_name() == "sqlite"
        if self.sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: AsyncEngine = create_async_engine(url, pool_pre_ping=not self.sqlite)
        if self.sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.session = async_sessionmaker(self.engine, expire_on_commit=False)

    async def start(self) -> None:
        """Reach the database and bring its schema to the newest migration.

        Servers starting together on one database (replicas, test workers) migrate one at a time: an
        advisory lock on PostgreSQL, a lock file beside an SQLite file."""
        try:
            async with self._migration_lock(), self.engine.begin() as conn:
                await conn.run_sync(_upgrade)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot open the database {redacted(self.url)}: {exc}") from exc

    @contextlib.asynccontextmanager
    async def _migration_lock(self) -> AsyncIterator[None]:
        database = make_url(self.url).database
        if not self.sqlite or not database or database == ":memory:":
            yield  # PostgreSQL takes its advisory lock inside the migration's transaction
            return
        with open(f"{database}.lock", "a") as lock:
            await asyncio.to_thread(fcntl.flock, lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    async def close(self) -> None:
        await self.engine.dispose()

    # ---------------------------------------------------------------------------------- experiments

    async def add_experiment(
        self,
        *,
        name: str,
        description: str,
        kind: str,
        spec: dict[str, Any],
        epoch: int,
        metrics: dict[str, Any],
        state: bytes,
        thumbnail: bytes,
        parent_id: str | None = None,
    ) -> tuple[ExperimentRecord, str]:
        """Save one experiment in one transaction. Returns it and its owner token (shown once)."""
        owner = secrets.token_urlsafe(24)
        row = Experiment(
            id=uuid.uuid4().hex,
            slug=secrets.token_urlsafe(8),  # 64 random bits: short, not guessable
            name=name,
            name_folded=name.casefold(),
            description=description,
            owner_hash=token_hash(owner),
            kind=kind,
            spec=spec,
            epoch=epoch,
            metrics=metrics,
            parent_id=parent_id,
            state=state,
            thumbnail=thumbnail,
        )
        await self._write(row)
        found = await self.experiment(row.id)
        assert found is not None
        return found, owner

    async def experiments(self, q: str = "", limit: int = 20, offset: int = 0) -> tuple[list[ExperimentRecord], int]:
        """Saved experiments whose name contains ``q`` (any case), newest first; and how many match."""
        where = Experiment.name_folded.contains(q.casefold(), autoescape=True) if q else None
        listing = select(*_COLUMNS).order_by(Experiment.created_at.desc(), Experiment.id).limit(limit).offset(offset)
        counting = select(func.count()).select_from(Experiment)
        if where is not None:
            listing, counting = listing.where(where), counting.where(where)
        async with self._db("read the saved experiments") as db:
            rows = (await db.execute(listing)).all()
            total = (await db.execute(counting)).scalar_one()
        return [_record(r) for r in rows], int(total)

    async def experiment(self, key: str, *, by: str = "id") -> ExperimentRecord | None:
        """One saved experiment by ``id`` or by ``slug``."""
        column = Experiment.slug if by == "slug" else Experiment.id
        found: ExperimentRecord | None = await self._one(select(*_COLUMNS).where(column == key), _record)
        return found

    async def experiment_state(self, id_: str) -> bytes | None:
        blob: bytes | None = await self._one(select(Experiment.state).where(Experiment.id == id_), _bytes)
        return blob

    async def thumbnail(self, id_: str) -> bytes | None:
        blob: bytes | None = await self._one(select(Experiment.thumbnail).where(Experiment.id == id_), _bytes)
        return blob

    async def owns(self, id_: str, owner_token: str | None) -> bool:
        """Whether ``owner_token`` is the experiment's owner key (compared in constant time)."""
        if not owner_token:
            return False
        stored = await self._one(select(Experiment.owner_hash).where(Experiment.id == id_), lambda r: str(r[0]))
        return stored is not None and hmac.compare_digest(stored, token_hash(owner_token))

    async def update_experiment(self, id_: str, **values: Any) -> ExperimentRecord | None:
        """Rename or describe: ``name`` and/or ``description``."""
        if "name" in values:
            values["name_folded"] = values["name"].casefold()
        statement = update(Experiment).where(Experiment.id == id_).values(**values, updated_at=now())
        await self._execute(statement)
        return await self.experiment(id_)

    async def delete_experiment(self, id_: str) -> None:
        await self._execute(delete(Experiment).where(Experiment.id == id_))

    # -------------------------------------------------------------------------------- live sessions

    async def put_live(self, id_: str, token: str, epoch: int, state: bytes) -> None:
        """Write (or overwrite) a live session's latest state."""
        async with self._db(f"write live session {id_}", write=True) as db:
            row = await db.get(LiveSession, id_)
            if row is None:
                db.add(LiveSession(id=id_, token=token, epoch=epoch, state=state))
            else:
                row.token, row.epoch, row.state, row.updated_at = token, epoch, state, now()

    async def live(self) -> list[LiveRecord]:
        statement = select(LiveSession.id, LiveSession.token, LiveSession.epoch, LiveSession.state)
        async with self._db("read the live sessions") as db:
            rows = (await db.execute(statement.order_by(LiveSession.updated_at))).all()
        return [LiveRecord(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    async def drop_live(self, id_: str) -> None:
        await self._execute(delete(LiveSession).where(LiveSession.id == id_))

    # ------------------------------------------------------------------------------------------- sweeps

    async def put_sweep(self, id_: str, token: str, name: str, status: str, size: tuple[int, int], result: str) -> None:
        """Write (or overwrite) a sweep's results so far: ``result`` is the JSON text of its answer (made
        by the caller, off the event loop), ``size`` its (configurations, epochs)."""
        async with self._db(f"write sweep {id_}", write=True) as db:
            row = await db.get(SweepRow, id_)
            if row is None:
                owner = token_hash(token)
                total, epochs = size
                db.add(
                    SweepRow(
                        id=id_, owner_hash=owner, name=name, status=status, total=total, epochs=epochs, result=result
                    )
                )
            else:
                row.status, row.result, row.updated_at = status, result, now()

    async def sweep(self, id_: str) -> SweepRecord | None:
        columns = (
            SweepRow.id,
            SweepRow.name,
            SweepRow.status,
            SweepRow.result,
            SweepRow.created_at,
            SweepRow.updated_at,
        )
        statement = select(*columns).where(SweepRow.id == id_)
        found: SweepRecord | None = await self._one(
            statement, lambda r: SweepRecord(r[0], r[1], r[2], json.loads(r[3]), _aware(r[4]), _aware(r[5]))
        )
        return found

    async def sweeps(self, limit: int = 20, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Sweeps newest first, a page at a time: id, name, status, configurations, epochs and dates."""
        total_q = select(func.count()).select_from(SweepRow)
        columns = (SweepRow.id, SweepRow.name, SweepRow.status, SweepRow.total, SweepRow.epochs)
        page = select(*columns, SweepRow.created_at, SweepRow.updated_at)
        page = page.order_by(SweepRow.created_at.desc()).limit(limit).offset(offset)
        async with self._db("list the sweeps") as db:
            total = int((await db.execute(total_q)).scalar_one())
            rows = (await db.execute(page)).all()
        names = ("id", "name", "status", "total", "epochs")
        items = [
            dict(zip(names, r[:5], strict=True))
            | {"created_at": _aware(r[5]).isoformat(), "updated_at": _aware(r[6]).isoformat()}
            for r in rows
        ]
        return items, total

    async def owns_sweep(self, id_: str, token: str | None) -> bool:
        found = await self._one(select(SweepRow.owner_hash).where(SweepRow.id == id_), lambda r: r[0])
        return token is not None and found is not None and hmac.compare_digest(found, token_hash(token))

    async def delete_sweep(self, id_: str) -> None:
        await self._execute(delete(SweepRow).where(SweepRow.id == id_))

    async def interrupt_sweeps(self) -> None:
        """Sweeps a previous run of the server left running: marked interrupted, their results kept."""
        async with self._db("mark unfinished sweeps", write=True) as db:
            rows = (await db.execute(select(SweepRow).where(SweepRow.status.in_(("queued", "running"))))).scalars()
            for row in rows:
                row.status = "interrupted"
                row.result = json.dumps({**json.loads(row.result), "status": "interrupted"})
                row.updated_at = now()

    # ------------------------------------------------------------------------------------- plumbing

    @contextlib.asynccontextmanager
    async def _db(self, what: str, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        """A database session (one committed transaction when ``write``); any failure is a StoreError saying
        what could not be done, and a write that fails is rolled back whole."""
        try:
            async with self.session() as db:
                if write:
                    async with db.begin():
                        yield db
                else:
                    yield db
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot {what}: {exc}") from exc

    async def _write(self, row: Any) -> None:
        async with self._db("write to the database", write=True) as db:
            db.add(row)

    async def _execute(self, statement: Any) -> None:
        async with self._db("write to the database", write=True) as db:
            await db.execute(statement)

    async def _one(self, statement: Any, make: Any) -> Any:
        async with self._db("read from the database") as db:
            row = (await db.execute(statement)).first()
        return None if row is None else make(row)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer; a crash loses no commit
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged save survives even a power cut
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    if connection.dialect.name == "postgresql":  # held until the migration's transaction ends
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    command.upgrade(config, "head")
