"""Loss-surface snapshots on the session's websocket (docs/websocket.md, ``watch_landscape``): what the
landscape panel shows — the slice with the path training took, the line from the initial weights, the
sharpness and the gradient health — computed once per session while at least one socket has the panel open,
encoded once, and the same bytes handed to every such socket's latest-only mailbox.

Cadence: while the session trains, a round starts as soon as the previous one is done, at most one every
``SLICE_PERIOD`` (5 snapshots a second); the slower parts (line, sharpness, gradient health) at most once
every ``SLOW_PERIOD``. While paused, a round runs once per change of the weights (epoch, edit, patch) and
costs nothing in between (the feed looks every ``POLL`` seconds).

Sockets asking for different slices (directions, cells, span, seed) get a slice computed per distinct
request — at most ``MAX_WANTS`` of them per session — and share the slower parts, which take no parameters.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from server.errors import Invalid, SessionError
from server.frames import encode_binary
from server.sessions.broadcast import Mailbox
from server.sessions.session import Session
from server.sessions.views import Views

log = logging.getLogger(__name__)

SLICE_PERIOD = 0.2  # while training: a round at most every 0.2 s (≤ 5 snapshots a second)
SLOW_PERIOD = 1.0  # while training: the line, the sharpness and the gradient health at most once a second
POLL = 0.1  # how often an idle feed looks at the session's counters
MAX_WANTS = 4  # distinct slice requests per session (each one is a slice computed per round)
LINE_STEPS = 41  # points along the line from the initial weights
SHARPNESS_ITERS = 20  # power iterations of the sharpness
SLOW_PARTS = ("line", "sharpness", "gradients")

Key = tuple[int, int, int]  # (epoch, revision, spec_version): what the weights are
Variant = tuple[str, int, float | None, int]  # (directions, resolution, span, seed): one slice
_serials = itertools.count(1)


@dataclass(frozen=True)
class Want:
    """What one socket asks to see (validated by the route, as the REST query is)."""

    directions: str = "random"
    resolution: int = 51
    live_resolution: int | None = None  # cells per side while the session trains (default: resolution)
    span: float | None = None
    seed: int = 0

    def variant(self, running: bool) -> Variant:
        cells = self.live_resolution if running and self.live_resolution is not None else self.resolution
        return (self.directions, cells, self.span, self.seed)


@dataclass
class Part:
    """One computed part of a snapshot: its header fields and arrays, or the error that stopped it."""

    key: Key
    header: dict[str, Any] | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    out: dict[str, Any] | None = None  # the view's answer as it came (the gradients fragment renders it)
    serial: int = field(default_factory=lambda: next(_serials))


@dataclass
class Feed:
    """One session's feed: who watches what, the parts computed last, what each variant was sent last."""

    watchers: dict[Mailbox, Want] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    slices: dict[Variant, Part] = field(default_factory=dict)
    slow: dict[str, Part] = field(default_factory=dict)
    slow_at: float = -math.inf
    sent: dict[Variant, tuple[tuple[int, ...], bytes]] = field(default_factory=dict)

    def wanted(self, running: bool) -> set[Variant]:
        return {want.variant(running) for want in self.watchers.values()}


def key_of(s: Session) -> Key:
    return (s.epoch, s.revision, s.spec_version)


def _floats(values: Any) -> np.ndarray:
    """A view's numbers (lists with None for off scale) as float32, NaN where off scale."""
    return np.asarray(np.asarray(values, dtype=np.float64), dtype=np.float32)


def _failure(exc: Exception, what: str, s: Session) -> dict[str, Any]:
    if isinstance(exc, SessionError):
        return {"message": exc.message, "field": list(exc.loc) or None}
    log.exception("session %s: the landscape feed's %s failed", s.id, what)
    return {"message": f"the server failed to compute the {what} ({type(exc).__name__})", "field": None}


