"""Sweeps: many configurations of an experiment, trained group after group (``sweep_groups``), each group
in one vmapped compiled program, a chunk of epochs per call, with early stopping (successive halving),
cancel, progress and streamed results. The sweep's results are written to the store as it goes.

Fairness: a sweep's compiled calls hold at most ``sweep_worker_share`` of the worker threads (the rest stay
free for interactive sessions), each call lasts about ``sweep_chunk_seconds``, and the loop yields between
calls; each client address runs at most ``max_sweeps_per_client`` sweeps at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import json
import logging
import math
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import anyio
import jax
import jax.numpy as jnp
import numpy as np

from server.config import Settings
from server.engines.base import sanitize
from server.errors import Conflict, Invalid, NotFound, TooMany
from server.ml.inspect import NEURON_RESOLUTION
from server.ml.train import RECORD_COLUMNS, RECORD_SLOTS, TrainState
from server.sessions import sweep_groups as groups
from server.sessions.registry import Registry
from server.sessions.runner import Workers
from server.sessions.saved import Saved
from server.sessions.session import Session
from server.spec import ExperimentSpec
from server.store import Store, StoreError
from server.sweepspec import Configuration, SweepSpec, expand

log = logging.getLogger(__name__)

FINISHED = ("done", "diverged", "stopped")
MAP_SECONDS = 1.0  # small decision maps are sent at most this often (and at the end of each group)
CANCEL_WAIT_SECONDS = 3.0  # DELETE waits this long at most for the call in flight to return
# A group's first call: one epoch, timed, so the next ones can be sized by it (a CNN group's epoch can take
# seconds: a longer probe would hold a cancel back and a thread busy for that long)
FIRST_CALL_EPOCHS = 1
KNOWN_PROGRAMS = 1024  # groups whose epoch time is remembered (then forgotten all at once)


@dataclass
class Config:
    """One configuration's progress and results."""

    index: int
    params: dict[str, Any]
    spec: ExperimentSpec
    group: int = 0
    status: str = "queued"  # queued | running | done | diverged | stopped | cancelled
    epochs: int = 0  # epochs trained with finite weights and losses
    shown: list[list[Any]] = field(default_factory=list)  # records as answers show them (``_row``)
    pending: list[np.ndarray] = field(default_factory=list)  # records not yet shown (raw, per call)
    last: list[Any] | None = None  # the latest record, shown
    final: dict[str, float | None] | None = None
    map: bytes | None = None  # the latest small decision map (NEURON_RESOLUTION² bytes)

    def add(self, rows: np.ndarray) -> None:
        """A call's records (rows of train.RECORD_COLUMNS); made into JSON numbers when first asked for."""
        if len(rows):
            self.pending.append(rows)
            self.last = _row(rows[-1], self.spec.problem)
            self.final = _final(self.last)

    @property
    def history(self) -> list[list[Any]]:
        for rows in self.pending:
            self.shown.extend(_row(row, self.spec.problem) for row in rows)
        self.pending.clear()
        return self.shown

    def public(self, history: bool = True) -> dict[str, Any]:
        out = {"index": self.index, "params": self.params, "status": self.status, "group": self.group}
        out |= {"epochs": self.epochs, "final": self.final}
        out["history"] = [dict(zip(RECORD_COLUMNS, row, strict=True)) for row in self.history] if history else None
        return out


