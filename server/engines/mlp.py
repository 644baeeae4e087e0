"""The MLP engine: from an ExperimentSpec with ``network.kind = "mlp"`` to the numeric objects of server/ml.

Pure functions (no session state, no web): the data a spec describes, its architecture and static
training config, its traced hyperparameters, the first weights, a training advance that handles
divergence, metrics, frames, predictions; ``MLP`` binds them as an ``Engine`` (server/engines/base.py).
The sessions keep the results and serialise access.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from server.config import Settings
from server.engines.base import (
    CLASS_COLORS,
    THUMBNAIL,
    Advance,
    View,
    advance_with,
    diverging_rgb,
    frame_diagnosis,
    kept_records,
    sanitize,
    schedule_for,
    weight_arrays,
)
from server.errors import Invalid
from server.ml import cohort, datasets, sweep
from server.ml.inspect import NEURON_RESOLUTION, OUTPUT_RESOLUTION, compute_frame, predict
from server.ml.models import ACTIVATIONS, OUTPUTS, Arch, count_params, init_mlp, output_kind, transfer_params
from server.ml.train import (
    Batch,
    Hyper,
    TrainConfig,
    TrainState,
    epoch_runs,
    evaluate,
    hyper,
    init_state,
    record_every,
    train_epochs,
)
from server.spec import ExperimentSpec


@dataclass(frozen=True)
class Data:
    """A spec's data: raw points for drawing, featurized device arrays for training and frames."""

    points_train: np.ndarray  # (n_train, 2)
    labels_train: np.ndarray  # (n_train,) class index or regression value
    points_test: np.ndarray
    labels_test: np.ndarray
    x_train: jax.Array  # (n_train, F)
    y_train: jax.Array  # (n_train,) engine targets: ±1, class index, or value
    x_test: jax.Array
    y_test: jax.Array
    batches: tuple[jax.Array, jax.Array, jax.Array]  # x (S, B, F), y (S, B), mask (S, B): one epoch
    runs: tuple[Batch, ...]  # the same epoch as train_epochs takes it (train.epoch_runs)
    grid_out: jax.Array  # (G², F)
    grid_neurons: jax.Array  # (g², F)

    padded: bool  # whether the last batch has padding rows
    y_var: tuple[float, float] = (0.0, 0.0)  # variance of the train and test targets (a regression's R²)

    @property
    def steps_per_epoch(self) -> int:
        return int(self.batches[0].shape[0])

    @property
    def program_key(self) -> tuple[Any, ...]:
        """What the compiled training and frame programs depend on besides the config."""
        return (self.batches[0].shape, self.padded, self.x_test.shape)


def targets(labels: np.ndarray, spec: ExperimentSpec) -> np.ndarray:
    """Class indices → what the loss compares with: ±1 for two classes (TF Playground), the index for
    more classes, the value itself for regression."""
    if spec.problem == "classification" and spec.n_classes == 2:
        return (2.0 * labels - 1.0).astype(np.float32)
    return labels.astype(np.float32)


def batch_size(spec: ExperimentSpec, n_train: int) -> int:
    """The effective mini-batch: Rosenblatt's rule is online (one point at a time)."""
    b = 1 if spec.training.algorithm == "perceptron" else spec.training.batch_size
    return max(1, min(b, n_train))


def make_batches(x: np.ndarray, y: np.ndarray, b: int) -> Batch:
    """One epoch as whole batches: pad to a multiple of b and mark the real rows."""
    n = len(x)
    steps = math.ceil(n / b)
    pad = steps * b - n
    xs = np.concatenate([x, np.zeros((pad, x.shape[1]), np.float32)]).reshape(steps, b, x.shape[1])
    ys = np.concatenate([y, np.zeros((pad,), np.float32)]).reshape(steps, b)
    mask = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)]).reshape(steps, b)
    return jnp.asarray(xs), jnp.asarray(ys), jnp.asarray(mask)


