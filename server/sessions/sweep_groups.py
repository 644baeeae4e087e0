"""A sweep's groups: the configurations that share one compiled training program (the engine, its static
config and the shapes of its data), and their training in worker threads — stacked, vmapped
(``server.ml.sweep``), a chunk of epochs per compiled call, shrunk when configurations leave.

Everything here runs in a worker thread and touches only its own ``GroupRun``; ``server.sessions.sweeps``
keeps the sweep's records and decides who stays.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import jax
import jax.numpy as jnp
import numpy as np

from server.config import Settings
from server.engines import Engine, engine_for
from server.ml import sweep as population
from server.ml.train import RECORD_SLOTS, TrainState
from server.spec import ExperimentSpec


@dataclass
class Prepared:
    """Each configuration's engine, static config and data, built once (data shared by equal data keys)."""

    engine: Engine
    cfg: Any
    data: Any


def prepare(specs: list[ExperimentSpec], build: Any) -> list[Prepared]:
    """Every configuration's engine, config and data (``build(engine, spec)`` builds or reuses the data)."""
    out = []
    for spec in specs:
        engine = engine_for(spec)
        out.append(Prepared(engine, engine.config_for(spec), build(engine, spec)))
    return out


def program_of(spec: ExperimentSpec) -> Hashable:
    """What a configuration's training program depends on (the engine, its static config and the shapes of
    its data), known from the spec without building its data: the engine's data key less what only changes
    the values (the data's seed and noise)."""
    engine = engine_for(spec)
    shapes = spec.model_copy(update={"dataset": spec.dataset.model_copy(update={"seed": 0, "noise": 0.0})})
    return (engine.name, engine.config_for(spec), repr(engine.data_key(shapes)))


def group_specs(specs: list[ExperimentSpec]) -> list[list[int]]:
    """Configurations sharing a training program, in order of first appearance."""
    groups: dict[Hashable, list[int]] = {}
    for k, spec in enumerate(specs):
        groups.setdefault(program_of(spec), []).append(k)
    return list(groups.values())


@dataclass
class Chunk:
    """What one compiled call did, on the host: records (RECORD_SLOTS, P, 5) with epochs counted from the
    group's start, who is still finite, epochs each trained, each one's small decision map (or None)."""

    members: list[int]
    records: np.ndarray
    alive: np.ndarray
    trained: np.ndarray
    maps: np.ndarray | None
    seconds: float
    compiled: bool = False  # whether the call compiled its program first (its time is no guide)


@dataclass
class GroupRun:
    """A group being trained: its members (configuration indices, in the rows' order) and their stacked
    states, hyperparameters and data."""

    engine: Engine
    cfg: Any
    members: list[int]
    specs: list[ExperimentSpec]
    data: list[Any]  # each member's data (the same object for members of one dataset)
    states: TrainState
    hyper: Any
    alive: jax.Array
    shared: bool
    block: int
    epoch: int = 0  # epochs every member has been through (a member that stopped being finite froze earlier)
    group_data: Any = None

    @property
    def padded(self) -> bool:
        return bool(self.data[0].padded)


def _shared_stack(specs: list[ExperimentSpec], key: Callable[[ExperimentSpec], Any], make: Callable[..., Any]) -> Any:
    """``make(spec)`` of every configuration, stacked — computed once per distinct ``key(spec)`` and
    gathered (a grid of 16 seeds × 16 rates makes 16 states, not 256)."""
    made: dict[Any, int] = {}
    firsts: list[ExperimentSpec] = []
    index = []
    for spec in specs:
        k = key(spec)
        if k not in made:
            made[k] = len(firsts)
            firsts.append(spec)
        index.append(made[k])
    return population.take(population.stack([make(spec) for spec in firsts]), np.asarray(index))


def _init_states(engine: Engine, cfg: Any, specs: list[ExperimentSpec]) -> TrainState:
    """First states, one per configuration (deterministic: configurations of one seed and initialisation
    share the computation)."""
    states: TrainState = _shared_stack(
        specs, lambda s: (s.seed, s.network.init), lambda s: engine.init_train_state(s, cfg)
    )
    return states


def _hypers(engine: Engine, specs: list[ExperimentSpec]) -> Any:
    """The configurations' traced hyperparameters, stacked (each distinct training made once)."""
    return _shared_stack(
        specs, lambda s: s.model_dump_json(include={"training", "network"}), lambda s: engine.hyper_for(s)
    )