@dataclass
class Sweep:
    """A sweep: its request, configurations and groups, where it is, who watches it."""

    id: str
    token: str
    client: str
    request: SweepSpec
    configs: list[Config]
    groups: list[list[int]] = field(default_factory=list)
    status: str = "queued"  # queued | running | done | cancelled | failed | interrupted
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    task: asyncio.Task[None] | None = None
    subscribers: set[asyncio.Queue[dict[str, Any]]] = field(default_factory=set)
    states: dict[int, TrainState] = field(default_factory=dict)  # each finished configuration's weights
    rungs: dict[int, list[float]] = field(default_factory=dict)  # early stopping: metric values seen per rung
    rates: dict[int, float] = field(default_factory=dict)  # configuration·epochs per second lately, by group
    compile_seconds: float = 0.0  # the longest call that compiled (each group still to start adds one)
    started_groups: int = 0
    groups_done: int = 0
    stopping: bool = False  # cancelled: the loop ends after the call in flight
    state_bytes: int = 0  # of the weights kept
    states_dropped: bool = False  # some weights were not kept (NEUROGLASS_SWEEP_STATE_BYTES)
    running: dict[int, Any] = field(default_factory=dict)  # the backend's handles of the groups training now
    maps_sent: float = 0.0

    @property
    def total_work(self) -> int:
        return len(self.configs) * self.request.epochs

    @property
    def done_work(self) -> int:
        e = self.request.epochs
        return sum(e if c.status in FINISHED else c.epochs for c in self.configs)

    def progress(self) -> dict[str, Any]:
        done, total = self.done_work, self.total_work
        left = total - done
        waiting = max(0, len(self.groups) - self.started_groups)
        # the groups training now (several at once on Ray) together; the last one's between groups
        rate = sum(self.rates[g] for g in self.running if g in self.rates) or next(reversed(self.rates.values()), 0)
        side = max(1, len(self.running))
        eta = None if self.status != "running" or not rate else left / rate + waiting * self.compile_seconds / side
        counts = {s: 0 for s in ("queued", "running", *FINISHED, "cancelled")}
        for c in self.configs:
            counts[c.status] += 1
        return {"done": done, "total": total, "fraction": done / total if total else 1.0, "eta_seconds": eta} | {
            "configurations": counts,
            "groups_running": len(self.running),
            "groups_done": self.groups_done,
        }

    def public(self, history: bool = True) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.request.name,
            "status": self.status,
            "error": self.error,
            "total": len(self.configs),
            "epochs": self.request.epochs,
            "record_every": self.request.every,
            "groups": len(self.groups),
            "progress": self.progress(),
            "swept": list(self.request.grid) + (list(self.request.random.space) if self.request.random else []),
            "request": self.request.model_dump(mode="json"),
            "configurations": [c.public(history) for c in self.configs],
        }

    def keep_states(self, states: dict[int, TrainState], limit: int) -> None:
        """Keep configurations' weights (to open them) while the sweep's kept weights stay within ``limit``
        bytes; past it the rest are not kept (opening them says so)."""
        for k, state in states.items():
            size = sum(int(np.asarray(leaf).nbytes) for leaf in jax.tree_util.tree_leaves(state))
            if self.state_bytes + size > limit:
                self.states_dropped = True
                continue
            self.states[k] = state
            self.state_bytes += size

    def publish(self, message: dict[str, Any]) -> None:
        for box in list(self.subscribers):
            if box.qsize() > 64:  # a slow watcher skips to the newest news
                with contextlib.suppress(asyncio.QueueEmpty):
                    box.get_nowait()
            box.put_nowait(message)


def _row(row: np.ndarray, problem: str) -> list[Any]:
    """A record as answers show it: the epoch, then the metrics as JSON numbers (None where not finite, and
    accuracies None for a regression)."""
    values = sanitize(dict(zip(RECORD_COLUMNS[1:], row[1:], strict=True)), problem)
    return [int(row[0]), *(values[k] for k in RECORD_COLUMNS[1:])]


def _final(row: list[Any]) -> dict[str, float | None]:
    return dict(zip(RECORD_COLUMNS[1:], row[1:], strict=True))


def backend_for(settings: Settings, workers: Workers, busy: Any) -> groups.Backend:
    """Where groups train: ``NEUROGLASS_SWEEP_BACKEND`` local (worker threads) or ray (a Ray cluster)."""
    if settings.sweep_backend == "ray":
        # Ray is an optional extra (pip install -e '.[ray]'): imported only when asked for
        ray_groups = importlib.import_module("server.sessions.sweep_ray").RayGroups
        backend: groups.Backend = ray_groups(settings)
        return backend
    return groups.LocalGroups(settings, workers.run, busy)