class LandscapeFeed:
    """Every session's feed; ``computed`` counts each part computed (what a snapshot costs)."""

    def __init__(self, views: Views):
        self.views = views
        self.feeds: dict[str, Feed] = {}
        self.computed: collections.Counter[str] = collections.Counter()

    # ------------------------------------------------------------------ who watches

    def watch(self, s: Session, box: Mailbox, want: Want) -> None:
        """``box`` gets the snapshots ``want`` asks for from now on (the latest one at once, if there is one)."""
        feed = self.feeds.setdefault(s.id, Feed())
        others = {w for b, w in feed.watchers.items() if b is not box}
        if want not in others and len(others) >= MAX_WANTS:
            self._stop_if_idle(s.id)  # the socket keeps what it watched before, if anything
            raise Invalid(
                f"this session's loss landscape is already computed for {MAX_WANTS} different settings; "
                "watch it with the settings another viewer uses, or use GET .../landscape",
                ("directions",),
            )
        feed.watchers[box] = want
        sent = feed.sent.get(want.variant(s.status == "running"))
        if sent is not None:
            box.put(sent[1])
        if feed.task is None or feed.task.done():
            feed.task = asyncio.create_task(self._run(s, feed), name=f"landscape-{s.id}")

    def unwatch(self, s: Session, box: Mailbox) -> None:
        """``box`` no longer wants snapshots; the last one gone stops the computing."""
        feed = self.feeds.get(s.id)
        if feed is not None:
            feed.watchers.pop(box, None)
            self._stop_if_idle(s.id)

    def watching(self, s: Session) -> int:
        feed = self.feeds.get(s.id)
        return 0 if feed is None else len(feed.watchers)

    def _stop_if_idle(self, session_id: str) -> None:
        feed = self.feeds.get(session_id)
        if feed is not None and not feed.watchers:
            del self.feeds[session_id]
            if feed.task is not None and feed.task is not asyncio.current_task():
                feed.task.cancel()

    async def close(self) -> None:
        feeds, self.feeds = list(self.feeds.values()), {}
        for feed in feeds:
            if feed.task is not None:
                feed.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await feed.task

    def gradients(self, s: Session) -> dict[str, Any] | None:
        """The feed's latest gradient health when it still describes this network (same edits and spec; while
        training, up to a second old): what the page's fragment shows without computing it again."""
        feed = self.feeds.get(s.id)
        part = None if feed is None else feed.slow.get("gradients")
        if part is None or part.out is None:
            return None
        key = key_of(s)
        fresh = part.key == key or (s.status == "running" and part.key[1:] == key[1:])
        return part.out if fresh else None

    # ------------------------------------------------------------------ computing

    async def _run(self, s: Session, feed: Feed) -> None:
        """Rounds while anyone watches: as soon as the previous one is done, at most one per SLICE_PERIOD."""
        while feed.watchers and self.feeds.get(s.id) is feed:
            started = time.monotonic()
            try:
                await self._round(s, feed)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the feed: the next round tries again
                log.exception("session %s: a landscape round failed", s.id)
            period = SLICE_PERIOD if s.status == "running" else POLL
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))

    async def _round(self, s: Session, feed: Feed) -> None:
        """Compute what changed since the last round and send each variant's snapshot if it is new."""
        running = s.status == "running"
        key = key_of(s)
        stale = any(feed.slow.get(name) is None or feed.slow[name].key != key for name in SLOW_PARTS)
        if stale and (not running or time.monotonic() - feed.slow_at >= SLOW_PERIOD):
            feed.slow_at = time.monotonic()
            await self._slow(s, feed)
        wanted = feed.wanted(running)
        for variant in wanted:
            part = feed.slices.get(variant)
            if part is None or part.key != key_of(s):
                feed.slices[variant] = part = await self._slice(s, variant)
            self._send(s, feed, variant, part, running)
        feed.slices = {v: p for v, p in feed.slices.items() if v in wanted}
        feed.sent = {v: m for v, m in feed.sent.items() if v in wanted}

    async def _slice(self, s: Session, variant: Variant) -> Part:
        directions, resolution, span, seed = variant
        key = key_of(s)
        try:
            out = await self.views.landscape(s, directions, resolution, span, seed)
        except Exception as exc:
            return Part(key, error=_failure(exc, "loss landscape", s))
        finally:
            self.computed["slice"] += 1
        path = out.pop("trajectory")
        arrays = {
            "loss": _floats(out.pop("loss")),
            "coordinates": _floats(out.pop("coordinates")),
            "path_epochs": np.asarray(path.pop("epochs"), dtype=np.int32),
        }
        arrays |= {f"path_{name}": _floats(values) for name, values in path.items()}
        return Part(key, header={**out, "revision": key[1]}, arrays=arrays)

    async def _slow(self, s: Session, feed: Feed) -> None:
        """The line, the sharpness and the gradient health of the weights now."""
        for name in SLOW_PARTS:
            key = key_of(s)
            try:
                out = await self._slow_view(s, name)
            except Exception as exc:
                feed.slow[name] = Part(key, error=_failure(exc, name, s))
                continue
            finally:
                self.computed[name] += 1
            feed.slow[name] = _slow_part(name, key, out)

    async def _slow_view(self, s: Session, name: str) -> dict[str, Any]:
        if name == "line":
            return await self.views.interpolation(s, LINE_STEPS)
        if name == "sharpness":
            return await self.views.sharpness(s, SHARPNESS_ITERS)
        return await self.views.gradients(s)

    def _send(self, s: Session, feed: Feed, variant: Variant, part: Part, running: bool) -> None:
        """The variant's snapshot to every socket that wants it, unless it is the one they have."""
        slow = [feed.slow.get(name) for name in SLOW_PARTS]
        stamp = (part.serial, *(0 if p is None else p.serial for p in slow))
        last = feed.sent.get(variant)
        if last is not None and last[0] == stamp:
            return
        data = encode_binary(*self._message(s, variant, part, dict(zip(SLOW_PARTS, slow, strict=True))))
        self.computed["encoded"] += 1
        feed.sent[variant] = (stamp, data)
        for box, want in feed.watchers.items():
            if want.variant(running) == variant:
                box.put(data)

    @staticmethod
    def _message(
        s: Session, variant: Variant, part: Part, slow: dict[str, Part | None]
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """A ``landscape`` message (docs/websocket.md): each part's fields under its name, its arrays flat."""
        directions, resolution, span, seed = variant
        header: dict[str, Any] = {
            "type": "landscape",
            "id": s.id,
            "epoch": part.key[0],
            "status": s.status,
            "spec_version": part.key[2],
            "watch": {"directions": directions, "resolution": resolution, "span": span, "seed": seed},
        }
        arrays: dict[str, np.ndarray] = {}
        errors: dict[str, Any] = {}
        for name, p in {"slice": part, **slow}.items():
            header[name] = None if p is None else p.header
            if p is not None:
                arrays |= p.arrays
                if p.error is not None:
                    errors[name] = p.error
        header["errors"] = errors
        return header, arrays


def _slow_part(name: str, key: Key, out: dict[str, Any]) -> Part:
    """A slow view's answer as a part: numbers in lists become arrays, the rest stays in the header."""
    epoch, revision, spec_version = key
    header: dict[str, Any] = {"epoch": out.get("epoch", epoch), "revision": revision, "spec_version": spec_version}
    arrays: dict[str, np.ndarray] = {}
    if name == "line":
        header |= {k: out[k] for k in ("from", "to", "from_epoch", "examples")}
        arrays = {"line_t": _floats(out["t"]), "line_loss": _floats(out["loss"])}
    elif name == "sharpness":
        header |= {k: out[k] for k in ("top_eigenvalue", "stability_threshold", "iters", "examples")}
        history = out["history"]
        arrays = {
            "sharpness_epochs": np.asarray([h["epoch"] for h in history], dtype=np.int32),
            "sharpness_top_eigenvalue": _floats([h["top_eigenvalue"] for h in history]),
        }
    else:
        header |= {k: out[k] for k in ("layers", "diagnosis", "examples")}
    return Part(key, header=header, arrays=arrays, out=out)
