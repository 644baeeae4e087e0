"""Running sessions: worker threads (JAX lets go of the GIL), warm-up compiles, the play loop, synchronous
training, pause and step. Chunks run in worker threads under a capacity limiter the size of the machine;
views have a thread of their own, so they never wait for a playing session's chunks."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio

from server.config import Settings
from server.engines.base import Advance, sanitize
from server.errors import Conflict, Invalid
from server.ml.train import record_every
from server.sessions import broadcast, scheduler, stopping
from server.sessions.cohorts import Cohorts
from server.sessions.recording import record, record_rows, row_metrics
from server.sessions.session import Session, Snapshot

T = TypeVar("T")
log = logging.getLogger(__name__)


CALL_EPOCHS = 1000  # epochs per compiled call of a REST train (a checkpoint after each)
MAX_CALLS = 10  # compiled calls per REST train at most


def recorded_calls(epochs: int, in_loop: bool) -> tuple[int, int]:
    """How a REST train of ``epochs`` epochs runs: (record interval, epochs per compiled call). A training
    program that records on the device (``in_loop``) runs a few long calls, each a whole number of record
    intervals; otherwise a hundred calls, one record after each."""
    if not in_loop:
        return 1, max(1, math.ceil(epochs / 100))
    every = record_every(epochs)
    calls = min(MAX_CALLS, max(1, math.ceil(epochs / CALL_EPOCHS)))
    return every, every * math.ceil(math.ceil(epochs / every) / calls)


class Workers:
    """The threads that compute: training chunks and frames (one per core), and views (one)."""

    def __init__(self, settings: Settings):
        self.limiter = anyio.CapacityLimiter(settings.worker_threads)
        self.view_limiter = anyio.CapacityLimiter(1)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self.limiter)

    async def view(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a view beside training, in the views' thread."""
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self.view_limiter)