def start_group(
    members: list[int], specs: Sequence[ExperimentSpec] | Mapping[int, ExperimentSpec], prepared: Any
) -> GroupRun:
    """A group at epoch 0: states, hyperparameters and (unless every member has the same) data stacked.
    ``prepared[k]``: configuration k's ``Prepared``."""
    first = prepared[members[0]]
    engine, cfg = first.engine, first.cfg
    data = [prepared[k].data for k in members]
    mine = [specs[k] for k in members]
    shared = all(d is data[0] for d in data)
    parts = [engine.sweep_data(cfg, d) for d in ([data[0]] if shared else data)]
    group_data = parts[0][0] if shared else population.stack([p[0] for p in parts])
    run = GroupRun(
        engine=engine,
        cfg=cfg,
        members=list(members),
        specs=mine,
        data=data,
        states=_init_states(engine, cfg, mine),
        hyper=_hypers(engine, mine),
        alive=jnp.ones((len(members),), bool),
        shared=shared,
        block=parts[0][1],
        group_data=group_data,
    )
    return run


def _programs() -> int:
    """How many programs the population training has compiled in this process (a call that adds one
    compiled first)."""
    size: int = getattr(population.train_population, "_cache_size", lambda: 0)()
    return size


def train_chunk(run: GroupRun, epochs: int, every: int, end: int, maps: bool) -> Chunk:
    """Train the group ``epochs`` epochs in one compiled call, recording after each multiple of ``every``
    and after epoch ``end`` (at most RECORD_SLOTS records)."""
    assert epochs // every + 1 <= RECORD_SLOTS
    t0 = time.perf_counter()
    programs = _programs()
    out = population.train_population(
        run.cfg,
        run.states,
        run.alive,
        run.group_data,
        run.hyper,
        np.int32(epochs),
        np.int32(run.epoch),
        np.int32(every),
        np.int32(end),
        run.padded,
        run.shared,
        run.block,
    )
    n = len(run.members)  # the rows past them are the bucket's padding (``keep``)
    records, alive, trained = jax.device_get((out.records[:, :n], out.alive[:n], out.trained[:n]))
    records = np.asarray(records, np.float64)
    records[:, :, 0] = np.where(records[:, :, 0] >= 1, records[:, :, 0] + run.epoch, -1)
    run.states, run.alive = out.states, out.alive
    run.epoch += epochs
    pictures = None
    if maps:
        members = out.states if n == out.alive.shape[0] else jax.tree_util.tree_map(lambda a: a[:n], out.states)
        pictures = run.engine.sweep_maps(run.cfg, members, run.data, run.shared)
    compiled = _programs() != programs
    seconds = time.perf_counter() - t0
    return Chunk(list(run.members), records, np.asarray(alive), np.asarray(trained), pictures, seconds, compiled)


def leave(run: GroupRun, leaving: set[int]) -> dict[int, TrainState]:
    """The states of the members that leave, then the group without them."""
    states = states_of(run, [k for k in run.members if k in leaving])
    keep(run, [k for k in run.members if k not in leaving])
    return states


def part(run: GroupRun, members: list[int]) -> GroupRun:
    """A new group of some of ``run``'s members (a lane), ``run`` left as it was."""
    lane = GroupRun(**{f: getattr(run, f) for f in run.__dataclass_fields__})
    keep(lane, members, pad=False)
    return lane