def _points(rows: Sequence[Sequence[float]] | None, problem: str) -> tuple[np.ndarray, np.ndarray]:
    """[[x1, x2, label], ...] → points (n, 2) float32 and labels (class indices, or float targets)."""
    a = np.asarray(rows, np.float32).reshape(-1, 3)
    labels = a[:, 2].astype(np.int32) if problem == "classification" else a[:, 2]
    return a[:, :2], labels


def build_data(spec: ExperimentSpec, data_dir: Any = None, download: bool = False) -> Data:
    """Generate (or take the user's own points), split and featurize the spec's dataset; batch the training
    part. Points added by hand always go to the training set. (data_dir and download are the image engine's:
    the 2-D sets are generated, never read.)"""
    d = spec.dataset
    if d.name == "custom" and d.split is not None:  # the file's own split, in the file's order
        points, labels = _points(d.points, spec.problem)
        train = np.asarray([part == "train" for part in d.split])
        p_tr, l_tr, p_te, l_te = points[train], labels[train], points[~train], labels[~train]
    else:
        if d.name == "custom":
            points, labels = _points(d.points, spec.problem)
            order = np.random.default_rng(d.seed).permutation(len(points))  # then split like generated data
            points, labels = points[order], labels[order]
        else:
            points, labels = datasets.generate(d.name, d.n, d.noise / 100.0, d.seed)
        p_tr, l_tr, p_te, l_te = datasets.split(points, labels, d.train_percent)
    if d.added:
        added_points, added_labels = _points(d.added, spec.problem)
        p_tr = np.concatenate([p_tr, added_points])
        l_tr = np.concatenate([l_tr, added_labels.astype(l_tr.dtype)])
    x_tr = np.asarray(datasets.featurize(p_tr, spec.features), np.float32)
    x_te = np.asarray(datasets.featurize(p_te, spec.features), np.float32)
    y_tr, y_te = targets(l_tr, spec), targets(l_te, spec)
    batches = make_batches(x_tr, y_tr, batch_size(spec, len(x_tr)))
    return Data(
        points_train=p_tr,
        labels_train=l_tr,
        points_test=p_te,
        labels_test=l_te,
        x_train=jnp.asarray(x_tr),
        y_train=jnp.asarray(y_tr),
        x_test=jnp.asarray(x_te),
        y_test=jnp.asarray(y_te),
        batches=batches,
        runs=epoch_runs(batches),
        padded=len(x_tr) % batch_size(spec, len(x_tr)) != 0,
        y_var=(float(np.var(y_tr)), float(np.var(y_te))),
        grid_out=jnp.asarray(datasets.featurize(datasets.grid_points(OUTPUT_RESOLUTION), spec.features)),
        grid_neurons=jnp.asarray(datasets.featurize(datasets.grid_points(NEURON_RESOLUTION), spec.features)),
    )


def arch_for(spec: ExperimentSpec) -> Arch:
    """The static architecture a spec describes."""
    out, n_out = output_kind(spec.problem, spec.training.loss, spec.n_classes, spec.training.algorithm)
    return Arch(
        n_inputs=len(spec.features),
        hidden=tuple((layer.units, layer.activation) for layer in spec.network.hidden),
        output=out,
        n_outputs=n_out,
        batch_norm=spec.training.batch_norm,
    )


def config_for(spec: ExperimentSpec) -> TrainConfig:
    """The static training configuration: one compiled program per distinct value."""
    t = spec.training
    return TrainConfig(
        arch=arch_for(spec),
        optimizer=t.optimizer,
        loss=t.loss,
        regularization=t.regularization,
        algorithm=t.algorithm,
        dropout=t.dropout > 0 and bool(spec.network.hidden),
        schedule=schedule_for(spec),
    )


def hyper_for(spec: ExperimentSpec) -> Hyper:
    """The traced hyperparameters."""
    t = spec.training
    return hyper(t.learning_rate, t.momentum, t.regularization_rate, t.dropout)


def init_train_state(spec: ExperimentSpec, cfg: TrainConfig) -> TrainState:
    """First weights and optimizer state, determined by spec.seed."""
    k_init, k_run = jax.random.split(jax.random.PRNGKey(spec.seed))
    return init_state(cfg, init_mlp(k_init, cfg.arch, spec.network.init), k_run)


