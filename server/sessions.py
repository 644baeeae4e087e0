"""Live sessions: the only mutable state of the server.

A session holds a spec, its data, the training state, history and status. Every change to a session
happens under its lock, between training chunks; chunks run in worker threads (JAX releases the GIL), so
the event loop stays free. While playing, a session's loop trains a chunk, builds a frame and drops it in
each subscriber's latest-only mailbox (a slow client skips stale frames and never slows training).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import jax
import jax.numpy as jnp
import numpy as np

from server import cnn_experiment as cx
from server import experiment as ex
from server import optimization as opt
from server.config import Settings
from server.ml import images
from server.ml.health import diagnose
from server.ml.inspect import NEURON_RESOLUTION, OUTPUT_RESOLUTION
from server.ml.models import OUTPUTS, count_params
from server.ml.train import TrainState
from server.spec import ExperimentSpec, apply_patch

T = TypeVar("T")


def engine_for(spec: ExperimentSpec) -> Any:
    """The module that turns this kind of spec into numbers: experiment (MLP) or cnn_experiment (CNN); both
    offer the same functions by the same names."""
    return cx if spec.network.kind == "cnn" else ex


log = logging.getLogger(__name__)


class SessionError(Exception):
    """A request the session cannot honour; routes turn it into an HTTP status."""

    status_code = 400

    def __init__(self, message: str, loc: tuple[str | int, ...] = ()):
        super().__init__(message)
        self.message, self.loc = message, loc


class NotFound(SessionError):
    status_code = 404


class TooMany(SessionError):
    status_code = 429


class Invalid(SessionError):
    status_code = 422


class Conflict(SessionError):
    status_code = 409


class Mailbox:
    """Latest-only mailbox: put() replaces what the reader has not taken yet."""

    def __init__(self) -> None:
        self._item: Any = None
        self._event = asyncio.Event()

    def put(self, item: Any) -> None:
        self._item = item
        self._event.set()

    async def get(self) -> Any:
        await self._event.wait()
        self._event.clear()
        item, self._item = self._item, None
        return item


@dataclass
class Session:
    """One experiment being trained. Mutated only by SessionManager, under ``lock``."""

    id: str
    token: str
    spec: ExperimentSpec
    cfg: Any  # TrainConfig (MLP) or CnnTrainConfig
    data: Any  # experiment.Data or cnn_experiment.ImageData
    state: TrainState
    status: str = "paused"  # paused | running | diverged
    epoch: int = 0
    step: int = 0  # optimizer updates so far
    spec_version: int = 0
    metrics: dict[str, float | None] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    history_stride: int = 1  # record every n-th chunk once the history has been thinned
    chunks: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    task: asyncio.Task | None = None
    subscribers: set[Mailbox] = field(default_factory=set)
    touched: float = field(default_factory=time.monotonic)
    warm: asyncio.Task | None = None  # compiling the training program in the background (see _warm)
    revision: int = 0  # bumped by every edit from outside the loop (reset, patch, weights): older frames are stale
    hyper_cache: tuple[Any, Any] = (None, None)  # (spec, its traced hyperparameters): built once per spec
    init_params: Any = None  # the weights training started from (reset, or the last change of shapes)
    trajectory: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (epoch, weights) as training went
    trajectory_stride: int = 1  # record every n-th chunk once the trajectory has been thinned
    sharpness: list[tuple[int, float | None]] = field(default_factory=list)  # (epoch, top Hessian eigenvalue)

    @property
    def engine(self) -> Any:
        return engine_for(self.spec)

    @property
    def hyper(self) -> Any:
        spec, h = self.hyper_cache
        if spec is not self.spec:
            h = self.engine.hyper_for(self.spec)
            self.hyper_cache = (self.spec, h)
        return h

    def check_token(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.token.encode())


@dataclass(frozen=True)
class Snapshot:
    """What a frame shows, taken between chunks: a frame can then be computed while the next chunk trains."""

    cfg: Any
    data: Any
    state: TrainState
    engine: Any
    epoch: int
    step: int
    status: str
    spec_version: int
    revision: int
    problem: str

    @classmethod
    def of(cls, s: Session) -> Snapshot:
        return cls(
            s.cfg, s.data, s.state, s.engine, s.epoch, s.step, s.status, s.spec_version, s.revision, s.spec.problem
        )


def _sanitize(values: dict[str, Any], problem: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
        v = float(values[k])
        out[k] = float(f"{v:.7g}") if math.isfinite(v) else None  # float32 precision, no noise digits
    if problem == "regression":
        out["train_accuracy"] = out["test_accuracy"] = None
    return out


def _params_like(layers: list[dict[str, Any]], like: list[dict[str, Any]], loc: tuple) -> list[dict[str, jax.Array]]:
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


class SessionManager:
    """Creates, finds, trains and edits sessions; owns their loops and subscribers."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.sessions: dict[str, Session] = {}
        self.limiter = anyio.CapacityLimiter(settings.worker_threads)
        # Views computed beside training (slices, Hessians, activation maximization...) have their own
        # thread: they never wait for a playing session's chunks, nor hold one back for more than a chunk.
        self.view_limiter = anyio.CapacityLimiter(1)

    async def _thread(self, fn: Callable[..., T], *args: Any, _view: bool = False, **kwargs: Any) -> T:
        call = functools.partial(fn, *args, **kwargs) if kwargs else fn
        limiter = self.view_limiter if _view else self.limiter
        return await anyio.to_thread.run_sync(call, *(() if kwargs else args), limiter=limiter)

    async def _view(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a view on a snapshot in the views' thread."""
        return await self._thread(fn, *args, _view=True, **kwargs)

    def _check_limits(self, spec: ExperimentSpec) -> None:
        if spec.dataset.n > self.settings.max_points:
            raise Invalid(f"at most {self.settings.max_points} points on this server", ("dataset", "n"))
        if spec.network.kind == "cnn":  # memory per session: the images, and the network's size
            h, w, c = spec.image_shape
            pixels = spec.dataset.n * h * w * c
            if pixels > self.settings.max_image_pixels:
                most = self.settings.max_image_pixels // (h * w * c)
                raise Invalid(f"at most {most} images of {h}×{w} on this server", ("dataset", "n"))
            params = cx.parameter_count(spec)
            if params > self.settings.max_cnn_parameters:
                limit = self.settings.max_cnn_parameters
                raise Invalid(
                    f"this network has {params:,} parameters; this server allows {limit:,}: use fewer filters or"
                    " units, or pool before the dense layers",
                    ("network", "layers"),
                )

    # ------------------------------------------------------------------ lifecycle

    def _build_data(self, engine: Any, spec: ExperimentSpec) -> Any:
        """The spec's data; image files that are missing and cannot be downloaded, or are not valid IDX,
        are a 422 at dataset.name saying what to do."""
        try:
            return engine.build_data(spec, self.settings.data_dir, self.settings.allow_download)
        except (OSError, images.IdxError) as exc:
            raise Invalid(f"cannot load '{spec.dataset.name}': {exc}", ("dataset", "name")) from None

    async def create(self, spec: ExperimentSpec) -> Session:
        if len(self.sessions) >= self.settings.max_sessions:
            raise TooMany(f"this server holds at most {self.settings.max_sessions} sessions; delete one first")
        self._check_limits(spec)

        def build() -> Session:
            engine = engine_for(spec)
            cfg = engine.config_for(spec)
            data = self._build_data(engine, spec)
            state = engine.init_train_state(spec, cfg)
            s = Session(secrets.token_urlsafe(9), secrets.token_urlsafe(24), spec, cfg, data, state)
            s.metrics = engine.metrics(cfg, state, data, spec.problem)
            self._record(s, force=True)
            return s

        s = await self._thread(build)
        self.sessions[s.id] = s
        self._warm(s)
        return s

    def _warm(self, s: Session) -> None:
        """Compile the session's training program in the background (a call that trains zero epochs), and its
        frame program beside it (XLA compiles the two on two cores at once), so that pressing play on a new
        architecture finds them ready instead of waiting for the compiler."""
        if not self.settings.warm_start:
            return
        cfg, state, data, h, engine = s.cfg, s.state, s.data, s.hyper, s.engine

        async def run() -> None:
            with contextlib.suppress(Exception):  # the real calls report any error
                await asyncio.gather(
                    self._thread(engine.warm, cfg, state, data, h), self._thread(engine.frame_arrays, cfg, state, data)
                )

        s.warm = asyncio.create_task(run(), name=f"warm-{s.id}")

    @staticmethod
    async def _warmed(s: Session) -> None:
        if s.warm is not None and not s.warm.done():
            await asyncio.shield(s.warm)

    def get(self, session_id: str) -> Session:
        s = self.sessions.get(session_id)
        if s is None:
            raise NotFound(f"no session {session_id!r} (it may have been deleted or expired)")
        s.touched = time.monotonic()
        return s

    async def delete(self, s: Session) -> None:
        s.status = "paused"
        await self._stop_loop(s)
        self.sessions.pop(s.id, None)

    async def close(self) -> None:
        for s in list(self.sessions.values()):
            await self.delete(s)
            await self._warmed(s)  # no compiler thread left running at shutdown

    async def reap_idle(self) -> int:
        """Remove sessions nobody has touched or watched for the idle limit. Returns how many."""
        limit = self.settings.session_idle_seconds
        now = time.monotonic()
        stale = [s for s in self.sessions.values() if not s.subscribers and now - s.touched > limit]
        for s in stale:
            await self.delete(s)
        return len(stale)

    # ------------------------------------------------------------------ training

    def _record(self, s: Session, force: bool = False, snap: Snapshot | None = None) -> None:
        s.chunks += 1
        self._record_path(s, force, snap)
        if not force and s.chunks % s.history_stride:
            return
        epoch, step = (s.epoch, s.step) if snap is None else (snap.epoch, snap.step)
        s.history.append({"epoch": epoch, "step": step, "spec_version": s.spec_version, **s.metrics})
        if len(s.history) > self.settings.history_limit:
            s.history = s.history[::2]  # keep the whole run at half the resolution
            s.history_stride *= 2

    def _record_path(self, s: Session, force: bool = False, snap: Snapshot | None = None) -> None:
        """The weights now, as a point of the session's trajectory (networks of moderate size)."""
        if not force and s.chunks % s.trajectory_stride:
            return
        state, epoch = (s.state, s.epoch) if snap is None else (snap.state, snap.epoch)
        if count_params(state.params) > opt.MAX_TRAJECTORY_PARAMS:
            return
        if s.init_params is None:
            s.init_params = state.params
        if s.trajectory and s.trajectory[-1][0] == epoch:
            s.trajectory[-1] = (epoch, opt.flat(state.params))
        else:
            s.trajectory.append((epoch, opt.flat(state.params)))
        if len(s.trajectory) > opt.TRAJECTORY_POINTS:
            s.trajectory = s.trajectory[::2]  # keep the whole path at half the resolution
            s.trajectory_stride *= 2

    def _restart_path(self, s: Session) -> None:
        """A new starting point: after a reset, or when the weights' shapes changed."""
        s.init_params, s.trajectory, s.trajectory_stride, s.sharpness = None, [], 1, []
        self._record_path(s, force=True)

    def _advance(self, s: Session, epochs: int) -> bool:
        """Train ``epochs`` epochs (worker thread, lock held). False when training diverged."""
        result = s.engine.advance(s.cfg, s.state, s.data, s.hyper, epochs)
        s.state = result.state
        s.epoch += result.epochs
        s.step += result.epochs * s.data.steps_per_epoch
        return not result.diverged

    def _train_sync(self, s: Session, epochs: int) -> None:
        # Enough chunks for a useful loss curve, few enough that syncing to the host stays negligible.
        per_chunk = max(1, math.ceil(epochs / 100))
        done = 0
        while done < epochs:
            n = min(per_chunk, epochs - done)
            before = s.epoch
            ok = self._advance(s, n)
            s.metrics = s.engine.metrics(s.cfg, s.state, s.data, s.spec.problem)
            if s.epoch > before:
                self._record(s)
            done += n
            if not ok:
                s.status = "diverged"
                return
        if s.status == "diverged":
            s.status = "paused"

    async def train(self, s: Session, epochs: int) -> None:
        if epochs > self.settings.max_train_epochs:
            raise Invalid(f"at most {self.settings.max_train_epochs} epochs per call", ("epochs",))
        await self._warmed(s)
        async with s.lock:
            await self._thread(self._train_sync, s, epochs)

    def _chunk_sync(self, s: Session, epochs: int, frame: bool = True) -> dict[str, Any] | None:
        """One chunk of the play loop: train, then (when asked, or on divergence) the frame."""
        ok = self._advance(s, epochs)
        if not ok:
            s.status = "diverged"
        elif not frame:
            return None
        arrays = s.engine.frame_arrays(s.cfg, s.state, s.data)
        s.metrics = _sanitize(arrays, s.spec.problem)
        if not s.history or s.history[-1]["epoch"] != s.epoch:
            self._record(s)
        return arrays

    def _frame_sync(self, s: Session, snap: Snapshot) -> tuple[dict[str, Any], tuple[dict[str, Any], dict[str, Any]]]:
        """A snapshot's frame arrays and its message (worker thread; needs no lock: the snapshot is immutable)."""
        arrays = snap.engine.frame_arrays(snap.cfg, snap.state, snap.data)
        return arrays, self.frame_message(s, arrays, snap)

    async def _show(self, s: Session, snap: Snapshot) -> None:
        """Compute a snapshot's frame off the event loop and hand it out, unless an edit made it stale."""
        try:
            arrays, message = await self._thread(self._frame_sync, s, snap)
        except Exception:  # a frame that cannot be drawn must not stop training; the next one may work
            log.exception("session %s: frame of epoch %d failed", s.id, snap.epoch)
            return
        if s.revision != snap.revision:
            return  # reset, patched or given new weights meanwhile: that edit published its own frame
        s.metrics = _sanitize(arrays, snap.problem)
        if not s.history or s.history[-1]["epoch"] < snap.epoch:
            self._record(s, snap=snap)
        for box in s.subscribers:
            box.put(message)

    async def _loop(self, s: Session) -> None:
        """Train chunk after chunk while running; a frame at the frame rate.

        The frame of the state after chunk k is computed (in another worker thread) while chunk k + 1
        trains, so training never waits for frames; chunks last about half a frame period, so an edit
        (which waits for the chunk in flight) shows in the next frame quickly.
        """
        period = 1.0 / self.settings.frame_rate
        epochs, last_frame = 1, -math.inf
        shown: asyncio.Task | None = None
        snap: Snapshot | None = None
        await self._warmed(s)
        try:
            while s.status == "running":
                started = time.perf_counter()
                async with s.lock:
                    if s.status != "running":
                        break
                    cap = s.spec.speed
                    n = epochs if cap is None else max(1, min(epochs, round(cap * period)))
                    ok = await self._thread(self._advance, s, n)
                    if not ok:
                        s.status = "diverged"
                    snap = Snapshot.of(s)
                now = time.perf_counter()
                elapsed = now - started
                # due when this chunk's end is nearer the next frame time than the following chunk's end
                due = cap is not None or not ok or now - last_frame + 0.5 * elapsed >= period
                if due and (shown is None or shown.done() or not ok):
                    if not ok and shown is not None:
                        await shown  # the divergence frame must come last
                    shown = asyncio.create_task(self._show(s, snap))
                    last_frame = now
                if cap is not None:
                    await asyncio.sleep(max(0.0, n / cap - elapsed))
                else:
                    await asyncio.sleep(0)  # let requests and other sessions in between chunks
                # grow at most 2x per chunk so a slow architecture never stalls the loop
                per_epoch = max(elapsed / n, 1e-7)
                epochs = max(1, min(epochs * 2, int(0.5 * period / per_epoch)))
        finally:
            if shown is not None and not shown.done():
                await shown
        # Paused (not by an edit, which shows its own frame): show exactly where training stopped.
        if snap is not None and s.status != "diverged" and s.revision == snap.revision:
            async with s.lock:
                if s.revision == snap.revision:
                    await self._show(s, Snapshot.of(s))

    async def _stop_loop(self, s: Session) -> None:
        task, s.task = s.task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def play(self, s: Session) -> None:
        if s.status == "diverged":
            raise Conflict("training diverged: lower the learning rate or reset before playing", ("status",))
        s.status = "running"
        if s.task is None or s.task.done():
            s.task = asyncio.create_task(self._loop(s), name=f"session-{s.id}")

    async def pause(self, s: Session) -> None:
        if s.status == "running":
            s.status = "paused"
        task = s.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            # returns once the loop has finished its chunk and shown the paused state (metrics match epoch)
            await asyncio.shield(task)
        async with s.lock:
            pass

    async def step(self, s: Session) -> None:
        await self.pause(s)
        await self._warmed(s)
        async with s.lock:
            arrays = await self._thread(self._chunk_sync, s, 1)
            if s.status == "running":
                s.status = "paused"
            self.publish(s, arrays)

    async def reset(self, s: Session) -> None:
        s.status = "paused"

        def fresh() -> None:
            s.state = s.engine.init_train_state(s.spec, s.cfg)
            s.epoch = s.step = s.chunks = 0
            s.history, s.history_stride = [], 1
            s.metrics = s.engine.metrics(s.cfg, s.state, s.data, s.spec.problem)
            self._restart_path(s)
            self._record(s, force=True)

        await self._edit(s, fresh)

    async def _edit(self, s: Session, change: Callable[[], T]) -> T:
        """Apply ``change`` between chunks (worker thread, lock held) and show watchers its effect at once:
        the next frame they get already reflects it, even while the session plays."""
        async with s.lock:

            def run() -> tuple[T, dict[str, Any] | None]:
                s.revision += 1
                result = change()
                return result, s.engine.frame_arrays(s.cfg, s.state, s.data) if s.subscribers else None

            result, arrays = await self._thread(run)
            if arrays is not None:
                self.publish(s, arrays)
        return result

    # ------------------------------------------------------------------ live edits

    async def patch(self, s: Session, patch: dict[str, Any]) -> dict[str, Any]:
        """Apply a partial spec without resetting; returns what was kept and what changed."""
        new = apply_patch(s.spec, patch)  # pydantic ValidationError names the field
        self._check_limits(new)
        program = lambda: (s.cfg, s.data.batches[0].shape, s.data.padded)  # noqa: E731  what compiled code depends on
        before = program()
        report = await self._edit(s, lambda: self._apply_spec(s, new))
        if program() != before and s.status != "running":  # a running loop compiles it right away anyway
            self._warm(s)
        return report

    def _apply_spec(self, s: Session, new: ExperimentSpec) -> dict[str, Any]:
        old, old_cfg = s.spec, s.cfg
        engine = engine_for(new)
        cfg = engine.config_for(new)
        data_key = lambda sp: (  # noqa: E731  (augmentation happens inside training: the data stay)
            sp.network.kind,
            sp.dataset.model_copy(update={"augment": None}),
            sp.problem,
            sp.features,
            sp.training.batch_size,
        )
        regenerate = data_key(old) != data_key(new)
        if engine is s.engine:
            state, report = engine.carry_over(old, old_cfg, s.state, new, cfg)
        else:  # MLP ↔ CNN: nothing carries over
            state = engine.init_train_state(new, cfg)
            n = sum(int(np.prod(v.shape)) for v in jax.tree_util.tree_leaves(state.params))
            report = {"kept": 0, "initialized": n, "layers": [], "optimizer_state": "reinitialized"}
        if regenerate:
            s.data = self._build_data(engine, new)
        shapes = lambda st: [a.shape for a in jax.tree_util.tree_leaves(st.params)]  # noqa: E731
        reshaped = engine is not s.engine or shapes(state) != shapes(s.state)
        s.spec, s.cfg, s.state = new, cfg, state
        if reshaped:
            self._restart_path(s)
        s.spec_version += 1
        if s.status == "diverged":
            s.status = "paused"
        s.metrics = engine.metrics(cfg, state, s.data, new.problem)
        at_reset = (("seed", old.seed, new.seed), ("network.init", old.network.init, new.network.init))
        later = [name for name, a, b in at_reset if a != b]
        return {
            "spec_version": s.spec_version,
            "reset": False,
            "data": "regenerated" if regenerate else "kept",
            "weights": report,
            "optimizer_state": report.pop("optimizer_state"),
            "applies_at_reset": later,
        }

    async def set_weights(self, s: Session, layers: list[dict[str, Any]]) -> None:
        """Replace every weight and bias (same shapes as GET .../weights); optimizer state is kept."""
        new_params = _params_like(layers, s.state.params, ("layers",))
        await self._edit(s, lambda: self._set_params(s, new_params))

    async def edit_weight(self, s: Session, layer: Any, param: Any, index: Any, value: Any) -> None:
        """Set one weight or bias to a typed value; training continues from it."""
        params = s.state.params
        if not isinstance(layer, int) or not 0 <= layer < len(params):
            raise Invalid(f"layer must be an integer from 0 to {len(params) - 1}", ("layer",))
        if param not in params[layer]:
            raise Invalid(f"param must be one of {sorted(params[layer])}", ("param",))
        shape = params[layer][param].shape
        ok_index = isinstance(index, list) and len(index) == len(shape)
        ok_index = ok_index and all(isinstance(i, int) and 0 <= i < n for i, n in zip(index, shape, strict=False))
        if not ok_index:
            raise Invalid(f"index must be a list of {len(shape)} integers within {list(shape)}", ("index",))
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise Invalid("value must be a finite number", ("value",))

        def change() -> None:
            layers = list(s.state.params)
            layers[layer] = {**layers[layer], param: layers[layer][param].at[tuple(index)].set(float(value))}
            self._set_params(s, layers)

        await self._edit(s, change)

    def _set_params(self, s: Session, params: list[dict[str, Any]]) -> None:
        s.state = s.state._replace(params=params)
        s.metrics = s.engine.metrics(s.cfg, s.state, s.data, s.spec.problem)
        if s.status == "diverged" and s.metrics["train_loss"] is not None:
            s.status = "paused"  # the user replaced weights: trainable again

    async def predict(self, s: Session, points: np.ndarray) -> np.ndarray:
        if len(points) > self.settings.max_predict_points:
            raise Invalid(f"at most {self.settings.max_predict_points} inputs per call", ("inputs",))
        if s.spec.network.kind == "cnn":
            return await self._thread(cx.predict_images, s.cfg, s.state, s.spec, self._images(s, points))
        return await self._thread(ex.predict_points, s.cfg, s.state, s.spec, points)

    def _images(self, s: Session, images: np.ndarray) -> np.ndarray:
        """Images (n, H, W[, C]) checked against the session's image shape → (n, H, W, C)."""
        shape = tuple(s.spec.image_shape)
        if images.ndim == 3 and shape[2] == 1:
            images = images[..., None]
        if images.shape[1:] != shape or not np.isfinite(images).all():
            want = "×".join(map(str, shape))
            raise Invalid(f"inputs are images of {want} pixels (values 0-1), got {list(images.shape[1:])}", ("images",))
        return images

    async def image_maps(self, s: Session, images: np.ndarray) -> dict[str, np.ndarray]:
        """CNN: every layer's feature maps of given images (a drawing), as a frame's maps{i} / map_ranges{i}."""
        self._cnn_only(s)
        images = self._images(s, images)
        snap = Snapshot.of(s)
        return await self._thread(cx.image_maps, snap.cfg, snap.state, images)

    def _cnn_only(self, s: Session) -> None:
        if s.spec.network.kind != "cnn":
            raise Invalid("this view is for CNN sessions (network.kind 'cnn')", ("network", "kind"))

    async def actmax(self, s: Session, layer: int, steps: int) -> dict[str, Any]:
        """What each filter (or unit) of a layer wants to see; computed beside training, never blocking it."""
        self._cnn_only(s)
        layers = s.cfg.arch.layers
        if not 0 <= layer < len(layers):
            raise Invalid(f"layer must be from 0 to {len(layers) - 1}", ("layer",))
        snap = Snapshot.of(s)  # immutable: no lock needed, training goes on
        out = await self._view(cx.activation_maximization, snap.cfg, snap.state, layer, steps)
        return {"epoch": snap.epoch, "spec_version": snap.spec_version, "layer": layer, "steps": steps, **out}

    async def convolution(
        self, s: Session, layer: int, filter_: int | None, example: int, row: int | None, col: int | None
    ) -> dict[str, Any]:
        """The worked example of a convolution (and the pooling after it) on the session's current weights."""
        self._cnn_only(s)
        snap = Snapshot.of(s)
        layers = snap.cfg.arch.layers
        convs = [i for i, layer_ in enumerate(layers) if layer_.type == "conv"]
        if layer not in convs:
            raise Invalid(f"layer must be a conv layer: one of {convs}", ("layer",))
        filters = layers[layer].filters
        if filter_ is not None and not 0 <= filter_ < filters:
            raise Invalid(f"filter must be from 0 to {filters - 1}", ("filter",))
        n = int(snap.data.x_test.shape[0])
        if not 0 <= example < n:
            raise Invalid(f"example is a test-image index from 0 to {n - 1}", ("example",))
        out = await self._view(
            cx.convolution_walkthrough, snap.cfg, snap.state, snap.data, layer, filter_, example, row, col
        )
        return {"epoch": snap.epoch, "spec_version": snap.spec_version, **out}

    # ------------------------------------------------------------------ inside the optimization

    async def landscape(
        self, s: Session, directions: str, resolution: int, span: float | None, seed: int
    ) -> dict[str, Any]:
        """The loss slice around the current weights and the path on it; computed beside training (on a
        snapshot, without the session's lock), so the loop goes on."""
        snap, path, init = Snapshot.of(s), list(s.trajectory), s.init_params
        if directions == "pca" and len(path) < 3:
            raise Invalid("PCA directions need a trajectory: train a few epochs first", ("directions",))
        out = await self._view(
            opt.landscape,
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
            threads=1 if snap.status == "running" else opt.SLICE_THREADS,
        )
        return {"epoch": snap.epoch, "spec_version": snap.spec_version, **out}

    async def interpolation(
        self,
        s: Session,
        steps: int,
        start: list[dict[str, Any]] | None = None,
        end: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The loss along the line between two weight sets (each as GET .../weights gives its ``layers``);
        by default from the initial weights to the current ones."""
        snap, init = Snapshot.of(s), s.init_params
        init = init if init is not None else snap.state.params
        a = init if start is None else _params_like(start, snap.state.params, ("start", "layers"))
        b = snap.state.params if end is None else _params_like(end, snap.state.params, ("end", "layers"))
        out = await self._view(
            opt.interpolation, snap.cfg, snap.state._replace(params=b), snap.data, init_params=a, steps=steps
        )
        ends = {
            "from": "initial" if start is None else "given",
            "to": "current" if end is None else "given",
            "from_epoch": (s.trajectory[0][0] if s.trajectory else snap.epoch) if start is None else None,
        }
        return {"epoch": snap.epoch, **ends, **out}

    async def gradients(self, s: Session) -> dict[str, Any]:
        snap, h, init = Snapshot.of(s), s.hyper, s.spec.network.init
        out = await self._view(opt.gradients, snap.cfg, snap.state, snap.data, h, init=init)
        return {"epoch": snap.epoch, "spec_version": snap.spec_version, **out}

    async def sharpness(self, s: Session, iters: int) -> dict[str, Any]:
        """The top Hessian eigenvalue now; each one computed is kept, so the track over training shows."""
        snap, lr = Snapshot.of(s), s.spec.training.learning_rate
        out = await self._view(opt.sharpness, snap.cfg, snap.state, snap.data, learning_rate=lr, iters=iters, seed=0)
        if not s.sharpness or s.sharpness[-1][0] != snap.epoch:
            s.sharpness.append((snap.epoch, out["top_eigenvalue"]))
            if len(s.sharpness) > self.settings.history_limit:
                s.sharpness = s.sharpness[::2]
        history = [{"epoch": e, "top_eigenvalue": v} for e, v in s.sharpness]
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
        snap, h = Snapshot.of(s), s.hyper
        out = await self._view(
            opt.race, snap.cfg, snap.state, snap.data, h, runs=runs, epochs=epochs, resolution=resolution, center=center
        )
        return {"from_epoch": snap.epoch, **out}

    async def saliency(self, s: Session, examples: list[int]) -> dict[str, Any]:
        self._cnn_only(s)
        n = int(s.data.x_test.shape[0])
        bad = [e for e in examples if not 0 <= e < n]
        if bad:
            raise Invalid(f"examples are test-image indices from 0 to {n - 1}; got {bad[0]}", ("examples",))
        snap = Snapshot.of(s)
        maps = await self._view(cx.saliency_maps, snap.cfg, snap.state, snap.data, examples)
        return {"epoch": snap.epoch, "examples": examples, "maps": maps}

    async def frame(self, s: Session) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        async with s.lock:
            arrays = await self._thread(s.engine.frame_arrays, s.cfg, s.state, s.data)
        return self.frame_message(s, arrays)

    # ------------------------------------------------------------------ frames and subscribers

    def frame_message(
        self, s: Session, arrays: dict[str, Any], snap: Snapshot | None = None
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Header (JSON-able) and arrays of a frame (of the session now, or of a snapshot); see docs/frames.md."""
        snap = snap or Snapshot.of(s)
        header = {
            "type": "frame",
            "id": s.id,
            "epoch": snap.epoch,
            "step": snap.step,
            "status": snap.status,
            "spec_version": snap.spec_version,
            "metrics": _sanitize(arrays, snap.problem),
        }
        if snap.engine is cx:
            header |= cx.frame_header(snap.cfg, snap.data)
            header["diagnosis"] = self._diagnosis(s, snap.cfg, arrays["health"])
            return header, cx.frame_payload(arrays, jax.device_get(snap.state.params))
        arch = snap.cfg.arch
        header |= {
            "kind": "mlp",
            "output_kind": arch.output,
            "output_scale": [0.0, 1.0] if arch.output == "softmax" else [-1.0, 1.0],
            "output_resolution": OUTPUT_RESOLUTION,
            "neuron_resolution": NEURON_RESOLUTION,
            "neuron_scale": [-1.0, 1.0],
            "layers": [u for u, _ in arch.hidden],
            "domain": [-6.0, 6.0],
        }
        health = arrays["health"]
        header["diagnosis"] = self._diagnosis(s, snap.cfg, health)
        out = {
            "output": arrays["output"],
            "neurons": arrays["neurons"],
            "grad_norms": np.asarray(arrays["grad_norms"], np.float32),
            "dead_fraction": np.asarray(health["dead_fraction"], np.float32),
            "saturated_fraction": np.asarray(health["saturated_fraction"], np.float32),
        }
        for i, layer in enumerate(jax.device_get(snap.state.params)):
            for name, value in layer.items():
                out[f"{name}{i}"] = np.asarray(value, np.float32)
        return header, out

    @staticmethod
    def _diagnosis(s: Session, cfg: opt.Config, health: dict[str, Any]) -> list[dict[str, Any]]:
        """A frame's diagnosis in words (the fixes come with GET .../gradients)."""
        names, t = opt.activation_names(cfg), s.spec.training
        found = diagnose(health, names, s.spec.network.init, t.learning_rate, fix_keys=opt.fix_keys(cfg))
        return [{k: d[k] for k in ("layer", "kind", "message")} for d in found]

    def publish(self, s: Session, arrays: dict[str, Any]) -> None:
        if s.subscribers:
            message = self.frame_message(s, arrays)
            for box in s.subscribers:
                box.put(message)

    def subscribe(self, s: Session) -> Mailbox:
        box = Mailbox()
        s.subscribers.add(box)
        return box

    def unsubscribe(self, s: Session, box: Mailbox) -> None:
        s.subscribers.discard(box)

    # ------------------------------------------------------------------ views

    def public(self, s: Session) -> dict[str, Any]:
        """The session's state as GET returns it (and every mutation answers with)."""
        out = {
            "id": s.id,
            "spec": s.spec.model_dump(),
            "status": s.status,
            "epoch": s.epoch,
            "step": s.step,
            "spec_version": s.spec_version,
            "metrics": s.metrics,
            "notes": s.engine.notes_for(s.spec),
        }
        if s.engine is cx:
            n = s.spec.n_classes
            out["architecture"] = {
                "inputs": ["×".join(map(str, s.spec.image_shape)) + " image"],
                "hidden": [],
                "layers": cx.architecture(s.cfg, s.data),
                "output": {"kind": "softmax", "units": n, "description": OUTPUTS["softmax"]},
                "parameters": count_params(s.state.params),
                "steps_per_epoch": s.data.steps_per_epoch,
                "n_train": int(s.data.x_train.shape[0]),
                "n_test": int(s.data.x_test.shape[0]),
            }
            return out
        arch = s.cfg.arch
        return out | {
            "architecture": {
                "inputs": list(s.spec.features),
                "hidden": [{"units": u, "activation": a} for u, a in arch.hidden],
                "output": {"kind": arch.output, "units": arch.n_outputs, "description": OUTPUTS[arch.output]},
                "parameters": count_params(s.state.params),
                "steps_per_epoch": s.data.steps_per_epoch,
                "n_train": int(s.data.x_train.shape[0]),
                "n_test": int(s.data.x_test.shape[0]),
            },
        }

    def data(self, s: Session) -> dict[str, Any]:
        """The points being learned, for drawing: [x1, x2] and labels, train and test."""
        d = s.data
        if s.engine is cx:  # images: the labels and class names (the pixels travel in frames / the export)
            return {
                "spec_version": s.spec_version,
                "problem": s.spec.problem,
                "classes": s.spec.n_classes,
                "class_names": list(d.class_names),
                "image_shape": list(s.spec.image_shape),
                "train": {"labels": d.labels_train.tolist()},
                "test": {"labels": d.labels_test.tolist()},
            }
        return {
            "spec_version": s.spec_version,
            "problem": s.spec.problem,
            "classes": s.spec.n_classes,
            "train": {"points": d.points_train.tolist(), "labels": d.labels_train.tolist()},
            "test": {"points": d.points_test.tolist(), "labels": d.labels_test.tolist()},
        }

    def weights(self, s: Session) -> dict[str, Any]:
        layers = [{k: np.asarray(v).tolist() for k, v in layer.items()} for layer in jax.device_get(s.state.params)]
        inputs = ["image"] if s.engine is cx else list(s.spec.features)
        return {"epoch": s.epoch, "spec_version": s.spec_version, "inputs": inputs, "layers": layers}