class Runner:
    """Trains sessions: in the background while they play, or now for a REST call."""

    def __init__(self, settings: Settings, workers: Workers):
        self.settings, self.workers = settings, workers
        self.compiled: set[tuple[Any, ...]] = set()  # programs that have run in this process (Session.program_key)
        self.runs: dict[str, stopping.Run] = {}  # each playing session's run (its stop conditions)
        self.playing: set[str] = set()  # sessions whose loop is running
        self.cohorts = Cohorts(self, workers, settings.worker_threads)  # turns taken together (a class)

    # ------------------------------------------------------------------ compiling ahead

    def warm(self, s: Session) -> None:
        """Compile the session's training program in the background (a call that trains zero epochs), and its
        frame program beside it (XLA compiles the two on two cores at once), so that pressing play on a new
        architecture finds them ready instead of waiting for the compiler."""
        if not self.settings.warm_start:
            return
        snap, key = Snapshot.of(s), s.program_key

        async def run() -> None:
            with contextlib.suppress(Exception):  # the real calls report any error
                engine = snap.engine
                await asyncio.gather(
                    self.workers.run(engine.warm, snap.cfg, snap.state, snap.data, snap.hyper),
                    self.workers.run(snap.frame_arrays),
                )
                self.compiled.add(key)

        s.warm = asyncio.create_task(run(), name=f"warm-{s.id}")

    @staticmethod
    async def warmed(s: Session) -> None:
        if s.warm is not None and not s.warm.done():
            await asyncio.shield(s.warm)

    # ------------------------------------------------------------------ training now

    def advance(self, s: Session, epochs: int, every: int | None = None) -> Advance:
        """Train ``epochs`` epochs (worker thread, lock held): the engine's answer, its weights taken."""
        key = s.program_key
        result = s.engine.advance(s.cfg, s.state, s.data, s.hyper, epochs, s.epoch, every)
        self.compiled.add(key)
        return self.took(s, result)

    @staticmethod
    def took(s: Session, result: Advance) -> Advance:
        """The session takes what an advance trained (its weights, epochs and steps)."""
        s.state = result.state
        s.epoch += result.epochs
        s.step += result.epochs * s.data.steps_per_epoch
        return result

    def run_of(self, s: Session) -> stopping.Run:
        """The playing session's run (its stop conditions), begun at its first chunk."""
        run = self.runs.get(s.id)
        if run is None:
            run = self.runs[s.id] = stopping.begin(s)
        return run

    def _train_sync(self, s: Session, epochs: int) -> None:
        """A REST train (worker thread, lock held): a few compiled calls that record the history on the way
        (the MLP engine; a CNN's calls record one point each), each ending in a checkpoint; the stop
        conditions are looked at between calls."""
        run, done = stopping.begin(s), 0
        every, per_call = recorded_calls(epochs, s.engine.name == "mlp")
        while done < epochs:
            n = stopping.cap(s, run, min(per_call, epochs - done))
            before = s.epoch
            result = self.advance(s, n, every)
            rows = result.records
            if rows is not None and len(rows) and before + int(rows[-1, 0]) == s.epoch:
                record_rows(s, rows, before, result.points)
                s.metrics = row_metrics(s, rows[-1])
            else:
                s.metrics = s.engine.metrics(s.cfg, s.state, s.data, s.spec.problem)
            reason = stopping.check(s, run) if not result.diverged else None
            if s.epoch > before or reason:
                record(s, replace=True)
            done += n
            if result.diverged:
                s.status = "diverged"
                return
            if reason:
                s.stopped = reason
                break
        if s.status == "diverged":
            s.status = "paused"

    async def train(self, s: Session, epochs: int) -> None:
        if epochs > self.settings.max_train_epochs:
            raise Invalid(f"at most {self.settings.max_train_epochs} epochs per call", ("epochs",))
        await self.warmed(s)
        async with s.lock:
            await self.workers.run(self._train_sync, s, epochs)

    # ------------------------------------------------------------------ frames of a playing session

    async def show(self, s: Session, snap: Snapshot) -> None:
        """Compute a snapshot's frame off the event loop and hand it out, unless an edit made it stale."""

        def compute() -> tuple[dict[str, Any], broadcast.Frame]:
            arrays = snap.frame_arrays()
            frame = broadcast.Frame(broadcast.frame_message(s, snap, arrays))
            frame.wire()  # encoded here, in the worker thread, once for every socket
            return arrays, frame

        try:
            arrays, message = await self.workers.run(compute)
        except Exception:  # a frame that cannot be drawn must not stop training; the next one may work
            log.exception("session %s: frame of epoch %d failed", s.id, snap.epoch)
            return
        if s.revision != snap.revision:
            return  # reset, patched or given new weights meanwhile: that edit published its own frame
        s.metrics = sanitize(arrays, snap.spec.problem)
        last = s.history.last
        if last is None or last["epoch"] < snap.epoch:
            record(s, snap=snap)
        broadcast.publish(s, message)

    def advance_run(self, s: Session, n: int) -> tuple[bool, str | None, Advance]:
        """A chunk of a run (worker thread, lock held): (trained without diverging, why it stops or None,
        the engine's answer)."""
        run = self.run_of(s)
        n = stopping.cap(s, run, n)
        result = self.advance(s, n)
        ok = not result.diverged
        return ok, stopping.check(s, run) if ok else None, result

    async def _chunk(self, s: Session, epochs: int) -> tuple[int, bool, Snapshot] | None:
        """One chunk of the loop under the lock: (epochs asked, trained without diverging, the snapshot after)."""
        async with s.lock:
            if s.status != "running":
                return None
            n = self._capped(s, epochs)
            if s.program_key not in self.compiled:
                self.say_compiling(s)
            ok, reason, _ = await self.workers.run(self.advance_run, s, n)
            if not ok:
                s.status = "diverged"
            elif reason:
                s.status, s.stopped = "paused", reason
                broadcast.notify(s, {"type": "stopped", "epoch": s.epoch, "reason": reason})
            return n, ok, Snapshot.of(s)

    def _capped(self, s: Session, epochs: int) -> int:
        """A chunk's epochs under the session's speed cap (epochs per second), if it has one."""
        cap = s.spec.speed
        return epochs if cap is None else max(1, min(epochs, round(cap * self.period)))

    async def _turn(self, s: Session, epochs: int, due: bool) -> scheduler.Turn | None:
        """One turn of the loop under the lock (scheduler.take_turn); None once the session is not running."""
        async with s.lock:
            if s.status != "running":
                return None
            n = self._capped(s, epochs)
            if s.program_key not in self.compiled:
                self.say_compiling(s)
                turn = await self.workers.run(scheduler.take_turn, self, s, n, due)
            elif self.settings.cohorts and s.engine.cohorts and s.spec.speed is None:
                turn = await self.cohorts.turn(s, n, due)  # with the others of its network and data waiting now
            else:
                turn = await self.workers.run(scheduler.take_turn, self, s, n, due)
            if turn.reason:
                broadcast.notify(s, {"type": "stopped", "epoch": s.epoch, "reason": turn.reason})
            if turn.message is not None:
                broadcast.publish(s, turn.message)
            return turn

    @property
    def contended(self) -> bool:
        """More sessions play than there are worker threads: loops take turns (server/sessions/scheduler.py)."""
        return len(self.playing) > self.settings.worker_threads

    @staticmethod
    def say_compiling(s: Session) -> None:
        """Tell the watchers why nothing moves yet: the program for this network is being compiled."""
        message = "compiling the training program for this network (the first time takes a few seconds)"
        broadcast.notify(s, {"type": "status", "status": "compiling", "message": message})

    @property
    def period(self) -> float:
        return 1.0 / self.settings.frame_rate

    async def loop(self, s: Session) -> None:
        """Train chunk after chunk while running; a frame at the frame rate.

        Alone on its thread, the frame of the state after chunk k is computed (in another worker thread)
        while chunk k + 1 trains, so training never waits for frames; chunks last about half a frame period,
        so an edit (which waits for the chunk in flight) shows in the next frame quickly. When more sessions
        play than there are threads, or nobody watches, the loop takes turns instead (scheduler.py).
        """
        pace = scheduler.Pace()
        shown: asyncio.Task[None] | None = None
        snap: Snapshot | None = None
        run = self.runs.get(s.id)
        if s.warm is not None and not s.warm.done():
            self.say_compiling(s)
        await self.warmed(s)
        self.playing.add(s.id)
        try:
            while s.status == "running":
                if self.contended or not s.subscribers:
                    if shown is not None and not shown.done():
                        await shown  # frames go out in order
                    snap = await self._turned(s, pace) or snap
                    if s.status != "running" or snap is None:
                        break
                    continue
                step = await self._overlapped(s, pace, shown)
                if step is None:
                    break
                snap, shown = step
        finally:
            self.playing.discard(s.id)
            if self.runs.get(s.id) is run:
                self.runs.pop(s.id, None)
            if shown is not None and not shown.done():
                await shown
        await self._show_paused(s, snap)
        if s.status == "running" and s.task is asyncio.current_task():
            s.task = asyncio.create_task(self.loop(s), name=f"session-{s.id}")  # played again while this one ended

    async def _overlapped(
        self, s: Session, pace: scheduler.Pace, shown: asyncio.Task[None] | None
    ) -> tuple[Snapshot, asyncio.Task[None] | None] | None:
        """A chunk, its frame computed beside the next chunk when due: (the snapshot after it, the frame's
        task); None once the session is not running."""
        started = time.perf_counter()
        chunk = await self._chunk(s, pace.epochs)
        if chunk is None:
            return None
        n, ok, snap = chunk
        now = time.perf_counter()
        elapsed, cap = now - started, snap.spec.speed
        # due when this chunk's end is nearer the next frame time than the following chunk's end
        due = cap is not None or not ok or now - pace.last_frame + 0.5 * elapsed >= self.period
        if due and (shown is None or shown.done() or not ok):
            if not ok and shown is not None:
                await shown  # the divergence frame must come last
            shown = asyncio.create_task(self.show(s, snap))
            pace.last_frame = now
        # let requests and other sessions in between chunks (a speed cap waits for its pace)
        await asyncio.sleep(0.0 if cap is None else max(0.0, n / cap - elapsed))
        pace.grow(elapsed, n, 0.5 * self.period)
        return snap, shown

    async def _turned(self, s: Session, pace: scheduler.Pace) -> Snapshot | None:
        """One turn (scheduler.py), paced: the snapshot after it, None once the session is not running."""
        started, cap = time.perf_counter(), s.spec.speed
        due = pace.due(started, self.period, cap is not None)
        turn = await self._turn(s, pace.epochs, due)
        if turn is None:
            return None
        if due:
            pace.last_frame = started
        elapsed = time.perf_counter() - started
        await asyncio.sleep(0.0 if cap is None else max(0.0, turn.epochs / cap - elapsed))
        pace.gap = time.perf_counter() - started
        target = scheduler.chunk_seconds(self.period, self.settings.worker_threads, len(self.playing))
        pace.grow(turn.seconds, turn.epochs, target)
        return turn.snap

    async def _show_paused(self, s: Session, snap: Snapshot | None) -> None:
        """Paused (not by an edit, which shows its own frame): show exactly where training stopped."""
        if snap is not None and s.status != "diverged" and s.revision == snap.revision:
            async with s.lock:
                if s.revision == snap.revision:
                    await self.show(s, Snapshot.of(s))

    # ------------------------------------------------------------------ play, pause, step

    @staticmethod
    async def stop(s: Session) -> None:
        if s.unwatched is not None:
            s.unwatched.cancel()
        task, s.task = s.task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def play(self, s: Session, watched: bool = True) -> None:
        """Train in the background until paused. ``watched``: played from a page or a socket, so it pauses by
        itself once nobody has watched it for ``unwatched_pause_seconds`` (REST plays run until paused)."""
        if s.status == "diverged":
            raise Conflict("training diverged: lower the learning rate or reset before playing", ("status",))
        if s.status != "running":
            self.runs[s.id] = stopping.begin(s)  # a new run: the stop conditions watch from here
        s.status, s.pause_unwatched = "running", watched
        if s.task is None or s.task.done():
            s.task = asyncio.create_task(self.loop(s), name=f"session-{s.id}")
        if not s.subscribers:
            self.unwatched(s)

    # ------------------------------------------------------------------ nobody watching

    def unwatched(self, s: Session) -> None:
        """The last watcher has gone: a session played from a page pauses after the grace period."""
        if s.status == "running" and s.pause_unwatched and (s.unwatched is None or s.unwatched.done()):
            s.unwatched = asyncio.create_task(self._pause_unwatched(s), name=f"unwatched-{s.id}")

    @staticmethod
    def watched(s: Session) -> None:
        """A watcher came (back): no pause."""
        if s.unwatched is not None and s.unwatched is not asyncio.current_task():
            s.unwatched.cancel()
        s.unwatched = None

    async def _pause_unwatched(self, s: Session) -> None:
        grace = self.settings.unwatched_pause_seconds
        await asyncio.sleep(grace)
        if s.subscribers or s.status != "running" or not s.pause_unwatched:
            return
        s.stopped = f"paused: nobody watched it for {grace:g} s (the CPU went to sessions people are looking at)"
        await self.pause(s)

    @staticmethod
    async def pause(s: Session) -> None:
        if s.status == "running":
            s.status = "paused"
        task = s.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            # returns once the loop has finished its chunk and shown the paused state (metrics match epoch)
            await asyncio.shield(task)
        async with s.lock:
            pass

    async def step(self, s: Session) -> None:
        """Pause, train exactly one epoch and show it."""
        await self.pause(s)
        await self.warmed(s)

        def one() -> broadcast.Message | None:
            if self.advance(s, 1).diverged:
                s.status = "diverged"
            elif s.status == "running":
                s.status = "paused"
            snap = Snapshot.of(s)
            arrays = snap.frame_arrays()
            s.metrics = sanitize(arrays, s.spec.problem)
            last = s.history.last
            if last is None or last["epoch"] != s.epoch:
                record(s)
            return broadcast.frame_message(s, snap, arrays) if s.subscribers else None

        async with s.lock:
            message = await self.workers.run(one)
            if message is not None:
                broadcast.publish(s, message)