def carry_over(
    old_spec: ExperimentSpec, old_cfg: TrainConfig, old: TrainState, spec: ExperimentSpec, cfg: TrainConfig
) -> tuple[TrainState, dict[str, Any]]:
    """The training state after a live edit: every surviving weight kept, new ones initialized,
    optimizer state kept unless its structure changed. Returns (state, report)."""
    same_shape = old_cfg.arch.sizes == cfg.arch.sizes and old_spec.features == spec.features
    same_shape = same_shape and old_cfg.arch.batch_norm == cfg.arch.batch_norm
    if same_shape:
        params = old.params
        n = sum(int(np.prod(v.shape)) for v in jax.tree_util.tree_leaves(params))
        report: dict[str, Any] = {"kept": n, "initialized": 0}
    else:
        fresh = init_train_state(spec, cfg).params
        rows = [old_spec.features.index(f) if f in old_spec.features else None for f in spec.features]
        params, report = transfer_params(old.params, old_cfg.arch, fresh, cfg.arch, rows)
    keep_opt = same_shape and old_cfg.optimizer == cfg.optimizer
    state = init_state(cfg, params, old.key)
    if keep_opt:
        state = state._replace(opt_state=old.opt_state)
    if old_cfg.arch.hidden == cfg.arch.hidden and old_cfg.arch.batch_norm == cfg.arch.batch_norm:
        state = state._replace(bn_state=old.bn_state)
    report["optimizer_state"] = "kept" if keep_opt else "reinitialized"
    return state, report


PATH_PARAMS = 5_000  # networks up to this size record their trajectory inside the training program


def records_path(state: TrainState) -> bool:
    """Whether the training program records the weights with each record (one program per architecture:
    the play loop and REST train use the same)."""
    return count_params(state.params) <= PATH_PARAMS


def advance(
    cfg: TrainConfig, state: TrainState, data: Data, h: Hyper, epochs: int, start: int = 0, every: int | None = None
) -> Advance:
    """Train ``epochs`` epochs in one compiled call; on divergence, the last healthy state (``advance_with``).
    ``start``: the epochs trained so far (where the learning-rate schedule is). The call records the
    metrics after every ``every``-th epoch and after the last (``every`` None: only after the last)."""
    every = epochs if every is None else max(every, record_every(epochs))
    path = records_path(state)

    def train(k: int) -> tuple[int, TrainState, bool, Any]:
        if k == 0:
            return 0, state, True, None
        test = (data.x_test, data.y_test)
        # numpy scalars go to the compiled call as its arguments; jnp.int32(k) would run an op of its own each
        n, at, each = np.int32(k), np.int32(start), np.int32(max(1, every))
        out = train_epochs(cfg, state, data.runs, h, n, data.padded, at, test, each, path)
        done, new, ok, records = out
        done, ok, records = jax.device_get((done, ok, records))  # one trip to the host
        return int(done), new, bool(ok), records

    return advance_with(train, state, epochs)


def advance_many(
    cfg: TrainConfig, states: Sequence[TrainState], data: Data, hs: Sequence[Hyper], epochs: int, starts: Sequence[int]
) -> list[Advance | None]:
    """``advance`` of several sessions of this network on this data at once (``cohort.train_many``, one
    compiled call): each one's answer, or None for one whose weights stopped being finite (its caller replays
    it alone, where ``advance_with`` finds its last healthy state)."""
    n = len(states)
    sts, hss, at = cohort.pad(states), cohort.pad(hs), np.asarray(cohort.pad(starts), np.int32)
    test, k = (data.x_test, data.y_test), np.int32(epochs)
    done, new, ok, records = cohort.train_many(
        cfg, sts, data.runs, hss, k, data.padded, at, test, k, records_path(states[0])
    )
    done, ok, (rows, points) = jax.device_get((done, ok, records))  # one trip to the host
    out: list[Advance | None] = []
    for i in range(n):
        if not ok[i]:
            out.append(None)
            continue
        kept, path = kept_records((rows[i], points[i]), int(done[i]))
        out.append(Advance(new[i], int(done[i]), False, kept, path))
    return out


