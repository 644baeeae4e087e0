"""Live edits: a partial spec (never a reset), new weights, one weight, a reset. Each is applied between
chunks under the session's lock, and its effect is shown to watchers at once."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from server.engines import engine_for
from server.errors import Invalid, NotFound
from server.ml.train import TrainState
from server.sessions import broadcast
from server.sessions.recording import Checkpoint, record, restart_path
from server.sessions.registry import Registry
from server.sessions.runner import Runner
from server.sessions.session import Session, Snapshot
from server.spec import ExperimentSpec, apply_patch

T = TypeVar("T")
FLOAT32_MAX = float(np.finfo(np.float32).max)


def params_like(
    layers: list[dict[str, Any]], like: list[dict[str, Any]], loc: tuple[str | int, ...]
) -> list[dict[str, jax.Array]]:
    """Weights as GET .../weights gives them (per layer: w, b, ...) → params of the same shapes as ``like``;
    a missing layer or leaf, a wrong shape or a non-finite number is Invalid at ``loc`` + (layer, name)."""
    if len(layers) != len(like):
        raise Invalid(f"expected {len(like)} layers, got {len(layers)}", loc)
    params = []
    for i, (given, have) in enumerate(zip(layers, like, strict=True)):
        layer = {}
        for name, arr in have.items():
            value = given.get(name)
            if value is None:
                raise Invalid(f"layer {i} needs '{name}' with shape {list(arr.shape)}", (*loc, i, name))
            with np.errstate(over="ignore"):  # too large for float32 → inf → refused just below
                a = np.asarray(value, dtype=np.float32)
            if a.shape != arr.shape:
                raise Invalid(f"shape {list(a.shape)}, expected {list(arr.shape)}", (*loc, i, name))
            if not np.isfinite(a).all():
                raise Invalid("weights must be finite numbers", (*loc, i, name))
            layer[name] = jnp.asarray(a)
        params.append(layer)
    return params


def _checked_edit(params: list[dict[str, Any]], layer: Any, param: Any, index: Any, value: Any) -> None:
    """One weight's address and value, each Invalid at its own field when it does not fit the params."""
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(params):
        raise Invalid(f"layer must be an integer from 0 to {len(params) - 1}", ("layer",))
    if not isinstance(param, str) or param not in params[layer]:
        raise Invalid(f"param must be one of {sorted(params[layer])}", ("param",))
    shape = params[layer][param].shape
    ok = isinstance(index, list) and len(index) == len(shape)
    ok = ok and all(type(i) is int and 0 <= i < n for i, n in zip(index, shape, strict=False))
    if not ok:
        raise Invalid(f"index must be a list of {len(shape)} integers within {list(shape)}", ("index",))
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid("value must be a finite number", ("value",))
    if abs(value) > FLOAT32_MAX:
        raise Invalid(f"value must be a float32: at most {FLOAT32_MAX:.3g} in size", ("value",))