def bucket(n: int) -> int:
    """The batch a group of ``n`` members trains as: ``n`` rounded up to a quarter of its power of two (at most
    a quarter more rows, four sizes per doubling), so members leaving one or a few at a time (diverged, or cut
    at a rung) reuse the programs of a few sizes instead of compiling one for every count."""
    step = 1 << max(0, n.bit_length() - 3)
    return -(-n // step) * step


def keep(run: GroupRun, members: list[int], pad: bool = True) -> None:
    """Shrink the group to ``members`` (a subset, in its order): the others leave the vmapped batch. The batch
    keeps its size while the members still need that bucket, else shrinks to theirs: the rows past the
    members are copies of the first, never trained (not alive), and cost a block only while in one. A lane cut
    from a whole group (``pad`` off) is its members exactly."""
    rows = np.asarray([run.members.index(k) for k in members], np.int32)
    size = min(int(run.alive.shape[0]), bucket(len(rows))) if pad and len(rows) else len(rows)
    physical = np.concatenate([rows, np.full(size - len(rows), rows[0] if len(rows) else 0, np.int32)])
    run.states = population.take(run.states, physical)
    run.hyper = population.take(run.hyper, physical)
    run.alive = population.take(run.alive, physical).at[len(rows) :].set(False)
    if not run.shared:
        run.group_data = population.take(run.group_data, physical)
    run.data = [run.data[int(i)] for i in rows]
    run.specs = [run.specs[int(i)] for i in rows]
    run.members = list(members)


def states_of(run: GroupRun, members: list[int] | None = None) -> dict[int, TrainState]:
    """Members' training states (every member's by default), by configuration index, on the host (numpy:
    one transfer of the stack; a session opened from one puts it back on the device)."""
    host = jax.device_get(run.states)
    chosen = run.members if members is None else members
    return {k: population.unstack(host, run.members.index(k)) for k in chosen}


class Backend(Protocol):
    """Where a sweep's groups train: in this process's worker threads (``LocalGroups``), or on a Ray
    cluster (``server.sessions.sweep_ray``). The sweep (``server.sessions.sweeps``) drives a group through
    it — start, a chunk at a time, members leaving, finish — and keeps every record and decision itself."""

    async def parallel_groups(self) -> int: ...  # groups it trains side by side
    async def start(self, members: list[int], specs: list[ExperimentSpec], build: Any) -> Any: ...
    async def chunk(self, group: Any, epochs: int, every: int, end: int, maps: bool) -> Chunk: ...
    async def leave(self, group: Any, leaving: set[int]) -> dict[int, TrainState]: ...
    async def finish(self, group: Any) -> dict[int, TrainState]: ...
    async def cancel(self, group: Any) -> None: ...
    async def close(self) -> None: ...


@dataclass
class LocalGroup:
    """A group in this process: its members in lanes, each lane a ``GroupRun`` of its own that can train in
    a worker thread beside the others."""

    lanes: list[GroupRun]


def lanes_of(members: list[int], block: int, threads: int) -> list[list[int]]:
    """Members split into at most ``threads`` lanes of whole blocks (one lane when they fit one block)."""
    n = min(threads, max(1, -(-len(members) // max(block, 1))))
    size = -(-len(members) // n)
    return [members[i : i + size] for i in range(0, len(members), size)]


def merged(chunks: list[Chunk]) -> Chunk:
    """One chunk of the lanes' chunks (the same epochs, the members side by side)."""
    if len(chunks) == 1:
        return chunks[0]
    pictures = [c.maps for c in chunks]
    return Chunk(
        members=[k for c in chunks for k in c.members],
        records=np.concatenate([c.records for c in chunks], axis=1),
        alive=np.concatenate([c.alive for c in chunks]),
        trained=np.concatenate([c.trained for c in chunks]),
        maps=None if any(p is None for p in pictures) else np.concatenate(pictures),  # type: ignore[arg-type]
        seconds=max(c.seconds for c in chunks),
        compiled=any(c.compiled for c in chunks),
    )


class LocalGroups:
    """Groups trained in this process, in worker threads. While interactive sessions are at work (one is
    playing, or a worker thread is busy with anything but this sweep) a sweep's calls hold at most
    ``sweep_worker_share`` of the worker threads and run its lanes one after another; on an otherwise idle
    server its lanes train side by side, one per worker thread. Either way it yields between calls."""

    def __init__(self, settings: Settings, run: Callable[..., Any], busy: Callable[[], bool]):
        self.run_in_thread, self.busy = run, busy
        self.threads = max(1, settings.worker_threads)
        self.limiter = anyio.CapacityLimiter(max(1, int(settings.worker_threads * settings.sweep_worker_share)))
        self.in_flight = 0  # this backend's calls running now (they are not "other work")

    async def compute(self, fn: Callable[..., Any], *args: Any) -> Any:
        async with self.limiter:
            return await self._run(fn, *args)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.in_flight += 1
        try:
            return await self.run_in_thread(fn, *args)
        finally:
            self.in_flight -= 1

    async def parallel_groups(self) -> int:
        return 1  # a group's lanes already take every worker thread it may have

    async def start(self, members: list[int], specs: list[ExperimentSpec], build: Any) -> LocalGroup:
        def begin() -> LocalGroup:
            chosen = [specs[k] for k in members]
            prepared = dict(zip(members, prepare(chosen, build), strict=True))
            whole = start_group(members, specs, prepared)
            lanes = lanes_of(members, whole.block, self.threads)
            if len(lanes) == 1:
                return LocalGroup([whole])
            return LocalGroup([part(whole, lane) for lane in lanes])

        group: LocalGroup = await self.compute(begin)
        return group

    async def chunk(self, group: LocalGroup, epochs: int, every: int, end: int, maps: bool) -> Chunk:
        lanes = [lane for lane in group.lanes if lane.members]
        args = (epochs, every, end, maps)
        if len(lanes) > 1 and not self.busy():
            chunks = await asyncio.gather(*(self._run(train_chunk, lane, *args) for lane in lanes))
        else:
            chunks = [await self.compute(train_chunk, lane, *args) for lane in lanes]
        return merged(list(chunks))

    async def leave(self, group: LocalGroup, leaving: set[int]) -> dict[int, TrainState]:
        out: dict[int, TrainState] = {}
        for lane in group.lanes:
            if leaving & set(lane.members):
                out |= await self.compute(leave, lane, leaving)
        group.lanes = [lane for lane in group.lanes if lane.members]
        return out

    async def finish(self, group: LocalGroup) -> dict[int, TrainState]:
        out: dict[int, TrainState] = {}
        for lane in group.lanes:
            out |= await self.compute(states_of, lane)
        return out

    async def cancel(self, group: LocalGroup) -> None:
        return None  # the running call ends by itself (about sweep_chunk_seconds); nothing else holds compute

    async def close(self) -> None:
        return None
