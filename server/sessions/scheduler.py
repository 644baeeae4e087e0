"""Taking turns: how a playing session's loop paces itself when it shares the worker threads.

While no more sessions play than there are worker threads (and someone watches), a loop trains chunk after
chunk and computes each frame in another thread beside the next chunk (``Runner.show``). Once more sessions
play than there are threads — a class — each loop instead takes *turns*: one worker call that trains a chunk
and, when a frame is due and someone watches, computes the frame, records it and encodes its message, all in
that thread. The worker threads' limiter is first come, first served, and a loop asks for its next turn only
when its last one is done, so the playing sessions go round in turn: every one gets its share. A chunk is
sized to the session's share of the frame period, so a round of turns lasts about one frame period.

A session nobody watches computes no frames: its metrics come from the record row its training program made
on the way (the history is recorded at the frame rate all the same).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from server.engines.base import Advance, sanitize
from server.ml import cohort
from server.sessions import broadcast, stopping
from server.sessions.recording import record, row_metrics
from server.sessions.session import Session, Snapshot

if TYPE_CHECKING:
    from server.sessions.runner import Runner


@dataclass
class Pace:
    """A loop's pacing: epochs of the next chunk, when its last frame (or record) was made, how long one
    loop round took last time."""

    epochs: int = 1
    last_frame: float = -math.inf
    last_start: float = -math.inf
    gap: float = 0.0

    def due(self, now: float, period: float, capped: bool) -> bool:
        """A frame (or a record) at this turn: when its end is nearer the next frame time than the next turn's."""
        return capped or now - self.last_frame + 0.5 * self.gap >= period

    def grow(self, seconds: float, n: int, target: float) -> None:
        """The next chunk's epochs from this one's training time (grown at most 2x, so a slow architecture
        never stalls the loop)."""
        per_epoch = max(seconds / max(n, 1), 1e-7)
        self.epochs = max(1, min(self.epochs * 2, int(target / per_epoch)))


def chunk_seconds(period: float, threads: int, playing: int) -> float:
    """Training time of one chunk: half a frame period, or the session's share of it when more play than
    there are threads (a round of every session's turn then lasts about a frame period)."""
    return 0.5 * period * min(1.0, threads / max(1, playing))


@dataclass
class Turn:
    """What one turn did."""

    seconds: float  # training time of its chunk (in the worker thread, not waiting for one)
    epochs: int  # epochs asked
    ok: bool  # trained without diverging
    reason: str | None  # why the run stops (a stop condition), or None
    snap: Snapshot  # the state after it
    message: broadcast.Frame | None  # the frame it made, its wire bytes encoded; None if none


def take_turn(runner: Runner, s: Session, n: int, due: bool) -> Turn:
    """One turn (worker thread, lock held): a chunk of ``n`` epochs, then — when ``due`` — a frame if anyone
    watches (or the run diverged), else the metrics of the training program's last record row; either way a
    record of the history. A run stopped by a condition makes no frame: the paused frame follows."""
    started = time.perf_counter()
    ok, reason, result = runner.advance_run(s, n)
    return _finish(s, time.perf_counter() - started, n, ok, reason, result, due)


def take_turns(
    runner: Runner, requests: Sequence[tuple[Session, int, bool]], sizes: frozenset[int] = frozenset(cohort.SIZES)
) -> list[Turn]:
    """The turns of sessions of one network on one dataset (worker thread; each one's lock held by its loop):
    the same chunk for all — the fewest epochs any asked for — trained in one compiled call, and the frames
    due of those watched drawn in another (the engine's ``advance_many`` and ``frame_arrays_many``). Each is
    then a turn as ``take_turn`` makes it. A session whose stop conditions cut that chunk shorter, or whose
    weights stopped being finite in it, takes its turn alone. ``sizes``: the cohort sizes whose programs are
    compiled (``cohort.padded``); a cohort of another size takes its turns one by one meanwhile."""
    n = min(k for _, k, _ in requests)
    together = [(s, due) for s, _, due in requests if stopping.cap(s, runner.run_of(s), n) == n]
    turns: dict[str, Turn] = {}
    if 2 <= len(together) <= cohort.MAX and cohort.padded(len(together)) in sizes:
        first = together[0][0]
        engine, cfg, data = first.engine, first.cfg, first.data
        started = time.perf_counter()
        states, hypers, starts = (
            [s.state for s, _ in together],
            [s.hyper for s, _ in together],
            [s.epoch for s, _ in together],
        )
        results = engine.advance_many(cfg, states, data, hypers, n, starts)
        seconds = (time.perf_counter() - started) / len(together)  # each one's share of the call
        trained = []
        for (s, due), result in zip(together, results, strict=True):
            if result is not None:
                runner.took(s, result)
                trained.append((s, due, result, stopping.check(s, runner.runs[s.id])))
        drawn = [s for s, due, _, reason in trained if due and not reason and s.subscribers]
        pictures: dict[str, dict[str, Any]] = {}
        if len(drawn) >= 2 and cohort.padded(len(drawn)) in sizes:
            many = engine.frame_arrays_many(cfg, [s.state for s in drawn], data, [s.hyper for s in drawn])
            pictures = {s.id: arrays for s, arrays in zip(drawn, many, strict=True)}
        for s, due, result, reason in trained:
            turns[s.id] = _finish(s, seconds, n, True, reason, result, due, pictures.get(s.id))
    for s, k, due in requests:
        if s.id not in turns:
            turns[s.id] = take_turn(runner, s, k, due)
    return [turns[s.id] for s, _, _ in requests]


def _finish(
    s: Session,
    seconds: float,
    n: int,
    ok: bool,
    reason: str | None,
    result: Advance,
    due: bool,
    arrays: dict[str, Any] | None = None,
) -> Turn:
    """A turn after its chunk: the status it leaves, and when due its frame (from ``arrays`` if they were
    drawn already) or metrics, and a record of the history."""
    if not ok:
        s.status = "diverged"
    elif reason:
        s.status, s.stopped = "paused", reason
    snap = Snapshot.of(s)
    message = None
    if (due and not reason) or not ok:
        message = _frame_or_metrics(s, snap, result, bool(s.subscribers) or not ok, arrays)
        last = s.history.last
        if last is None or last["epoch"] < snap.epoch:
            record(s, snap=snap, weights=None if arrays is None else arrays.get("params"))
    return Turn(seconds, n, ok, reason, snap, message)


def _frame_or_metrics(
    s: Session, snap: Snapshot, result: Advance, watched: bool, arrays: dict[str, Any] | None = None
) -> broadcast.Frame | None:
    """Set the session's metrics: from a frame (computed — unless its ``arrays`` were drawn with others —,
    built and encoded here) when it is ``watched`` or the engine made no record row; else from the row."""
    rows = result.records
    if not watched and rows is not None and len(rows) and int(rows[-1, 0]) == result.epochs:
        s.metrics = row_metrics(s, rows[-1])
        return None
    arrays = snap.frame_arrays() if arrays is None else arrays
    s.metrics = sanitize(arrays, snap.spec.problem)
    if not watched:
        return None
    frame = broadcast.Frame(broadcast.frame_message(s, snap, arrays))
    frame.wire()  # encoded here, in the worker thread, once for every socket
    return frame
