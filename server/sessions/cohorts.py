"""Turns taken together: when a class has many sessions of one network on one dataset playing at once, their
loops hand their turns to the cohort of that network (``Cohorts.turn``) instead of each taking a worker
thread alone. A cohort's server takes every turn waiting — or, with more waiting than the worker threads can
share, its part of them, at most ``cohort.MAX`` — and runs them in one worker call (``scheduler.take_turns``):
one compiled call trains them all, another draws the frames due. Each loop keeps its session's lock while its
turn waits and runs, as it does for a turn of its own, so edits still come between turns.

Measured (bench ``load_*``, 50 default-net sessions on two cores): the dispatches, transfers and Python
around each session's turn, not the arithmetic, were what the frame rate waited for.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from server.ml import cohort
from server.sessions import scheduler
from server.sessions.session import Session, Snapshot

if TYPE_CHECKING:
    from server.sessions.runner import Runner, Workers

log = logging.getLogger(__name__)
GATHER_ROUNDS = 8  # event-loop turns a server waits at most for its share of the cohort to come back


@dataclass
class Request:
    s: Session
    epochs: int
    due: bool
    answer: asyncio.Future[scheduler.Turn]


class Cohorts:
    """The waiting turns of each network-and-dataset, and the servers taking them (at most one per thread)."""

    def __init__(self, runner: Runner, workers: Workers, threads: int):
        self.runner, self.workers, self.threads = runner, workers, max(1, threads)
        self.waiting: dict[Hashable, list[Request]] = {}
        self.serving: collections.Counter[Hashable] = collections.Counter()
        self.in_flight: collections.Counter[Hashable] = collections.Counter()  # turns in a worker call now
        self.calls: collections.Counter[int] = collections.Counter()  # worker calls by turns in them (tests, bench)
        # cohort programs compiled, by (the network's program key, size); those being compiled, by program key
        self.ready: set[tuple[Hashable, int]] = set()
        self.warming: dict[Hashable, asyncio.Task[None]] = {}

    @staticmethod
    def key(s: Session) -> Hashable:
        return (s.program_key, id(s.data))

    async def turn(self, s: Session, epochs: int, due: bool) -> scheduler.Turn:
        """The session's turn, taken with those of its cohort waiting now (its loop holds its lock)."""
        key = self.key(s)
        answer: asyncio.Future[scheduler.Turn] = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(key, []).append(Request(s, epochs, due, answer))
        if self.serving[key] < self.threads:
            self.serving[key] += 1
            asyncio.create_task(self._serve(key), name="cohort")
        try:
            return await asyncio.shield(answer)
        except asyncio.CancelledError:
            # as a turn of its own: the worker call finishes with the session before its loop lets go of it
            if not answer.done():
                await asyncio.wait([answer])
            raise

    def _share(self, key: Hashable) -> int:
        """Turns a server takes at once: its thread's share of the cohort's sessions (waiting or in a call)."""
        members = len(self.waiting.get(key, [])) + self.in_flight[key]
        return min(cohort.MAX, max(1, math.ceil(members / self.threads)))

    def _take(self, key: Hashable, share: int) -> list[Request]:
        queue = self.waiting.get(key, [])
        batch, self.waiting[key] = queue[:share], queue[share:]
        if not self.waiting[key]:
            del self.waiting[key]
        return batch

    def prepare(self, s: Session) -> None:
        """Compile the cohort programs of every size for the session's network in the background, ahead of the
        sessions that will play it together (a class: its students' copies of the presenter's session)."""
        program = s.program_key
        if s.engine.cohorts and self.runner.settings.cohorts and program not in self.warming:
            sizes = [size for size in reversed(cohort.SIZES) if (program, size) not in self.ready]
            if sizes:
                self.warming[program] = asyncio.create_task(self._warm(s, sizes), name="cohort-warm")

    def _sizes(self, s: Session, waiting: int) -> frozenset[int]:
        """The cohort sizes whose programs are compiled for the session's network; the first time a cohort of
        it forms, they are compiled in the background (meanwhile its turns are taken one by one)."""
        program = s.program_key
        ready = frozenset(size for size in cohort.SIZES if (program, size) in self.ready)
        needed = cohort.padded(min(cohort.MAX, max(2, waiting)))
        wanted = [needed, *(size for size in reversed(cohort.SIZES) if size < needed)]  # the one needed now first
        if any(size not in ready for size in wanted) and program not in self.warming:
            self.warming[program] = asyncio.create_task(self._warm(s, wanted), name="cohort-warm")
        return ready

    async def _warm(self, s: Session, sizes: list[int]) -> None:
        """Compile the cohort programs of these sizes for the session's network, in this order, in a thread of
        their own (the worker threads go on taking turns)."""
        program, snap = s.program_key, Snapshot.of(s)
        try:
            for size in sizes:
                if (program, size) not in self.ready:
                    await asyncio.to_thread(snap.engine.warm_many, snap.cfg, snap.state, snap.data, snap.hyper, size)
                    self.ready.add((program, size))
        except Exception:  # the turns go on one by one; the next cohort tries again
            log.exception("compiling the cohort programs of %s failed", program)
        finally:
            self.warming.pop(program, None)

    async def _serve(self, key: Hashable) -> None:
        try:
            while self.waiting.get(key):
                # the loops whose turns just ended come back to the queue first (a few turns of the event loop)
                for _ in range(GATHER_ROUNDS):
                    if len(self.waiting.get(key, [])) >= self._share(key):
                        break
                    await asyncio.sleep(0)
                batch = self._take(key, self._share(key))
                if not batch:
                    break
                self.in_flight[key] += len(batch)
                asked = [(r.s, r.epochs, r.due) for r in batch]
                sizes = self._sizes(batch[0].s, len(self.waiting.get(key, [])) + len(batch))
                self.calls[len(batch)] += 1
                try:
                    turns = await self.workers.run(scheduler.take_turns, self.runner, asked, sizes)
                except asyncio.CancelledError:
                    for r in batch:
                        r.answer.cancel()
                    raise
                except Exception as exc:
                    for r in batch:
                        if not r.answer.done():
                            r.answer.set_exception(exc)
                    continue
                finally:
                    self.in_flight[key] -= len(batch)
                for r, t in zip(batch, turns, strict=True):
                    if not r.answer.done():
                        r.answer.set_result(t)
        finally:
            self.serving[key] -= 1
            if self.serving[key] <= 0:
                del self.serving[key]