def frame_arrays_many(
    cfg: TrainConfig, states: Sequence[TrainState], data: Data, hs: Sequence[Hyper]
) -> list[dict[str, Any]]:
    """``frame_arrays`` of several sessions of this network on this data, from one compiled call."""
    n = len(states)
    sts, hss = cohort.pad(states), cohort.pad(hs)
    out = cohort.frames_many(
        cfg, sts, hss, data.x_train, data.y_train, data.x_test, data.y_test, data.grid_out, data.grid_neurons
    )
    host = jax.device_get(out)
    variances = {"train_y_var": data.y_var[0], "test_y_var": data.y_var[1]}  # a regression's R² (base.sanitize)
    return [jax.tree_util.tree_map(lambda a, i=i: np.asarray(a[i]), host) | variances for i in range(n)]


def warm_many(cfg: TrainConfig, state: TrainState, data: Data, h: Hyper, size: int) -> None:
    """Compile (or load) the cohort programs of ``size`` sessions of this network on this data, by training
    zero epochs and drawing once, so a class's turns never wait for the compiler."""
    sts, hss = (state,) * size, (h,) * size
    at, test, zero = np.zeros(size, np.int32), (data.x_test, data.y_test), np.int32(0)
    out = cohort.train_many(cfg, sts, data.runs, hss, zero, data.padded, at, test, np.int32(1), records_path(state))
    frames = cohort.frames_many(
        cfg, sts, hss, data.x_train, data.y_train, data.x_test, data.y_test, data.grid_out, data.grid_neurons
    )
    jax.block_until_ready((out, frames))  # type: ignore[no-untyped-call]


def warm(cfg: TrainConfig, state: TrainState, data: Data, h: Hyper) -> None:
    """Compile (or load from the persistent cache) the training program for these shapes by training zero
    epochs: the next real call of the same architecture runs at once."""
    zero, test = np.int32(0), (data.x_test, data.y_test)  # numpy scalars, as advance passes them: the same program
    out = train_epochs(cfg, state, data.runs, h, zero, data.padded, zero, test, np.int32(1), records_path(state))
    jax.block_until_ready(out)  # type: ignore[no-untyped-call]


def metrics(cfg: TrainConfig, state: TrainState, data: Data, problem: str) -> dict[str, float | None]:
    """Train/test loss (and accuracy for classification); None where a value is not finite."""
    tr_loss, tr_acc = evaluate(cfg, state.params, state.bn_state, data.x_train, data.y_train)
    te_loss, te_acc = evaluate(cfg, state.params, state.bn_state, data.x_test, data.y_test)
    values = jax.device_get((tr_loss, te_loss, tr_acc, te_acc))
    names = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")
    variances = {"train_y_var": data.y_var[0], "test_y_var": data.y_var[1]}
    return sanitize(dict(zip(names, values, strict=True)) | variances, problem)


def frame_arrays(cfg: TrainConfig, state: TrainState, data: Data, h: Hyper) -> dict[str, Any]:
    """A frame's arrays on the host (numpy), from one jitted call."""
    out = compute_frame(
        cfg, state, h, data.x_train, data.y_train, data.x_test, data.y_test, data.grid_out, data.grid_neurons
    )
    arrays: dict[str, Any] = jax.device_get(out)
    arrays["train_y_var"], arrays["test_y_var"] = data.y_var  # a regression's R² (base.sanitize)
    return arrays


