"""Views of a session: each computed on a snapshot (no lock: training goes on) in the views' thread — the
optimization views every engine has (server/engines/views.py) and an engine's own (``engine.views``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.config import Settings
from server.engines import ENGINES, engine_for
from server.engines import views as ov
from server.errors import Invalid
from server.sessions import broadcast
from server.sessions.edits import checkpoint_at, params_like
from server.sessions.runner import Workers
from server.sessions.session import Session, Snapshot


class Views:
    """One way to run a view: on a snapshot, in the views' thread, answered with the snapshot's epoch."""

    def __init__(self, settings: Settings, workers: Workers):
        self.settings, self.workers = settings, workers

    async def engine_view(self, s: Session, name: str, **params: Any) -> dict[str, Any]:
        """One of the engine's own views by name (actmax, saliency, convolution, feature_maps for a CNN)."""
        snap = Snapshot.of(s)
        view = snap.engine.views.get(name)
        if view is None:
            kinds = " or ".join(f"'{e.name}'" for e in ENGINES.values() if name in e.views)
            raise Invalid(f"this view is for sessions whose network.kind is {kinds}", ("network", "kind"))
        out = await self.workers.view(view, snap.cfg, snap.state, snap.data, **params)
        return {"epoch": snap.epoch, "spec_version": snap.spec_version, **out}

    async def predict(self, s: Session, inputs: np.ndarray) -> np.ndarray:
        if len(inputs) > self.settings.max_predict_points:
            raise Invalid(f"at most {self.settings.max_predict_points} inputs per call", (s.engine.input_field,))
        snap = Snapshot.of(s)
        return await self.workers.run(snap.engine.predict, snap.cfg, snap.state, snap.spec, inputs)

    async def frame(self, s: Session) -> broadcast.Message:
        async with s.lock:
            snap = Snapshot.of(s)
            arrays = await self.workers.run(snap.frame_arrays)
        return broadcast.frame_message(s, snap, arrays)

    async def checkpoint_frame(self, s: Session, epoch: int) -> broadcast.Message:
        """The frame of a past moment (time travel): the network, maps and losses as they were at the
        checkpoint at ``epoch``; its header says ``checkpoint: true`` and carries that moment's spec_version."""
        moment = checkpoint_at(s, epoch)
        engine = engine_for(moment.spec)
        snap = Snapshot(
            moment.spec,
            moment.cfg,
            moment.data,
            moment.state,
            engine.hyper_for(moment.spec),
            engine,
            moment.epoch,
            moment.step,
            "paused",
            moment.spec_version,
            s.revision,
        )
        arrays = await self.workers.run(snap.frame_arrays)
        header, payload = broadcast.frame_message(s, snap, arrays)
        return header | {"checkpoint": True, "status": s.status, "live_epoch": s.epoch}, payload

    # ------------------------------------------------------------------ inside the optimization

    async def landscape(
        self, s: Session, directions: str, resolution: int, span: float | None, seed: int
    ) -> dict[str, Any]:
        """The loss slice around the current weights and the path on it."""
        snap, path, init = Snapshot.of(s), [p for p in s.trajectory.items], s.init_params
        if directions == "pca" and len(path) < 3:
            raise Invalid("PCA directions need a trajectory: train a few epochs first", ("directions",))
        out = await self.workers.view(
            ov.landscape,
            snap.engine,
            snap.cfg,
            snap.state,
            snap.data,
            directions=directions,
            resolution=resolution,
            span=span,
            seed=seed,
            init_params=init if init is not None else snap.state.params,
            trajectory=path,
            # a paused session's slice may take every core; a playing one leaves the other to training
            threads=1 if snap.status == "running" else ov.SLICE_THREADS,
        )
        return {"epoch": snap.epoch, "spec_version": snap.spec_version, **out}

    async def interpolation(
        self, s: Session, steps: int, start: list[dict[str, Any]] | None = None, end: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The loss along the line between two weight sets (each as GET .../weights gives its ``layers``);
        by default from the initial weights to the current ones."""
        snap, init, first = Snapshot.of(s), s.init_params, s.trajectory.items[:1]
        init = init if init is not None else snap.state.params
        a = init if start is None else params_like(start, snap.state.params, ("start", "layers"))
        b = snap.state.params if end is None else params_like(end, snap.state.params, ("end", "layers"))
        line_state = snap.state._replace(params=b)
        out = await self.workers.view(
            ov.interpolation, snap.engine, snap.cfg, line_state, snap.data, init_params=a, steps=steps
        )
        ends = {
            "from": "initial" if start is None else "given",
            "to": "current" if end is None else "given",
            "from_epoch": (first[0][0] if first else snap.epoch) if start is None else None,
        }
        return {"epoch": snap.epoch, **ends, **out}

    async def gradients(self, s: Session) -> dict[str, Any]:
        snap = Snapshot.of(s)
        out = await self.workers.view(ov.gradients, snap.engine, snap.spec, snap.cfg, snap.state, snap.data, snap.hyper)
        return {"epoch": snap.epoch, "spec_version": snap.spec_version, **out}

    async def sharpness(self, s: Session, iters: int) -> dict[str, Any]:
        """The top Hessian eigenvalue now; each one computed is kept, so the track over training shows."""
        snap, lr = Snapshot.of(s), s.spec.training.learning_rate
        out = await self.workers.view(
            ov.sharpness, snap.engine, snap.cfg, snap.state, snap.data, learning_rate=lr, iters=iters, seed=0
        )
        s.sharpness.add((snap.epoch, out["top_eigenvalue"]), force=True, replace=True)
        history = [{"epoch": e, "top_eigenvalue": v} for e, v in s.sharpness.items]
        return {"epoch": snap.epoch, **out, "history": history}

    async def race(
        self, s: Session, runs: list[dict[str, Any]], epochs: int, resolution: int, center: int | None
    ) -> dict[str, Any]:
        """Copies of the session's network raced with other optimizers from its current weights; the session
        itself is not touched."""
        if len(runs) * epochs > self.settings.max_train_epochs:
            limit = self.settings.max_train_epochs
            raise Invalid(f"runs × epochs must be at most {limit} on this server", ("epochs",))
        if center is not None and not 0 <= center < len(runs):
            raise Invalid(f"center must be a run's index, 0 to {len(runs) - 1}", ("center",))
        snap = Snapshot.of(s)
        out = await self.workers.view(
            ov.race,
            snap.engine,
            snap.cfg,
            snap.state,
            snap.data,
            snap.hyper,
            runs=runs,
            epochs=epochs,
            resolution=resolution,
            center=center,
        )
        return {"from_epoch": snap.epoch, **out}
