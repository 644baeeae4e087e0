"""Saved work: experiments saved from sessions and opened again, the safetensors download and import, and
live sessions written to the store while they change so a restart brings them back.

Everything a file holds is taken from one snapshot under the session's lock (so weights, optimizer state,
epoch and history agree) and encoded off the event loop; the store writes it in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from PIL import Image

from server.config import Settings
from server.errors import Forbidden, Invalid, NotFound
from server.sessions import saved as files
from server.sessions.registry import Registry
from server.sessions.runner import Workers
from server.sessions.session import Session, Snapshot
from server.store import ExperimentRecord, Store, StoreError

log = logging.getLogger("neuroglass.store")
T = TypeVar("T")


@dataclass(frozen=True)
class Written:
    """What a file was made from: the session's moment, to tell whether it changed since."""

    epoch: int
    step: int
    spec_version: int
    revision: int


@dataclass(frozen=True)
class Captured:
    """A session's moment as saved: the snapshot and metrics it was made from, its file and thumbnail."""

    snap: Snapshot
    metrics: dict[str, float | None]
    file: bytes
    thumbnail: bytes  # PNG; b"" when not asked for


def _found(value: T | None, id_: str) -> T:
    """A saved experiment's record or part of it; NotFound in words when it is not (or no longer) there."""
    if value is None:
        raise NotFound(f"no saved experiment {id_!r} (it may have been deleted)")
    return value


def _moment(s: Session) -> Written:
    return Written(s.epoch, s.step, s.spec_version, s.revision)