def frame(
    spec: ExperimentSpec, cfg: TrainConfig, state: TrainState, data: Data, arrays: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The MLP part of a frame (docs/frames.md): its header fields and its arrays."""
    arch = cfg.arch
    header = {
        "kind": "mlp",
        "output_kind": arch.output,
        "output_scale": [0.0, 1.0] if arch.output == "softmax" else [-1.0, 1.0],
        "output_resolution": OUTPUT_RESOLUTION,
        "neuron_resolution": NEURON_RESOLUTION,
        "neuron_scale": [-1.0, 1.0],
        "layers": [u for u, _ in arch.hidden],
        "domain": [-6.0, 6.0],
        "diagnosis": frame_diagnosis(MLP, spec, cfg, arrays["health"]),
    }
    health = arrays["health"]
    out = {
        "output": arrays["output"],
        "neurons": arrays["neurons"],
        "grad_norms": np.asarray(arrays["grad_norms"], np.float32),
        "dead_fraction": np.asarray(health["dead_fraction"], np.float32),
        "saturated_fraction": np.asarray(health["saturated_fraction"], np.float32),
    }
    if "confusion" in arrays:  # classification: the test set's confusion matrix
        out["confusion"] = np.asarray(arrays["confusion"], np.int32)
    weights = arrays.get("params")  # brought with a cohort's frames (frame_arrays_many), else fetched now
    return header, out | weight_arrays(jax.device_get(state.params) if weights is None else weights)


def predict_points(cfg: TrainConfig, state: TrainState, spec: ExperimentSpec, points: np.ndarray) -> np.ndarray:
    """The network's output for raw 2-D points (n, 2): (n,) on the ±1 scale / values, or (n, K) probabilities."""
    if points.ndim != 2 or points.shape[1] != 2 or not np.isfinite(points).all():
        raise Invalid("inputs are points [x1, x2] of finite numbers", ("inputs",))
    x = jnp.asarray(datasets.featurize(points.astype(np.float32), spec.features))
    return np.asarray(predict(cfg, state.params, state.bn_state, x))


def notes_for(spec: ExperimentSpec) -> list[str]:
    """Plain-words remarks about the spec a user should know (zero-gradient activations, unused knobs)."""
    notes = []
    if spec.training.algorithm == "backprop":
        for i, layer in enumerate(spec.network.hidden):
            if ACTIVATIONS[layer.activation].zero_gradient:
                notes.append(
                    f"hidden layer {i + 1} uses '{layer.activation}', whose derivative is 0 almost everywhere:"
                    " gradient descent cannot change the weights that feed it. A network without hidden layers"
                    " trains step/sign units with training.algorithm = 'perceptron'."
                )
    else:
        notes.append("the perceptron rule updates after every single point; batch_size is not used")
    if spec.training.dropout > 0 and not spec.network.hidden:
        notes.append("dropout applies to hidden units; this network has none")
    return notes


def check_limits(spec: ExperimentSpec, settings: Settings) -> None:
    if spec.dataset.n > settings.max_points:
        raise Invalid(f"at most {settings.max_points} points on this server", ("dataset", "n"))


def data_key(spec: ExperimentSpec) -> tuple[Any, ...]:
    """What the data depend on: a change of any of it regenerates them."""
    return (spec.dataset, spec.problem, spec.features, spec.training.batch_size, spec.training.algorithm)


def architecture(spec: ExperimentSpec, cfg: TrainConfig, state: TrainState, data: Data) -> dict[str, Any]:
    """The ``architecture`` of a session's public state."""
    arch = cfg.arch
    return {
        "inputs": list(spec.features),
        "hidden": [{"units": u, "activation": a} for u, a in arch.hidden],
        "output": {"kind": arch.output, "units": arch.n_outputs, "description": OUTPUTS[arch.output]},
        "parameters": count_params(state.params),
        "steps_per_epoch": data.steps_per_epoch,
        "n_train": int(data.x_train.shape[0]),
        "n_test": int(data.x_test.shape[0]),
    }


def data_public(spec: ExperimentSpec, data: Data) -> dict[str, Any]:
    """The points being learned, for drawing: [x1, x2] and labels, train and test."""
    return {
        "problem": spec.problem,
        "classes": spec.n_classes,
        "train": {"points": data.points_train.tolist(), "labels": data.labels_train.tolist()},
        "test": {"points": data.points_test.tolist(), "labels": data.labels_test.tolist()},
    }


def view_set(cfg: TrainConfig, data: Data) -> tuple[jax.Array, jax.Array]:
    """The examples the optimization views evaluate on: the whole training set."""
    return data.x_train, data.y_train


def activation_patch(spec: ExperimentSpec, activation: str) -> dict[str, Any]:
    """A partial spec giving every hidden layer ``activation`` (a diagnosis's fix)."""
    return {"network": {"hidden": [{"units": layer.units, "activation": activation} for layer in spec.network.hidden]}}


def thumbnail(spec: ExperimentSpec, cfg: TrainConfig, state: TrainState) -> np.ndarray:
    """The decision map, THUMBNAIL pixels a side, rgb uint8 in the page's colours (a saved experiment's
    picture)."""
    out = predict_points(cfg, state, spec, datasets.grid_points(THUMBNAIL))
    if out.ndim == 2:  # class probabilities: a blend of the class colours
        rgb: np.ndarray = np.round(np.nan_to_num(out) @ CLASS_COLORS[: out.shape[1]]).astype(np.uint8)
    else:
        rgb = diverging_rgb(out)
    return rgb.reshape(THUMBNAIL, THUMBNAIL, 3)


def sweep_data(cfg: TrainConfig, data: Data) -> tuple[sweep.GroupData, int]:
    """What a sweep's group trains on (``sweep.GroupData``) and how many configurations go in a block."""
    block = sweep.block_size(int(data.batches[0].shape[1]), cfg.arch.sizes)
    return sweep.mlp_group_data(data.runs, (data.x_test, data.y_test)), block


def sweep_maps(cfg: TrainConfig, states: TrainState, grids: jax.Array, shared: bool) -> np.ndarray:
    """Each configuration's small decision map (NEURON_RESOLUTION² cells) as bytes: the output on the ±1
    scale mapped to 0-255, or the class with the highest probability (0, 1, 2)."""
    out = np.asarray(sweep.population_outputs(cfg, states, grids, shared))
    if out.ndim == 3:
        classes: np.ndarray = np.argmax(np.nan_to_num(out), axis=-1).astype(np.uint8)
        return classes
    values: np.ndarray = np.round((np.clip(np.nan_to_num(out), -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
    return values


class MlpEngine:
    """The MLP engine (``base.Engine``)."""

    name = "mlp"
    input_field = "inputs"
    fix_keys: tuple[str, ...] = ("activation", "init", "learning_rate", "batch_norm")
    views: Mapping[str, View] = {}  # no MLP-only views: the optimization views are every engine's

    check_limits = staticmethod(check_limits)
    config_for = staticmethod(config_for)
    hyper_for = staticmethod(hyper_for)
    build_data = staticmethod(build_data)
    data_key = staticmethod(data_key)
    init_train_state = staticmethod(init_train_state)
    carry_over = staticmethod(carry_over)
    advance = staticmethod(advance)
    cohorts = True  # sessions of one network on one dataset may train and draw together (advance_many)
    advance_many = staticmethod(advance_many)
    frame_arrays_many = staticmethod(frame_arrays_many)
    warm_many = staticmethod(warm_many)
    warm = staticmethod(warm)
    metrics = staticmethod(metrics)
    frame_arrays = staticmethod(frame_arrays)
    frame = staticmethod(frame)
    view_set = staticmethod(view_set)
    predict = staticmethod(predict_points)
    notes_for = staticmethod(notes_for)
    architecture = staticmethod(architecture)
    data_public = staticmethod(data_public)
    activation_patch = staticmethod(activation_patch)
    thumbnail = staticmethod(thumbnail)
    sweep_data = staticmethod(sweep_data)

    @staticmethod
    def sweep_maps(cfg: TrainConfig, states: TrainState, data: list[Data], shared: bool) -> np.ndarray | None:
        grids = data[0].grid_neurons if shared else jnp.stack([d.grid_neurons for d in data])
        return sweep_maps(cfg, states, grids, shared)

    @staticmethod
    def weight_inputs(spec: ExperimentSpec) -> list[str]:
        return list(spec.features)


MLP = MlpEngine()