class Editor:
    """Changes sessions from outside their loop."""

    def __init__(self, registry: Registry, runner: Runner):
        self.registry, self.runner = registry, runner

    async def edit(self, s: Session, change: Callable[[], T]) -> T:
        """Apply ``change`` between chunks (worker thread, lock held) and show watchers its effect at once:
        the next frame they get already reflects it, even while the session plays."""
        async with s.lock:

            def run() -> tuple[T, broadcast.Message | None]:
                s.revision += 1
                result = change()
                if not s.subscribers:
                    return result, None
                snap = Snapshot.of(s)
                return result, broadcast.frame_message(s, snap, snap.frame_arrays())

            result, message = await self.runner.workers.run(run)
            if message is not None:
                broadcast.publish(s, message)
        return result

    async def reset(self, s: Session) -> None:
        """Fresh weights from the spec's seed, epoch 0, history cleared; the spec and data stay."""
        s.status = "paused"

        def fresh() -> None:
            s.state = s.engine.init_train_state(s.spec, s.cfg)
            s.epoch = s.step = s.chunks = 0
            s.stopped = None
            s.history.clear()
            s.checkpoints.clear()
            s.metrics = s.engine.metrics(s.cfg, s.state, s.data, s.spec.problem)
            restart_path(s)
            record(s, force=True)

        await self.edit(s, fresh)

    async def patch(self, s: Session, patch: dict[str, Any]) -> dict[str, Any]:
        """Apply a partial spec without resetting; returns what was kept and what changed."""
        new = apply_patch(s.spec, patch)  # pydantic ValidationError names the field
        self.registry.check_limits(new)

        def program() -> tuple[Any, ...]:  # what compiled code depends on
            return (s.engine.name, s.cfg, s.data.program_key)

        before = program()
        report = await self.edit(s, lambda: self._apply_spec(s, new))
        if program() != before and s.status != "running":  # a running loop compiles it right away anyway
            self.runner.warm(s)
        return report

    def _apply_spec(self, s: Session, new: ExperimentSpec) -> dict[str, Any]:
        old, old_cfg, old_engine = s.spec, s.cfg, s.engine
        engine = engine_for(new)
        cfg = engine.config_for(new)
        regenerate = engine is not old_engine or engine.data_key(old) != engine.data_key(new)
        if engine is old_engine:
            state, report = engine.carry_over(old, old_cfg, s.state, new, cfg)
        else:  # MLP ↔ CNN: nothing carries over
            state = engine.init_train_state(new, cfg)
            n = sum(int(np.prod(v.shape)) for v in jax.tree_util.tree_leaves(state.params))
            report = {"kept": 0, "initialized": n, "layers": [], "optimizer_state": "reinitialized"}
        if regenerate:
            s.data = self.registry.build_data(engine, new)
        reshaped = engine is not old_engine or _shapes(state) != _shapes(s.state)
        s.spec, s.cfg, s.state = new, cfg, state
        if reshaped:
            restart_path(s)
            self.registry.fit_checkpoints(s)
        s.spec_version += 1
        if s.status == "diverged":
            s.status = "paused"
        s.metrics = engine.metrics(cfg, state, s.data, new.problem)
        at_reset = (("seed", old.seed, new.seed), ("network.init", old.network.init, new.network.init))
        return {
            "spec_version": s.spec_version,
            "reset": False,
            "data": "regenerated" if regenerate else "kept",
            "weights": report,
            "optimizer_state": report.pop("optimizer_state"),
            "applies_at_reset": [name for name, a, b in at_reset if a != b],
        }

    async def restore(self, s: Session, epoch: int) -> None:
        """Time travel: continue from the checkpoint at ``epoch`` — its spec, data, weights, optimizer state,
        epoch and step — and drop the run after it (history, trajectory, sharpness, later checkpoints). The
        session pauses there; play continues from it."""
        moment = checkpoint_at(s, epoch)
        s.status = "paused"
        await self.runner.stop(s)

        def back() -> None:
            reshaped = moment.spec.network != s.spec.network or _shapes(moment.state) != _shapes(s.state)
            s.spec, s.cfg, s.data, s.state = moment.spec, moment.cfg, moment.data, moment.state
            s.epoch, s.step = moment.epoch, moment.step
            s.metrics = dict(moment.metrics)
            s.spec_version += 1
            for series in (s.history, s.checkpoints, s.trajectory, s.sharpness):
                series.until(moment.epoch)
            if reshaped:
                restart_path(s)
                self.registry.fit_checkpoints(s)

        await self.edit(s, back)

    async def set_weights(self, s: Session, layers: list[dict[str, Any]]) -> None:
        """Replace every weight and bias (same shapes as GET .../weights); optimizer state is kept."""
        new_params = params_like(layers, s.state.params, ("layers",))
        await self.edit(s, lambda: self._set_params(s, new_params))

    async def edit_weight(self, s: Session, layer: Any, param: Any, index: Any, value: Any) -> None:
        """Set one weight or bias to a typed value; training continues from it."""
        _checked_edit(s.state.params, layer, param, index, value)

        def change() -> None:
            layers = list(s.state.params)
            layers[layer] = {**layers[layer], param: layers[layer][param].at[tuple(index)].set(float(value))}
            self._set_params(s, layers)

        await self.edit(s, change)

    @staticmethod
    def _set_params(s: Session, params: list[dict[str, Any]]) -> None:
        """New weights at the same epoch: the metrics and the epoch's history record describe them."""
        s.state = s.state._replace(params=params)
        s.metrics = s.engine.metrics(s.cfg, s.state, s.data, s.spec.problem)
        if s.status == "diverged" and s.metrics["train_loss"] is not None:
            s.status = "paused"  # the user replaced weights: trainable again
        s.chunks -= 1  # not a tick of training: the record replaces this epoch's
        record(s, force=True, replace=True)


def _shapes(state: TrainState) -> list[tuple[int, ...]]:
    """The shapes of a state's weights, in order: what a change of architecture changes."""
    return [a.shape for a in jax.tree_util.tree_leaves(state.params)]


def checkpoint_at(s: Session, epoch: int) -> Checkpoint:
    """The session's checkpoint at ``epoch``; NotFound naming the epochs there are."""
    for moment in s.checkpoints.items:
        if moment.epoch == epoch:
            return moment
    kept = [c.epoch for c in s.checkpoints.items]
    shown = ", ".join(map(str, kept[:5])) + (f", … {kept[-1]}" if len(kept) > 5 else "")
    raise NotFound(f"no checkpoint at epoch {epoch}: this session has checkpoints at epochs {shown or 'none'}")
