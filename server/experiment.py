"""From an ExperimentSpec to the numeric objects of server/ml, and the operations on them.

Pure functions (no session state, no web): the data a spec describes, its architecture and static
training config, its traced hyperparameters, the first weights, a training advance that handles
divergence, and frames as host arrays. ``server/sessions.py`` keeps the results and serialises access.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from server.ml import datasets
from server.ml.inspect import NEURON_RESOLUTION, OUTPUT_RESOLUTION, compute_frame, predict
from server.ml.models import ACTIVATIONS, Arch, init_mlp, output_kind, transfer_params
from server.ml.train import Hyper, TrainConfig, TrainState, epoch_runs, evaluate, hyper, init_state, train_epochs
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
    runs: tuple[jax.Array, ...]  # the same epoch as train_epochs takes it (train.epoch_runs)
    grid_out: jax.Array  # (G², F)
    grid_neurons: jax.Array  # (g², F)

    padded: bool  # whether the last batch has padding rows

    @property
    def steps_per_epoch(self) -> int:
        return int(self.batches[0].shape[0])


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


def make_batches(x: np.ndarray, y: np.ndarray, b: int):
    """One epoch as whole batches: pad to a multiple of b and mark the real rows."""
    n = len(x)
    steps = math.ceil(n / b)
    pad = steps * b - n
    xs = np.concatenate([x, np.zeros((pad, x.shape[1]), np.float32)]).reshape(steps, b, x.shape[1])
    ys = np.concatenate([y, np.zeros((pad,), np.float32)]).reshape(steps, b)
    mask = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)]).reshape(steps, b)
    return jnp.asarray(xs), jnp.asarray(ys), jnp.asarray(mask)


def _points(rows, problem: str) -> tuple[np.ndarray, np.ndarray]:
    """[[x1, x2, label], ...] → points (n, 2) float32 and labels (class indices, or float targets)."""
    a = np.asarray(rows, np.float32).reshape(-1, 3)
    labels = a[:, 2].astype(np.int32) if problem == "classification" else a[:, 2]
    return a[:, :2], labels


def build_data(spec: ExperimentSpec, data_dir: Any = None, download: bool = False) -> Data:
    """Generate (or take the user's own points), split and featurize the spec's dataset; batch the training
    part. Points added by hand always go to the training set. (data_dir and download are the image engine's:
    the 2-D sets are generated, never read.)"""
    d = spec.dataset
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
    x_tr = datasets.featurize(p_tr, spec.features).astype(np.float32)
    x_te = datasets.featurize(p_te, spec.features).astype(np.float32)
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
        report = {"kept": n, "initialized": 0}
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


@dataclass(frozen=True)
class Advance:
    """What one training advance did."""

    state: TrainState
    epochs: int  # completed epochs whose weights are finite
    diverged: bool


def advance(cfg: TrainConfig, state: TrainState, data: Data, h: Hyper, epochs: int) -> Advance:
    """Train ``epochs`` epochs in one compiled call. On divergence (non-finite weights or loss) return the
    last state whose weights and training loss are finite, and how many epochs led to it."""
    done, new, ok = train_epochs(cfg, state, data.runs, h, jnp.int32(epochs), data.padded)
    done, ok = int(done), bool(ok)
    if ok:
        return Advance(new, done, False)

    # Training is deterministic, so any earlier epoch can be replayed. Weights can stay finite for a few
    # epochs after the loss has overflowed: find the last healthy epoch by bisection (rare, off the hot path).
    def replay(k: int) -> TrainState | None:
        if k == 0:
            return state
        _, s, fine = train_epochs(cfg, state, data.runs, h, jnp.int32(k), data.padded)
        return s if bool(fine) else None

    lo, hi, best = 0, done - 1, state  # epoch lo is healthy (the start state was); look in (lo, hi]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        found = replay(mid)
        if found is None:
            hi = mid - 1
        else:
            lo, best = mid, found
    return Advance(best, lo, True)


def warm(cfg: TrainConfig, state: TrainState, data: Data, h: Hyper) -> None:
    """Compile (or load from the persistent cache) the training program for these shapes by training zero
    epochs: the next real call of the same architecture runs at once."""
    jax.block_until_ready(train_epochs(cfg, state, data.runs, h, jnp.int32(0), data.padded))


def finite_or_none(v: float) -> float | None:
    return float(f"{v:.7g}") if math.isfinite(v) else None  # float32 precision, no noise digits


def metrics(cfg: TrainConfig, state: TrainState, data: Data, problem: str) -> dict[str, float | None]:
    """Train/test loss (and accuracy for classification); None where a value is not finite."""
    tr_loss, tr_acc = evaluate(cfg, state.params, state.bn_state, data.x_train, data.y_train)
    te_loss, te_acc = evaluate(cfg, state.params, state.bn_state, data.x_test, data.y_test)
    values = jax.device_get((tr_loss, te_loss, tr_acc, te_acc))
    out = {"train_loss": float(values[0]), "test_loss": float(values[1])}
    if problem == "classification":
        out |= {"train_accuracy": float(values[2]), "test_accuracy": float(values[3])}
    else:
        out |= {"train_accuracy": None, "test_accuracy": None}
    return {k: None if v is None else finite_or_none(v) for k, v in out.items()}


def frame_arrays(cfg: TrainConfig, state: TrainState, data: Data) -> dict[str, Any]:
    """A frame's arrays on the host (numpy), from one jitted call."""
    out = compute_frame(
        cfg,
        state.params,
        state.bn_state,
        data.x_train,
        data.y_train,
        data.x_test,
        data.y_test,
        data.grid_out,
        data.grid_neurons,
    )
    return jax.device_get(out)


def predict_points(cfg: TrainConfig, state: TrainState, spec: ExperimentSpec, points: np.ndarray) -> np.ndarray:
    """The network's output for raw 2-D points (n, 2)."""
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
