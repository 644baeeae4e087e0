"""A live session's state, and the immutable snapshot of it that frames and views are computed from."""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from server.engines import Engine, engine_for
from server.ml.train import Hyper, TrainState
from server.sessions.broadcast import Mailbox
from server.sessions.recording import Checkpoint, Series
from server.spec import ExperimentSpec


@dataclass
class Session:
    """One experiment being trained. Mutated only by the sessions package, under ``lock``."""

    id: str
    token: str
    spec: ExperimentSpec
    cfg: Any  # the engine's static config (train.TrainConfig, cnn.CnnTrainConfig)
    data: Any  # the engine's data (mlp.Data, cnn.ImageData)
    state: TrainState
    history: Series[dict[str, Any]]  # metrics records
    trajectory: Series[tuple[int, np.ndarray]]  # (epoch, flat weights) as training went
    sharpness: Series[tuple[int, float | None]]  # (epoch, top Hessian eigenvalue), every value computed
    checkpoints: Series[Checkpoint]  # moments to go back to (time travel), thinned like the history
    status: str = "paused"  # paused | running | diverged
    epoch: int = 0
    step: int = 0  # optimizer updates so far
    spec_version: int = 0
    metrics: dict[str, float | None] = field(default_factory=dict)
    chunks: int = 0  # recording ticks: the series keep every stride-th chunk
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    task: asyncio.Task[None] | None = None
    subscribers: set[Mailbox] = field(default_factory=set)
    touched: float = field(default_factory=time.monotonic)
    warm: asyncio.Task[None] | None = None  # compiling the training program in the background (runner.warm)
    revision: int = 0  # bumped by every edit from outside the loop (reset, patch, weights): older frames are stale
    hyper_cache: tuple[Any, Any] = (None, None)  # (spec, its traced hyperparameters): built once per spec
    init_params: Any = None  # the weights training started from (reset, or the last change of shapes)
    origin: str | None = None  # the saved experiment it was opened from (its saves are forks of it)
    stopped: str | None = None  # why the last run stopped by itself (a stop condition), in words
    pause_unwatched: bool = True  # played from a page or socket: pauses when nobody has watched for a while
    client: str = ""  # the address of the client that made it (its sessions count against it)
    unwatched: asyncio.Task[None] | None = None  # the pause waiting for the grace period to pass

    @property
    def program_key(self) -> tuple[Any, ...]:
        """What the compiled training code depends on: one program per distinct value."""
        return (self.engine.name, self.cfg, self.data.program_key)

    @property
    def learning_rate_now(self) -> float:
        """The rate of the next epoch: the base rate with the schedule applied."""
        return float(self.cfg.schedule.rate(self.spec.training.learning_rate, self.epoch))

    @property
    def engine(self) -> Engine:
        return engine_for(self.spec)

    @property
    def hyper(self) -> Hyper:
        spec, h = self.hyper_cache
        if spec is not self.spec:
            h = self.engine.hyper_for(self.spec)
            self.hyper_cache = (self.spec, h)
        hyper: Hyper = h
        return hyper

    def check_token(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.token.encode())


@dataclass(frozen=True)
class Snapshot:
    """What a frame or a view shows, taken between chunks: computed while the next chunk trains."""

    spec: ExperimentSpec
    cfg: Any
    data: Any
    state: TrainState
    hyper: Hyper
    engine: Engine
    epoch: int
    step: int
    status: str
    spec_version: int
    revision: int

    @classmethod
    def of(cls, s: Session) -> Snapshot:
        return cls(
            s.spec, s.cfg, s.data, s.state, s.hyper, s.engine, s.epoch, s.step, s.status, s.spec_version, s.revision
        )

    def frame_arrays(self) -> dict[str, Any]:
        return self.engine.frame_arrays(self.cfg, self.state, self.data, self.hyper)
