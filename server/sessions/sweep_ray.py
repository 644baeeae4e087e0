"""Sweep groups on a Ray cluster (``NEUROGLASS_SWEEP_BACKEND=ray``): one Ray actor per group, holding the
group's ``GroupRun``. The actor builds the group's data and first states itself from the specs (sent as
JSON; data never travel), trains a chunk per call and hands back the ``Chunk`` and, when configurations
leave or the group ends, their states as numpy pytrees. After a cancel the call in flight is the group's
last (its weights come back, as in this process) and the actor is killed — at once if it does not answer.

Ray is an optional extra (``pip install -e '.[ray]'``); ``server.sessions.sweeps.backend_for`` imports this
module only when the ray backend is asked for. The cluster's workers run this module's ``GroupActor``, so
they need the project and its dependencies installed (on this machine the project is importable already).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from server.config import Settings, enable_compile_cache
from server.ml.train import TrainState
from server.sessions import sweep_groups as groups
from server.spec import ExperimentSpec

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]  # the project: on the local workers' path
READY_SECONDS = 300.0  # a group's actor must be placed and started by then (else: no free CPU on the cluster)
KILL_SECONDS = 2.5  # a cancelled group's call in flight may return this long (its weights kept), then the kill
NAMESPACE = "neuroglass"


class GroupActor:
    """The Ray actor of one group (run on a Ray worker): its ``GroupRun`` and the data it was built from."""

    def __init__(self, options: dict[str, Any]):
        self.data_dir = Path(options["data_dir"])
        self.allow_download = bool(options["allow_download"])
        if options.get("compile_cache_dir"):
            with contextlib.suppress(Exception):  # a cache the worker cannot use only costs compile time
                enable_compile_cache(Path(options["compile_cache_dir"]))
        self.run: groups.GroupRun | None = None

    def ready(self) -> int:
        """The worker's process id, once the actor is up (the host waits for this before starting it)."""
        return os.getpid()

    def start(self, members: list[int], specs: dict[int, dict[str, Any]]) -> None:
        """Build the members' data (shared by equal data keys, as in this process) and their first states."""
        chosen = {k: ExperimentSpec.model_validate(specs[k]) for k in members}
        cache: dict[str, Any] = {}

        def build(engine: Any, spec: ExperimentSpec) -> Any:
            key = repr((engine.name, engine.data_key(spec)))
            if key not in cache:
                cache[key] = engine.build_data(spec, self.data_dir, self.allow_download)
            return cache[key]

        prepared = dict(zip(members, groups.prepare([chosen[k] for k in members], build), strict=True))
        # start_group reads specs[k] for the members only: their mapping serves for the whole list
        self.run = groups.start_group(members, chosen, prepared)

    def chunk(self, epochs: int, every: int, end: int, maps: bool) -> groups.Chunk:
        return groups.train_chunk(self.group, epochs, every, end, maps)

    def leave(self, leaving: list[int]) -> dict[int, TrainState]:
        return host_states(groups.leave(self.group, set(leaving)))

    def finish(self) -> dict[int, TrainState]:
        return host_states(groups.states_of(self.group))

    @property
    def group(self) -> groups.GroupRun:
        assert self.run is not None, "the group was not started"
        return self.run


def host_states(states: dict[int, TrainState]) -> dict[int, TrainState]:
    """States as numpy pytrees (what travels back from a worker)."""
    out: dict[int, TrainState] = jax.device_get(states)
    return out


def device_states(states: dict[int, TrainState]) -> dict[int, TrainState]:
    """States that came back from a worker, as jax arrays again (as a local group's are)."""
    return {k: jax.tree.map(jnp.asarray, s) for k, s in states.items()}


@dataclass
class RayGroup:
    """The host's handle on a group's actor."""

    actor: Any
    members: list[int]
    name: str
    cancelled: bool = False
    kill: asyncio.TimerHandle | None = None  # the kill a cancel scheduled

    def describe(self) -> str:
        shown = ", ".join(map(str, self.members[:8])) + (", …" if len(self.members) > 8 else "")
        return f"the Ray actor {self.name} training configurations {shown}"


