"""Series recorded while a session trains — the history of metrics, the trajectory of weights, the
sharpness track and the checkpoints — each thinned evenly so memory stays bounded on any run."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import jax
import numpy as np

from server.engines.base import sanitize
from server.engines.views import MAX_TRAJECTORY_PARAMS
from server.ml.models import count_params
from server.ml.probes import flat
from server.ml.train import RECORD_COLUMNS

T = TypeVar("T")


class Series(Generic[T]):
    """At most ``limit`` items spread evenly over the whole run: when it overflows, every other item goes and
    from then on only every ``stride``-th offer (by the caller's tick) is kept.

    ``key`` names an item's moment (its epoch): an item ``replace``-d in at the same moment as the last one
    takes its place instead of following it.
    """

    def __init__(self, limit: int, key: Callable[[T], Hashable]):
        self.limit, self.key = limit, key
        self.items: list[T] = []
        self.stride = 1

    def __len__(self) -> int:
        return len(self.items)

    @property
    def last(self) -> T | None:
        return self.items[-1] if self.items else None

    def due(self, tick: int) -> bool:
        return tick % self.stride == 0

    def add(self, item: T, *, tick: int = 0, force: bool = False, replace: bool = False) -> None:
        """Keep ``item`` when forced or due at ``tick``."""
        if self.limit == 0 or not (force or self.due(tick)):
            return
        if replace and self.items and self.key(self.items[-1]) == self.key(item):
            self.items[-1] = item
            return
        self.items.append(item)
        if len(self.items) > self.limit:
            self.items = self.items[::2]  # the whole run at half the resolution
            self.stride *= 2

    def clear(self) -> None:
        self.items, self.stride = [], 1

    def resize(self, limit: int) -> None:
        """A new cap: thinned at once (every other item, as often as needed) to fit it."""
        self.limit = limit
        while len(self.items) > limit:
            self.items = self.items[::2]
            self.stride *= 2

    def until(self, moment: Hashable) -> None:
        """Forget every item after ``moment`` (time travel: the later run is dropped)."""
        self.items = [item for item in self.items if self.key(item) <= moment]  # type: ignore[operator]


@dataclass(frozen=True)
class Checkpoint:
    """A moment of a session to go back to: everything training continues from, and what the page shows."""

    epoch: int
    step: int
    spec: Any  # ExperimentSpec
    cfg: Any
    data: Any  # the data of that moment (kept by reference: regenerated data are new objects)
    state: Any  # TrainState (immutable arrays: kept by reference, copied never)
    spec_version: int
    metrics: dict[str, float | None]


def state_bytes(state: Any) -> int:
    return sum(int(getattr(a, "nbytes", 0)) for a in jax.tree_util.tree_leaves(state))


def checkpoint_limit(s: Session, max_checkpoints: int, budget_bytes: int) -> int:
    """How many checkpoints a session keeps: the setting's cap, fewer for a big network (a memory budget)."""
    if max_checkpoints == 0:
        return 0  # time travel is off
    return max(2, min(max_checkpoints, budget_bytes // max(1, state_bytes(s.state))))


# ------------------------------------------------------------------------------------ a session's series

if TYPE_CHECKING:
    from server.sessions.session import Session, Snapshot


def record(
    s: Session, *, force: bool = False, snap: Snapshot | None = None, replace: bool = False, weights: Any = None
) -> None:
    """One more tick of the session's recording: a history record of its metrics (of now, or of a snapshot)
    and a trajectory point, each when due. ``replace``: the record of the same epoch is replaced (the
    weights changed without training: the record must describe the weights the session has). ``weights``:
    those weights on the host already (a frame brought them), else they are fetched when a point is due."""
    s.chunks += 1
    record_path(s, force=force, snap=snap, weights=weights)
    epoch, step = (s.epoch, s.step) if snap is None else (snap.epoch, snap.step)
    source = s if snap is None else snap
    rate = source.cfg.schedule.rate(source.spec.training.learning_rate, epoch)
    item = {"epoch": epoch, "step": step, "spec_version": s.spec_version, "learning_rate": rate, **s.metrics}
    s.history.add(item, tick=s.chunks, force=force, replace=replace)
    moment = Checkpoint(
        epoch, step, source.spec, source.cfg, source.data, source.state, s.spec_version, dict(s.metrics)
    )
    s.checkpoints.add(moment, tick=s.chunks, force=force, replace=True)


def row_metrics(s: Session, row: np.ndarray) -> dict[str, float | None]:
    """A record row of the training program (train.RECORD_COLUMNS) as the session's metrics."""
    values: dict[str, Any] = dict(zip(RECORD_COLUMNS[1:], row[1:], strict=True))
    y_var = getattr(s.data, "y_var", (0.0, 0.0))  # a regression's target variances (2-D data only)
    return sanitize(values | {"train_y_var": y_var[0], "test_y_var": y_var[1]}, s.spec.problem)


def record_rows(s: Session, rows: np.ndarray, before: int, points: np.ndarray | None = None) -> None:
    """The history records a training call made on the way (rows of train.RECORD_COLUMNS, epochs counted
    from ``before``; ``points``: the weights of each, flattened), except one at the session's epoch now:
    ``record`` makes that one, with a checkpoint. Each row is one tick of the recording, as a chunk trained
    on the host would be: a trajectory point too when one is due."""
    steps = s.data.steps_per_epoch
    for k, row in enumerate(rows):
        epoch = before + int(row[0])
        if epoch >= s.epoch:
            continue
        s.chunks += 1
        if points is not None and s.trajectory.due(s.chunks) and s.init_params is not None:
            s.trajectory.add((epoch, points[k]), force=True, replace=True)
        if not s.history.due(s.chunks):
            continue  # the history is thinned this far already: skip the work of a record it drops
        rate = s.cfg.schedule.rate(s.spec.training.learning_rate, epoch)
        item = {"epoch": epoch, "step": s.step - (s.epoch - epoch) * steps, "spec_version": s.spec_version}
        s.history.add(item | {"learning_rate": rate} | row_metrics(s, row), tick=s.chunks)


def record_path(s: Session, *, force: bool = False, snap: Snapshot | None = None, weights: Any = None) -> None:
    """The weights now, as a point of the session's trajectory (networks of moderate size)."""
    if not (force or s.trajectory.due(s.chunks)):
        return
    state, epoch = (s.state, s.epoch) if snap is None else (snap.state, snap.epoch)
    if count_params(state.params) > MAX_TRAJECTORY_PARAMS:
        return
    if s.init_params is None:
        s.init_params = state.params
    s.trajectory.add((epoch, flat(state.params if weights is None else weights)), force=True, replace=True)


def restart_path(s: Session) -> None:
    """A new starting point: after a reset, or when the weights' shapes changed."""
    s.init_params = None
    s.trajectory.clear()
    s.sharpness.clear()
    record_path(s, force=True)