class Library:
    def __init__(self, settings: Settings, store: Store, registry: Registry, workers: Workers):
        self.settings, self.store, self.registry, self.workers = settings, store, registry, workers
        self.written: dict[str, Written] = {}  # live sessions: the moment last written to the store
        self.task: asyncio.Task[None] | None = None
        self.viewers: dict[str, str] = {}  # saved experiment id -> the session its share page shows
        self.viewers_lock = asyncio.Lock()  # two first views of one share page make one session

    # ------------------------------------------------------------------------------------ files

    async def file(self, s: Session) -> bytes:
        """The session as one safetensors file (sessions.saved)."""
        return (await self._capture(s)).file

    async def _capture(self, s: Session, *, picture: bool = False) -> Captured:
        """One moment of the session, taken under its lock so weights, epoch and history agree, encoded off
        the event loop: its file and (``picture``) its thumbnail PNG."""
        async with s.lock:
            snap = Snapshot.of(s)
            history, stride = list(s.history.items), s.history.stride
            init, metrics = s.init_params, dict(s.metrics)

        def encode() -> Captured:
            blob = files.dump(
                snap.spec,
                snap.state,
                epoch=snap.epoch,
                step=snap.step,
                history=history,
                history_stride=stride,
                init_params=init,
                architecture=snap.engine.architecture(snap.spec, snap.cfg, snap.state, snap.data),
                metrics=metrics,
            )
            png = io.BytesIO()
            if picture:
                rgb = snap.engine.thumbnail(snap.spec, snap.cfg, snap.state)
                Image.fromarray(rgb, "RGB").save(png, format="PNG", optimize=True)
            return Captured(snap, metrics, blob, png.getvalue())

        return await self.workers.run(encode)

    async def open_file(self, blob: bytes) -> Session:
        """A new live session continuing from a file; Invalid (at ``file``) if it is not one that fits."""
        saved = await self.workers.run(files.load, blob)
        return await self.registry.resume(saved)

    # ------------------------------------------------------------------------------ experiments

    async def save(self, s: Session, name: str, description: str = "") -> tuple[ExperimentRecord, str]:
        """Store the session as a saved experiment. Returns it and its owner token."""
        moment = await self._capture(s, picture=True)
        return await self.store.add_experiment(
            name=name,
            description=description,
            kind=moment.snap.engine.name,
            spec=moment.snap.spec.model_dump(mode="json"),
            epoch=moment.snap.epoch,
            metrics=moment.metrics,
            state=moment.file,
            thumbnail=moment.thumbnail,
            parent_id=s.origin,
        )

    async def experiment(self, id_: str) -> ExperimentRecord:
        return _found(await self.store.experiment(id_), id_)

    async def experiment_by_slug(self, slug: str) -> ExperimentRecord:
        """The experiment a share link ``/e/{slug}`` names."""
        found = await self.store.experiment(slug, by="slug")
        if found is None:
            raise NotFound(
                "there is no saved experiment at this link: it may have been deleted, or the link was cut short"
            )
        return found

    async def experiments(self, q: str, limit: int, offset: int) -> tuple[list[ExperimentRecord], int]:
        return await self.store.experiments(q, limit, offset)

    async def owned(self, id_: str, owner_token: str | None) -> ExperimentRecord:
        """The experiment, if ``owner_token`` is its owner key; NotFound / Forbidden otherwise."""
        found = await self.experiment(id_)
        if not await self.store.owns(id_, owner_token):
            raise Forbidden("only the experiment's owner may change it: send its owner_token as a bearer token")
        return found

    async def update(self, id_: str, owner_token: str | None, **values: Any) -> ExperimentRecord:
        await self.owned(id_, owner_token)
        return _found(await self.store.update_experiment(id_, **values), id_)

    async def delete(self, id_: str, owner_token: str | None) -> None:
        await self.owned(id_, owner_token)
        await self.store.delete_experiment(id_)
        await self.drop_viewer(id_)

    async def thumbnail(self, id_: str) -> bytes:
        return _found(await self.store.thumbnail(id_), id_)

    async def open(self, id_: str) -> Session:
        """A new live session continuing exactly from a saved experiment."""
        blob = _found(await self.store.experiment_state(id_), id_)
        try:
            saved = await self.workers.run(files.load, blob)
        except Invalid as exc:  # saved by an older version whose spec no longer validates
            raise Invalid(f"this saved experiment cannot be opened by this version: {exc.message}", ("id",)) from None
        s = await self.registry.resume(saved)
        s.origin = id_
        return s

    async def viewer(self, id_: str) -> Session:
        """The session a saved experiment's share page shows: one per experiment, opened on its first view,
        exactly as saved. Nobody is given its token, so every visitor watches it read-only; it is never
        written to the store as a live session (it never changes) and the registry reaps it when unwatched."""
        async with self.viewers_lock:
            known = self.viewers.get(id_)
            if known is not None and known in self.registry.sessions:
                return self.registry.get(known)
            s = await self.open(id_)
            self.viewers[id_] = s.id
            self.written[s.id] = _moment(s)  # as in the store already: nothing to write
            return s

    async def drop_viewer(self, id_: str) -> None:
        """A deleted experiment's share-page session goes at once."""
        known = self.viewers.pop(id_, None)
        s = self.registry.sessions.get(known) if known is not None else None
        if s is not None:
            await self.registry.delete(s)
        self.written.pop(known or "", None)

    # ---------------------------------------------------------------------------- live sessions

    async def write_live(self, s: Session) -> bool:
        """Write a live session's state if it changed since last written. Returns whether it wrote."""
        moment = _moment(s)
        if self.written.get(s.id) == moment:
            return False
        blob = await self.file(s)
        await self.store.put_live(s.id, s.token, moment.epoch, blob)
        self.written[s.id] = moment
        return True

    async def write_all(self) -> int:
        """Write every live session that changed; forget the removed ones. Returns how many were written."""
        n = 0
        for s in list(self.registry.sessions.values()):
            try:
                n += await self.write_live(s)
            except (StoreError, Invalid) as exc:
                log.warning("could not write live session %s: %s", s.id, exc)
        for gone in set(self.written) - set(self.registry.sessions):
            try:
                await self.store.drop_live(gone)
                self.written.pop(gone, None)
            except StoreError as exc:
                log.warning("could not drop live session %s: %s", gone, exc)
        return n

    async def forget(self, session_id: str) -> None:
        """A deleted session leaves the store at once (not only at the next write)."""
        self.written.pop(session_id, None)
        await self.store.drop_live(session_id)

    async def restore_all(self) -> int:
        """Bring back the live sessions written before the last stop, paused, with their ids and tokens."""
        restored = 0
        for rec in await self.store.live():
            if rec.id in self.registry.sessions:
                continue
            try:
                saved = await self.workers.run(files.load, rec.state)
                s = await self.registry.resume(saved, rec.id, rec.token)
            except Exception as exc:  # one unreadable session must not stop the others or the server
                log.warning("could not restore live session %s: %s", rec.id, exc)
                continue
            self.written[s.id] = _moment(s)
            restored += 1
        return restored

    def start(self) -> None:
        """Write changed live sessions every ``live_write_seconds`` in the background."""
        self.task = asyncio.create_task(self._writer())

    async def _writer(self) -> None:
        period = self.settings.live_write_seconds
        while True:
            await asyncio.sleep(period)
            started = time.monotonic()
            n = await self.write_all()
            if n:
                log.debug("wrote %d live sessions in %.0f ms", n, 1000 * (time.monotonic() - started))

    async def stop(self) -> None:
        """At shutdown: stop the background writer, then write every live session one last time."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.write_all()