class RayGroups:
    """The sweep backend (``sweep_groups.Backend``) on Ray: each group in its own actor. Connects on first
    use to ``NEUROGLASS_RAY_ADDRESS`` (``ray://host:10001``, ``auto``), or, without one, to a Ray this process
    starts (and shuts down at close). Every call is awaited as an ObjectRef: the event loop never blocks."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.live: dict[str, RayGroup] = {}  # actors started and not yet killed, by name
        self.started_ray = False  # ray.init was ours: ray.shutdown at close
        self.actor_class: Any = None
        self.lock = asyncio.Lock()

    def _connect(self) -> None:
        if not ray.is_initialized():
            address = self.settings.ray_address or None
            kwargs: dict[str, Any] = {"ignore_reinit_error": True, "namespace": NAMESPACE}
            if address is None:  # a Ray of our own on this machine: its workers import the project from here
                path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
                kwargs |= {"include_dashboard": False, "runtime_env": {"env_vars": {"PYTHONPATH": path}}}
            ray.init(address=address, **kwargs)
            self.started_ray = True
        self.actor_class = ray.remote(GroupActor)

    async def _ready(self) -> None:
        async with self.lock:
            if self.actor_class is None:
                try:
                    await asyncio.to_thread(self._connect)  # connecting (or starting Ray) takes seconds
                except Exception as exc:
                    where = f"the Ray cluster at {self.settings.ray_address}" if self.settings.ray_address else "Ray"
                    raise RuntimeError(f"cannot reach {where}: {type(exc).__name__}: {exc}") from exc

    def _options(self) -> dict[str, Any]:
        cache = self.settings.compile_cache_dir
        return {
            "data_dir": str(Path(self.settings.data_dir).resolve()),
            "allow_download": self.settings.allow_download,
            "compile_cache_dir": str(cache.resolve()) if cache is not None else None,
        }

    async def _call(self, group: RayGroup, method: str, *args: Any) -> Any:
        """``group.actor.method(*args)`` awaited; a dead actor is an error that says so (or, when we killed
        it, the cancel it was), an error inside it is that error."""
        try:
            return await getattr(group.actor, method).remote(*args)
        except RayActorError as exc:
            if group.cancelled:
                raise asyncio.CancelledError from exc
            self._forget(group)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RuntimeError(f"{group.describe()} died: {reason}") from exc
        except RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from exc
            raise

    def _forget(self, group: RayGroup) -> None:
        """Kill the group's actor (if it is still alive), its resources freed."""
        if group.kill is not None:
            group.kill.cancel()
        self.live.pop(group.name, None)
        with contextlib.suppress(Exception):
            ray.kill(group.actor, no_restart=True)

    async def parallel_groups(self) -> int:
        """Groups at once: one actor (one CPU) each, as many as the cluster has CPUs (or
        ``NEUROGLASS_SWEEP_RAY_GROUPS``): more would wait for a CPU, their actors not ready."""
        await self._ready()
        if self.settings.sweep_ray_groups:
            return self.settings.sweep_ray_groups
        resources: dict[str, float] = await asyncio.to_thread(ray.cluster_resources)
        return max(1, int(resources.get("CPU", 1)))

    async def start(self, members: list[int], specs: list[ExperimentSpec], build: Any) -> RayGroup:
        """A new actor for the group, started from the members' specs (``build`` is this process's data
        builder: the actor builds its own)."""
        await self._ready()
        name = f"neuroglass-group-{uuid.uuid4().hex[:12]}"
        actor = self.actor_class.options(name=name, num_cpus=1, max_restarts=0).remote(self._options())
        group = RayGroup(actor, list(members), name)
        self.live[name] = group
        try:
            try:
                await asyncio.wait_for(self._call(group, "ready"), READY_SECONDS)
            except (TimeoutError, GetTimeoutError) as exc:
                raise RuntimeError(
                    f"no Ray worker took {group.describe()} within {READY_SECONDS:.0f} s: "
                    "does the cluster have a free CPU?"
                ) from exc
            chosen = {k: specs[k].model_dump(mode="json") for k in members}
            await self._call(group, "start", list(members), chosen)
        except BaseException:  # failed or cancelled while starting: the actor goes
            self._forget(group)
            raise
        return group

    async def chunk(self, group: RayGroup, epochs: int, every: int, end: int, maps: bool) -> groups.Chunk:
        out: groups.Chunk = await self._call(group, "chunk", epochs, every, end, maps)
        return out

    async def leave(self, group: RayGroup, leaving: set[int]) -> dict[int, TrainState]:
        states = await self._call(group, "leave", sorted(leaving))
        group.members = [k for k in group.members if k not in leaving]
        return device_states(states)

    async def finish(self, group: RayGroup) -> dict[int, TrainState]:
        """The remaining members' states; the actor is done and goes (its CPU is free for the next group)."""
        states = await self._call(group, "finish")
        self._forget(group)
        return device_states(states)

    async def cancel(self, group: RayGroup) -> None:
        """The call in flight is the group's last: when it returns the sweep takes its records and finishes
        the group (its weights kept, as in this process) and the actor goes. An actor that has not answered
        within KILL_SECONDS is killed then (the sweep's call ends as cancelled, without those weights)."""
        group.cancelled = True
        if group.kill is None and group.name in self.live:
            group.kill = asyncio.get_running_loop().call_later(KILL_SECONDS, self._forget, group)

    async def close(self) -> None:
        for group in list(self.live.values()):
            group.cancelled = True
            self._forget(group)
        if self.started_ray:
            self.started_ray = False
            self.actor_class = None
            await asyncio.to_thread(ray.shutdown)
