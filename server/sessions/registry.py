"""The live sessions by id, with the server's limits: creating, finding, removing and reaping them."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any

from server.config import Settings
from server.engines import Engine, engine_for
from server.engines.views import TRAJECTORY_POINTS
from server.errors import Invalid, NotFound, TooMany
from server.ml import images
from server.ml.train import TrainState
from server.sessions import broadcast
from server.sessions.recording import Series, checkpoint_limit, record
from server.sessions.runner import Runner
from server.sessions.saved import Saved
from server.sessions.session import Session
from server.spec import ExperimentSpec

RECENT_DATA = 8  # datasets kept for the next session that asks for the same

# The address of the client whose request is being answered (set by the app for every request): sessions
# count against it. Empty outside a request (restored sessions, tests calling the manager directly).
CLIENT: ContextVar[str] = ContextVar("client", default="")


class Registry:
    """Every live session, and the limits on what one may hold."""

    def __init__(self, settings: Settings, runner: Runner):
        self.settings, self.runner = settings, runner
        self.sessions: dict[str, Session] = {}
        # Data are never changed in place (an edit builds new ones), so sessions of the same dataset share
        # them: opening a saved CNN or a class of forks does not generate the same images again.
        self.recent_data: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self.pinned: set[str] = set()  # sessions neither evicted nor reaped while idle (an open class's presenter)

    def check_limits(self, spec: ExperimentSpec) -> None:
        engine_for(spec).check_limits(spec, self.settings)

    def build_data(self, engine: Engine, spec: ExperimentSpec) -> Any:
        """The spec's data; image files that are missing and cannot be downloaded, or are not valid IDX,
        are a 422 at dataset.name saying what to do."""
        key = (engine.name, repr(engine.data_key(spec)))  # pydantic models and lists: compared by their repr
        if key in self.recent_data:
            self.recent_data.move_to_end(key)
            return self.recent_data[key]
        try:
            data = engine.build_data(spec, self.settings.data_dir, self.settings.allow_download)
        except (OSError, images.IdxError) as exc:
            raise Invalid(f"cannot load '{spec.dataset.name}': {exc}", ("dataset", "name")) from None
        self.recent_data[key] = data
        while len(self.recent_data) > RECENT_DATA:
            self.recent_data.popitem(last=False)
        return data

    def _new(self, spec: ExperimentSpec) -> Session:
        """A session at epoch 0 (worker thread: building data and weights computes)."""
        engine = engine_for(spec)
        cfg = engine.config_for(spec)
        s = self._session(spec, cfg, engine.init_train_state(spec, cfg))
        record(s, force=True)
        return s

    def _session(
        self,
        spec: ExperimentSpec,
        cfg: Any,
        state: TrainState,
        id_: str = "",
        token: str = "",
        metrics: dict[str, float | None] | None = None,
    ) -> Session:
        engine = engine_for(spec)
        data = self.build_data(engine, spec)
        limit = self.settings.history_limit
        s = Session(
            id=id_ or secrets.token_urlsafe(9),
            token=token or secrets.token_urlsafe(24),
            spec=spec,
            cfg=cfg,
            data=data,
            state=state,
            history=Series(limit, key=lambda r: r["epoch"]),
            trajectory=Series(TRAJECTORY_POINTS, key=lambda p: p[0]),
            sharpness=Series(limit, key=lambda p: p[0]),
            checkpoints=Series(self.settings.max_checkpoints, key=lambda c: c.epoch),
        )
        self.fit_checkpoints(s)
        s.metrics = dict(metrics) if metrics is not None else engine.metrics(cfg, state, data, spec.problem)
        return s

    def fit_checkpoints(self, s: Session) -> None:
        """Cap a session's checkpoints by the settings and its network's size (again when its shapes change)."""
        s.checkpoints.resize(checkpoint_limit(s, self.settings.max_checkpoints, self.settings.checkpoint_bytes))

    def _resumed(self, saved: Saved, id_: str, token: str) -> Session:
        """A session continuing from a saved state (worker thread): its weights, optimizer and batch-norm
        state, random key, epoch, step and history, paused."""
        cfg = engine_for(saved.spec).config_for(saved.spec)
        s = self._session(saved.spec, cfg, saved.state, id_, token, saved.metrics)
        s.epoch, s.step, s.init_params = saved.epoch, saved.step, saved.init_params
        s.history.items, s.history.stride = list(saved.history)[-self.settings.history_limit :], saved.history_stride
        record(s, force=True, replace=True)  # the moment it continues from: a checkpoint, its history record
        return s

    async def _admit(self, spec: ExperimentSpec) -> None:
        """Room for one more session of this client: within its share and the server's total, the oldest
        idle session (of this client, or anyone's for the total) evicted to make it; 429 when none is idle."""
        self.check_limits(spec)
        client, limit = CLIENT.get(), self.settings.max_sessions_per_client
        mine = [s for s in self.sessions.values() if client and s.client == client]
        if len(mine) >= limit and not await self._evict(mine):
            raise TooMany(f"one client holds at most {limit} sessions on this server and all of yours are playing")
        if len(self.sessions) >= self.settings.max_sessions and not await self._evict(list(self.sessions.values())):
            raise TooMany(f"this server holds at most {self.settings.max_sessions} sessions, all playing; try later")

    async def _evict(self, among: list[Session]) -> bool:
        """Remove the oldest idle session of ``among`` (not training; unwatched ones first), telling its
        watchers why. Whether there was one."""
        idle = [s for s in among if s.status != "running" and s.id not in self.pinned]
        if not idle:
            return False
        oldest = min(idle, key=lambda s: (bool(s.subscribers), s.touched))
        reason = "this session was closed to make room for a new one (it was the oldest idle one on the server)"
        broadcast.notify(oldest, {"type": "closed", "reason": reason})
        await self.delete(oldest)
        return True

    def _register(self, s: Session) -> Session:
        s.client = CLIENT.get()
        self.sessions[s.id] = s
        self.runner.warm(s)
        return s

    async def create(self, spec: ExperimentSpec) -> Session:
        await self._admit(spec)
        return self._register(await self.runner.workers.run(self._new, spec))

    async def resume(self, saved: Saved, id_: str = "", token: str = "") -> Session:
        """A live session from a saved state: a new one, or (restoring after a restart) the same id and token."""
        await self._admit(saved.spec)
        return self._register(await self.runner.workers.run(self._resumed, saved, id_, token))

    def get(self, session_id: str) -> Session:
        s = self.sessions.get(session_id)
        if s is None:
            raise NotFound(f"no session {session_id!r} (it may have been deleted or expired)")
        s.touched = time.monotonic()
        return s

    async def delete(self, s: Session) -> None:
        s.status = "paused"
        await self.runner.stop(s)
        self.sessions.pop(s.id, None)

    async def close(self) -> None:
        for s in list(self.sessions.values()):
            await self.delete(s)
            await self.runner.warmed(s)  # no compiler thread left running at shutdown

    async def reap_idle(self) -> int:
        """Remove sessions nobody has touched or watched for the idle limit. Returns how many."""
        limit = self.settings.session_idle_seconds
        now = time.monotonic()
        stale = [
            s
            for s in self.sessions.values()
            if not s.subscribers and now - s.touched > limit and s.id not in self.pinned
        ]
        for s in stale:
            await self.delete(s)
        return len(stale)