class Sweeps:
    """Every sweep of this server: created, run, watched, cancelled, opened; kept in the store."""

    def __init__(self, settings: Settings, registry: Registry, workers: Workers, store: Store | None):
        self.settings, self.registry, self.workers, self.store = settings, registry, workers, store
        self.sweeps: OrderedDict[str, Sweep] = OrderedDict()
        self.backend: groups.Backend = backend_for(settings, workers, self.interactive)
        # the time an epoch of a group took, by (program, configurations): the next sweep of its kind sizes
        # its first call by it instead of timing a short one
        self.seconds_per_epoch: dict[Any, float] = {}

    def interactive(self) -> bool:
        """Whether interactive work is going on: a session playing, or a worker thread busy with anything
        but the sweeps (a REST train, a frame, a compile)."""
        if any(s.status == "running" for s in self.registry.sessions.values()):
            return True
        sweeping = getattr(self.backend, "in_flight", 0)
        return self.workers.limiter.borrowed_tokens > sweeping

    # ------------------------------------------------------------------ creating, finding, cancelling

    def check(self, request: SweepSpec) -> list[Configuration]:
        """The configurations, or Invalid naming what is wrong (paths, counts, the server's limits)."""
        configs = expand(request, self.settings.max_sweep_configurations)
        work = len(configs) * request.epochs
        if work > self.settings.max_sweep_work:
            limit = self.settings.max_sweep_work
            raise Invalid(f"configurations × epochs is {work}; this server runs at most {limit}", ("epochs",))
        for c in configs:
            self.registry.check_limits(c.spec)
        return configs

    async def create(self, request: SweepSpec, client: str) -> Sweep:
        configs = self.check(request)
        running = [s for s in self.sweeps.values() if s.client == client and s.status in ("queued", "running")]
        if len(running) >= self.settings.max_sweeps_per_client:
            limit = self.settings.max_sweeps_per_client
            raise TooMany(f"at most {limit} sweeps running per client: wait for one or cancel it (DELETE)")
        sweep = Sweep(
            id=secrets.token_urlsafe(9),
            token=secrets.token_urlsafe(24),
            client=client,
            request=request,
            configs=[Config(k, c.params, c.spec) for k, c in enumerate(configs)],
        )
        self.sweeps[sweep.id] = sweep
        self._forget_old()
        sweep.task = asyncio.create_task(self._run(sweep), name=f"sweep-{sweep.id}")
        return sweep

    def get(self, sweep_id: str) -> Sweep:
        sweep = self.sweeps.get(sweep_id)
        if sweep is None:
            raise NotFound(f"no sweep {sweep_id!r} running on this server")
        return sweep

    async def find(self, sweep_id: str, history: bool = True) -> dict[str, Any]:
        """A sweep's answer: from memory, or as the store last wrote it (a sweep of an earlier run)."""
        if sweep_id in self.sweeps:
            return self.sweeps[sweep_id].public(history)
        if self.store is not None:
            with contextlib.suppress(StoreError):
                found = await self.store.sweep(sweep_id)
                if found is not None:
                    if history:
                        return found.result
                    configs = [{**c, "history": None} for c in found.result["configurations"]]
                    return found.result | {"configurations": configs}
        raise NotFound(f"no sweep {sweep_id!r} (it may have been deleted)")

    async def listing(self, limit: int, offset: int) -> dict[str, Any]:
        """Sweeps newest first: from the store (every sweep it keeps), or this run's without one."""
        if self.store is not None:
            items, total = await self.store.sweeps(limit, offset)
            for item in items:  # a running sweep's status is newer in memory
                if item["id"] in self.sweeps:
                    item["status"] = self.sweeps[item["id"]].status
        else:
            mine = sorted(self.sweeps.values(), key=lambda s: s.created, reverse=True)
            total = len(mine)
            items = [
                {"id": s.id, "name": s.request.name, "status": s.status, "total": len(s.configs)}
                | {"epochs": s.request.epochs, "created_at": None, "updated_at": None}
                for s in mine[offset : offset + limit]
            ]
        for item in items:
            item["url"] = f"/api/v1/sweeps/{item['id']}"
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    async def cancel(self, sweep: Sweep) -> None:
        """Stop at once: the running compiled call is the last (its weights are kept, to open), the queued
        configurations never start; the compute is free when the call returns."""
        if sweep.status in ("queued", "running"):
            sweep.status, sweep.stopping = "cancelled", True
            for c in sweep.configs:
                if c.status in ("queued", "running"):
                    c.status = "cancelled"
            for group in list(sweep.running.values()):
                with contextlib.suppress(Exception):
                    await self.backend.cancel(group)
            if sweep.task is not None:
                # the loop ends after the call in flight (about sweep_chunk_seconds, more while compiling)
                with contextlib.suppress(asyncio.CancelledError, Exception, TimeoutError):
                    await asyncio.wait_for(asyncio.shield(sweep.task), CANCEL_WAIT_SECONDS)
        sweep.finished = sweep.finished or time.time()
        await self._write(sweep)
        sweep.publish({"type": "done", "status": sweep.status, "progress": sweep.progress()})

    async def delete(self, sweep: Sweep) -> None:
        await self.cancel(sweep)
        self.sweeps.pop(sweep.id, None)
        if self.store is not None:
            with contextlib.suppress(StoreError):
                await self.store.delete_sweep(sweep.id)

    async def close(self) -> None:
        for sweep in list(self.sweeps.values()):
            if sweep.status in ("queued", "running"):
                await self.cancel(sweep)
                sweep.status = "interrupted"
                await self._write(sweep)
        await self.backend.close()

    def _forget_old(self) -> None:
        finished = [s for s in self.sweeps.values() if s.status not in ("queued", "running")]
        for old in finished[: max(0, len(finished) - self.settings.kept_sweeps)]:
            self.sweeps.pop(old.id, None)

    # ------------------------------------------------------------------ opening a configuration

    async def open(self, sweep: Sweep, k: int) -> Session:
        """A live session of configuration ``k`` continuing from its trained weights (paused)."""
        if not 0 <= k < len(sweep.configs):
            raise NotFound(f"configuration {k} is not in this sweep (0 to {len(sweep.configs) - 1})")
        c = sweep.configs[k]
        state = sweep.states.get(k)
        if state is None and sweep.states_dropped and c.status not in ("queued", "running"):
            limit = self.settings.sweep_state_bytes
            raise Conflict(f"configuration {k}'s weights were not kept: this sweep's weights pass {limit} bytes")
        if state is None:
            raise Invalid(f"configuration {k} is {c.status}: it can be opened once it has trained", ("k",))
        steps = 0  # the registry works the step count out from the data
        history = [{"epoch": row[0], "step": 0, "spec_version": 0} | _final(row) for row in c.history]
        saved = Saved(c.spec, jax.tree_util.tree_map(jnp.asarray, state), None, c.epochs, steps, history, 1, None)
        s = await self.registry.resume(saved)
        s.step = s.epoch * s.data.steps_per_epoch
        return s

    # ------------------------------------------------------------------ running

    def _build(self, cache: dict[str, Any]) -> Any:
        """Each dataset once for the sweep, through the registry's (so a sweep of the data sessions use
        reuses theirs, and the sessions opened from it reuse its)."""

        def build(engine: Any, spec: ExperimentSpec) -> Any:
            key = repr((engine.name, engine.data_key(spec)))
            if key not in cache:
                cache[key] = self.registry.build_data(engine, spec)
            return cache[key]

        return build

    async def _run(self, sweep: Sweep) -> None:
        try:
            first = asyncio.create_task(self._write(sweep))  # beside the first group's start
            specs = [c.spec for c in sweep.configs]
            cache: dict[str, Any] = {}  # each dataset built once for the whole sweep (its groups share it)
            sweep.groups = await self.workers.run(groups.group_specs, specs)
            for g, members in enumerate(sweep.groups):
                for k in members:
                    sweep.configs[k].group = g
            sweep.status = "running"
            sweep.publish({"type": "started", "groups": len(sweep.groups), "progress": sweep.progress()})
            await self._run_groups(sweep, specs, cache)
            await first
            if not sweep.stopping:
                sweep.status = "done"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failed sweep says why; the server goes on
            if not sweep.stopping:  # (a cancelled Ray group's call fails: that is the cancel)
                log.exception("sweep %s failed", sweep.id)
                sweep.status, sweep.error = "failed", f"{type(exc).__name__}: {exc}"
        sweep.finished = time.time()
        await self._write(sweep)
        sweep.publish({"type": "done", "status": sweep.status, "error": sweep.error, "progress": sweep.progress()})

    async def _run_groups(self, sweep: Sweep, specs: list[ExperimentSpec], cache: dict[str, Any]) -> None:
        """The groups in order, as many at once as the backend trains side by side (in this process one: its
        lanes already fill the worker threads; on Ray one per CPU of the cluster). The first group to fail
        stops the others after their call in flight, and its error is the sweep's."""
        side = asyncio.Semaphore(await self.backend.parallel_groups())
        failed: list[BaseException] = []
        written = asyncio.Lock()

        async def one(g: int, members: list[int]) -> None:
            async with side:
                if sweep.stopping:
                    return
                sweep.started_groups += 1
                try:
                    await self._run_group(sweep, g, members, specs, cache)
                except Exception as exc:
                    sweep.running.pop(g, None)
                    if not failed:
                        failed.append(exc)
                    sweep.stopping = True  # the other groups end after their call in flight
                    for group in list(sweep.running.values()):
                        with contextlib.suppress(Exception):
                            await self.backend.cancel(group)
                    return
                sweep.groups_done += 1
                if sweep.groups_done < len(sweep.groups):
                    async with written:
                        await self._write(sweep)  # the results so far outlive a crash

        await asyncio.gather(*(one(g, members) for g, members in enumerate(sweep.groups)))
        if failed:
            sweep.stopping = sweep.status == "cancelled"  # a cancel's failing calls are the cancel, not errors
            raise failed[0]

    def _chunk_epochs(self, sweep: Sweep, epoch: int, seconds_per_epoch: float | None) -> int:
        """Epochs of the next call: about ``sweep_chunk_seconds`` of work (a short first call to time it),
        up to the next rung or the end, at most the records a call holds."""
        every, epochs = sweep.request.every, sweep.request.epochs
        stop = min([r for r in self._rungs(sweep) if r > epoch] + [epochs])
        if seconds_per_epoch is None:
            want = FIRST_CALL_EPOCHS
        else:
            want = int(self.settings.sweep_chunk_seconds / max(seconds_per_epoch, 1e-9))
        want = max(1, min(every * (RECORD_SLOTS - 1), want))
        return max(1, min(want, stop - epoch))

    def _rungs(self, sweep: Sweep) -> list[int]:
        stop = sweep.request.early_stop
        if stop is None:
            return []
        every = sweep.request.every
        return sorted({math.ceil(r / every) * every for r in stop.rungs(sweep.request.epochs)} - {sweep.request.epochs})

    async def _run_group(
        self, sweep: Sweep, g: int, members: list[int], specs: list[ExperimentSpec], cache: dict[str, Any]
    ) -> None:
        """Train group ``g`` to the end (or the cancel): a chunk per call, its records taken, members leaving
        on the way; the weights of every member kept at the end."""
        group = await self.backend.start(members, specs, self._build(cache))
        sweep.running[g] = group
        alive, epoch = list(members), 0
        for k in members:
            sweep.configs[k].status = "running"
        known = (groups.program_of(specs[members[0]]), len(members))
        per_epoch: float | None = self.seconds_per_epoch.get(known)  # a group like it ran before: no probe
        while alive and epoch < sweep.request.epochs and not sweep.stopping:
            n = self._chunk_epochs(sweep, epoch, per_epoch)
            chunk = await self.backend.chunk(group, n, sweep.request.every, sweep.request.epochs, True)
            if chunk.compiled:  # a call that compiled says nothing about the next ones
                sweep.compile_seconds = max(sweep.compile_seconds, chunk.seconds)
            else:
                per_epoch = chunk.seconds / n
                if len(alive) == len(members):
                    if len(self.seconds_per_epoch) > KNOWN_PROGRAMS:
                        self.seconds_per_epoch.clear()
                    self.seconds_per_epoch[known] = per_epoch
                sweep.rates[g] = len(alive) * n / max(chunk.seconds, 1e-9)
            epoch += n
            leaving = self._take(sweep, chunk)
            if epoch in self._rungs(sweep):
                leaving |= self._halve(sweep, alive, epoch)
            if leaving:
                sweep.keep_states(await self.backend.leave(group, leaving), self.settings.sweep_state_bytes)
                alive = [k for k in alive if k not in leaving]
            self._send(sweep, chunk, last=not alive or epoch >= sweep.request.epochs)
            await asyncio.sleep(0)
        try:
            sweep.keep_states(await self.backend.finish(group), self.settings.sweep_state_bytes)
        finally:
            sweep.running.pop(g, None)
        for k in alive:
            sweep.configs[k].status = "cancelled" if sweep.stopping else "done"

    def _take(self, sweep: Sweep, chunk: groups.Chunk) -> set[int]:
        """A call's records into the configurations; who stopped being finite (they leave the group)."""
        gone = set()
        for row_index, k in enumerate(chunk.members):
            c = sweep.configs[k]
            c.epochs += int(chunk.trained[row_index])
            rows = chunk.records[:, row_index]
            rows = rows[(rows[:, 0] >= 1) & (rows[:, 0] <= c.epochs)]
            c.add(rows)
            if chunk.maps is not None:
                c.map = chunk.maps[row_index].tobytes()
            if not chunk.alive[row_index]:
                c.status = "diverged"
                gone.add(k)
        return gone

    def _halve(self, sweep: Sweep, alive: list[int], epoch: int) -> set[int]:
        """Successive halving at a rung: who is not among the best 1/η of all that reached it (they stop)."""
        stop = sweep.request.early_stop
        assert stop is not None
        column = RECORD_COLUMNS.index(stop.metric)
        values: dict[int, float] = {}
        for k in alive:
            c = sweep.configs[k]
            if c.status != "running" or c.last is None or c.last[0] != epoch:
                continue
            v = c.last[column]
            values[k] = math.inf if v is None else v
        seen = sweep.rungs.setdefault(epoch, [])
        seen.extend(values.values())
        keep = max(1, math.ceil(len(seen) / stop.reduction_factor))
        cut = sorted(seen)[keep - 1]
        out = {k for k, v in values.items() if v > cut}
        for k in out:
            sweep.configs[k].status = "stopped"
        return out

    def _send(self, sweep: Sweep, chunk: groups.Chunk, last: bool) -> None:
        """The call's news to the watchers: statuses and final metrics, the maps at most once a second
        (and at the group's end)."""
        if not sweep.subscribers:
            return
        updates = []
        for row_index, k in enumerate(chunk.members):
            c = sweep.configs[k]
            rows = chunk.records[:, row_index]
            rows = rows[(rows[:, 0] >= 1) & (rows[:, 0] <= c.epochs)]  # as ``_take`` kept them
            new = [_row(row, c.spec.problem) for row in rows]
            updates.append({"index": k, "status": c.status, "epochs": c.epochs, "final": c.final, "records": new})
        message: dict[str, Any] = {"type": "progress", "progress": sweep.progress(), "configurations": updates}
        message["columns"] = list(RECORD_COLUMNS)
        if chunk.maps is not None and (last or time.monotonic() - sweep.maps_sent >= MAP_SECONDS):
            sweep.maps_sent = time.monotonic()
            message["maps"] = self.maps(sweep, chunk.members)
        sweep.publish(message)

    @staticmethod
    def maps(sweep: Sweep, members: list[int] | None = None) -> dict[str, Any]:
        """Small decision maps (base64 bytes, row-major, y from the top as the page's maps) by configuration."""
        chosen = range(len(sweep.configs)) if members is None else members
        pictures = {str(k): base64.b64encode(m).decode() for k in chosen if (m := sweep.configs[k].map) is not None}
        base = sweep.request.base
        kind = "classes" if base.problem == "classification" and base.n_classes > 2 else "values"
        return {"resolution": NEURON_RESOLUTION, "kind": kind, "items": pictures}

    # ------------------------------------------------------------------ watching and storing

    def subscribe(self, sweep: Sweep) -> asyncio.Queue[dict[str, Any]]:
        box: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        sweep.subscribers.add(box)
        sweep.maps_sent = 0.0  # a new watcher gets the maps with the next call
        return box

    @staticmethod
    def unsubscribe(sweep: Sweep, box: asyncio.Queue[dict[str, Any]]) -> None:
        sweep.subscribers.discard(box)

    async def _write(self, sweep: Sweep) -> None:
        """The sweep's answer into the store; made into JSON text in a thread (a big sweep's is large), so
        the event loop goes on answering meanwhile."""
        if self.store is None:
            return
        try:
            text = await anyio.to_thread.run_sync(lambda: json.dumps(sweep.public(), allow_nan=False))
            size = (len(sweep.configs), sweep.request.epochs)
            await self.store.put_sweep(sweep.id, sweep.token, sweep.request.name, sweep.status, size, text)
        except StoreError as exc:  # the sweep goes on; its answer is still served from memory
            log.warning("cannot write sweep %s: %s", sweep.id, exc)

    async def start(self) -> None:
        """Sweeps a previous run left unfinished are marked interrupted (their results so far are kept)."""
        if self.store is not None:
            with contextlib.suppress(StoreError):
                await self.store.interrupt_sweeps()
