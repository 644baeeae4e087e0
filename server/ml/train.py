"""Losses, optimizers (optax), regularizers, and training chunks as single jitted calls.

Everything here is a pure function of (params, optimizer state, data, hyperparameters). Hyperparameters
that the user turns while training (learning rate, momentum, regularization rate, dropout rate) are
*traced* values, so changing them never recompiles; what changes the program's structure (architecture,
optimizer, loss, regularizer kind, whether dropout is on) lives in the static ``TrainConfig``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jax.typing import ArrayLike

from server.ml.models import ACTIVATIONS, BN_EPS, Arch, BnState, Params, apply_mlp, dense, init_bn_state, output_value

if TYPE_CHECKING:
    from server.ml.cnn import CnnTrainConfig

Batch = tuple[jax.Array, jax.Array, jax.Array]  # x, y, mask: one mini-batch (or a run of them, stacked)


class Hyper(NamedTuple):
    """Traced hyperparameters (float32 scalars, or vectors when vmapped over a sweep)."""

    learning_rate: jax.Array
    momentum: jax.Array
    reg_rate: jax.Array
    dropout: jax.Array


def hyper(
    learning_rate: float, momentum: float = 0.9, reg_rate: float = 0.0, dropout: float | Sequence[float] = 0.0
) -> Hyper:
    """Hyper from plain numbers; dropout is one rate (MLP) or one per dropout layer (CNN)."""
    return Hyper(*(jnp.asarray(v, jnp.float32) for v in (learning_rate, momentum, reg_rate, dropout)))


@dataclass(frozen=True)
class Optimizer:
    """One entry of the optimizer table: an optax transformation built from traced hyperparameters."""

    make: Callable[[Hyper], optax.GradientTransformation]
    uses: tuple[str, ...]  # which Hyper fields it reads
    description: str


OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": Optimizer(lambda h: optax.sgd(h.learning_rate), ("learning_rate",), "plain gradient descent"),
    "momentum": Optimizer(
        lambda h: optax.sgd(h.learning_rate, momentum=h.momentum),
        ("learning_rate", "momentum"),
        "gradient descent with heavy-ball momentum",
    ),
    "nesterov": Optimizer(
        lambda h: optax.sgd(h.learning_rate, momentum=h.momentum, nesterov=True),
        ("learning_rate", "momentum"),
        "Nesterov accelerated gradient",
    ),
    "rmsprop": Optimizer(lambda h: optax.rmsprop(h.learning_rate), ("learning_rate",), "RMSprop (decay 0.9)"),
    "adam": Optimizer(lambda h: optax.adam(h.learning_rate), ("learning_rate",), "Adam (β₁ 0.9, β₂ 0.999)"),
    "adamw": Optimizer(
        lambda h: optax.adamw(h.learning_rate, weight_decay=1e-4),
        ("learning_rate",),
        "Adam with decoupled weight decay 1e-4",
    ),
    "adagrad": Optimizer(lambda h: optax.adagrad(h.learning_rate), ("learning_rate",), "Adagrad"),
}


@dataclass(frozen=True)
class Schedule:
    """The learning rate's factor over the epochs, from optax's schedules (static: one compiled program per
    schedule; the base rate itself stays traced). ``factor_at(e)`` multiplies ``Hyper.learning_rate`` for the
    whole of epoch e (0-based: the epochs trained before it)."""

    kind: str = "constant"  # constant | step | exponential | cosine
    warmup_epochs: int = 0
    every: int = 100
    factor: float = 0.5
    epochs: int = 1000
    floor: float = 0.0

    @property
    def constant(self) -> bool:
        return self.kind == "constant" and self.warmup_epochs == 0

    def optax_schedule(self) -> optax.Schedule:
        """The schedule as optax builds it, with init value 1 (a factor of the rate)."""
        main: optax.Schedule
        if self.kind == "step":
            main = optax.exponential_decay(1.0, self.every, self.factor, staircase=True)
        elif self.kind == "exponential":
            main = optax.exponential_decay(1.0, self.every, self.factor, end_value=self.floor or None)
        elif self.kind == "cosine":
            main = optax.cosine_decay_schedule(1.0, self.epochs, alpha=self.floor)
        else:
            main = optax.constant_schedule(1.0)
        if self.warmup_epochs == 0:
            return main
        warmup = optax.linear_schedule(0.0, 1.0, self.warmup_epochs)
        return optax.join_schedules([warmup, main], [self.warmup_epochs])

    def factor_at(self, epoch: jax.Array | int) -> jax.Array:
        if self.constant:
            return jnp.ones((), jnp.float32)
        return jnp.asarray(self.optax_schedule()(epoch), jnp.float32)

    def rate(self, base: float, epoch: int) -> float:
        """The learning rate of epoch ``epoch`` on the host (what the page shows)."""
        return base if self.constant else base * float(self.factor_at(epoch))


def scheduled(h: Hyper, schedule: Schedule, epoch: jax.Array) -> Hyper:
    """The hyperparameters of one epoch: the learning rate times the schedule's factor there."""
    if schedule.constant:
        return h
    return h._replace(learning_rate=h.learning_rate * schedule.factor_at(epoch))


@dataclass(frozen=True)
class TrainConfig:
    """Static part of training: one compiled program per distinct value (shared by all sessions)."""

    arch: Arch
    optimizer: str = "sgd"
    loss: str = "mse"  # "mse" | "cross_entropy"
    regularization: str = "none"  # "none" | "l1" | "l2"
    algorithm: str = "backprop"  # "backprop" | "perceptron"
    dropout: bool = False  # whether dropout layers exist (their rate is traced)
    schedule: Schedule = Schedule()
    unroll: int = 1  # inner-scan unrolling (bench: no gain on XLA's CPU thunk runtime, twice the compile time)

    # What the views (server.ml.probes) need of a model, as methods: they never ask which kind it is.
    slice_cells: ClassVar[int] = 9  # grid cells per vmapped step of a slice (bench/landscape.py)
    path_losses: ClassVar[int | None] = None  # a path's losses at every point (they cost little)

    def data_loss(self, bn_state: BnState, x: jax.Array, y: jax.Array) -> Callable[[Any], jax.Array]:
        """The mean data loss on (x, y) as a function of the params alone (``mlp_data_loss``)."""
        return mlp_data_loss(self.arch, self.loss, x, y, bn_state)

    def objective(
        self,
        params: Params,
        bn_state: BnState,
        x: jax.Array,
        y: jax.Array,
        mask: jax.Array | None,
        h: Hyper,
        key: jax.Array | None = None,
    ) -> tuple[jax.Array, tuple[jax.Array, BnState]]:
        return objective(params, bn_state, x, y, mask, h, self, key)

    def activations(self, params: Params, bn_state: BnState, x: jax.Array) -> list[jax.Array]:
        """Each hidden layer's activations on x (running batch-norm statistics, no dropout)."""
        return apply_mlp(params, x, self.arch, bn_state=bn_state, with_activations=True)[1]["activations"]

    def activation_names(self) -> list[str | None]:
        """Each params entry's activation, the output layer left out."""
        return [a for _, a in self.arch.hidden]

    @property
    def output_name(self) -> str:
        return self.arch.output


class TrainState(NamedTuple):
    params: Params
    opt_state: optax.OptState
    bn_state: BnState
    key: jax.Array


def init_opt_state(cfg: TrainConfig | CnnTrainConfig, params: Params) -> optax.OptState:
    """Optimizer state for ``params``; its structure depends on the optimizer only, not on the values."""
    return OPTIMIZERS[cfg.optimizer].make(hyper(0.1)).init(params)


def init_state(cfg: TrainConfig, params: Params, key: jax.Array) -> TrainState:
    """A training state around given parameters."""
    return TrainState(params, init_opt_state(cfg, params), init_bn_state(cfg.arch), key)


def per_example_loss(logits: jax.Array, y: jax.Array, output: str, loss: str) -> jax.Array:
    """Loss per example, (batch,). y is ±1 for two classes, the class index for softmax, the value for
    regression."""
    if output == "sigmoid":
        return optax.sigmoid_binary_cross_entropy(logits[:, 0], (y + 1.0) * 0.5)
    if output == "softmax":
        labels = y.astype(jnp.int32)
        if loss == "cross_entropy":
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        onehot = jax.nn.one_hot(labels, logits.shape[-1])
        return 0.5 * jnp.sum((jax.nn.softmax(logits) - onehot) ** 2, axis=-1)
    # tanh, linear, sign: squared error with TF Playground's ½ factor
    return 0.5 * (output_value(logits, output) - y) ** 2


def correct(logits: jax.Array, y: jax.Array, output: str) -> jax.Array:
    """1.0 where the prediction's class is right, (batch,)."""
    if output == "softmax":
        return (jnp.argmax(logits, axis=-1) == y.astype(jnp.int32)).astype(jnp.float32)
    predicted = jnp.where(logits[:, 0] >= 0, 1.0, -1.0)  # tanh, sign: 0; sigmoid: logit 0 ↔ p = ½
    return (predicted == y).astype(jnp.float32)


def penalty(params: Params, kind: str, rate: jax.Array) -> jax.Array:
    """L1 / L2 penalty on the weights (not biases), as TF Playground: L2 = rate · ½ Σw²."""
    if kind == "none":
        return jnp.zeros((), jnp.float32)
    ws = [layer["w"] for layer in params]
    if kind == "l1":
        return rate * sum(jnp.abs(w).sum() for w in ws)
    return rate * 0.5 * sum((w * w).sum() for w in ws)


def objective(
    params: Params,
    bn_state: BnState,
    x: jax.Array,
    y: jax.Array,
    mask: jax.Array | None,
    h: Hyper,
    cfg: TrainConfig,
    key: jax.Array | None = None,
) -> tuple[jax.Array, tuple[jax.Array, BnState]]:
    """Mean data loss over the real rows of a batch plus the penalty; aux: data loss and the updated
    batch-norm statistics. ``mask`` (batch,) marks real rows of a padded batch; None = all rows real."""
    logits, extras = apply_mlp(
        params, x, cfg.arch, bn_state=bn_state, train=True, dropout=h.dropout, key=key, mask=mask
    )
    per = per_example_loss(logits, y, cfg.arch.output, cfg.loss)
    data_loss = per.mean() if mask is None else jnp.sum(per * mask) / jnp.maximum(jnp.sum(mask), 1.0)
    return data_loss + penalty(params, cfg.regularization, h.reg_rate), (data_loss, extras["bn_state"])


def _sgd_update(
    state: TrainState, batch: Batch, h: Hyper, cfg: TrainConfig, padded: bool = True
) -> tuple[TrainState, jax.Array]:
    """One mini-batch update → (new state, the batch's data loss before the update)."""
    mask: jax.Array | None
    x, y, mask = batch
    mask = mask if padded else None  # a static choice: whole batches skip the masking arithmetic
    key, sub = jax.random.split(state.key) if cfg.dropout else (state.key, None)
    grads, (loss, bn_state) = jax.grad(objective, has_aux=True)(state.params, state.bn_state, x, y, mask, h, cfg, sub)
    opt = OPTIMIZERS[cfg.optimizer].make(h)
    updates, opt_state = opt.update(grads, state.opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), opt_state, bn_state, key), loss


def _perceptron_update(
    state: TrainState, batch: Batch, h: Hyper, cfg: TrainConfig, padded: bool = True
) -> tuple[TrainState, jax.Array]:
    """Rosenblatt's rule w ← w + η (t − o) x, summed over the batch (batch size 1 = the online rule)."""
    x, y, mask = batch  # (b, F), (b,) ±1, (b,)
    layer = state.params[0]
    o = jnp.where(dense(x, layer["w"])[:, 0] + layer["b"][0] >= 0, 1.0, -1.0)
    delta = h.learning_rate * (y - o) * mask  # 0 where the point is already right
    new = {"w": layer["w"] + (x * delta[:, None]).sum(0)[:, None], "b": layer["b"] + delta.sum()}
    return state._replace(params=[new]), jnp.zeros((), jnp.float32)


def sgd_step(state: TrainState, batch: Batch, h: Hyper, cfg: TrainConfig, padded: bool = True) -> TrainState:
    """One mini-batch update: loss, gradients, optimizer, new params — a pure function."""
    return _sgd_update(state, batch, h, cfg, padded)[0]


def perceptron_step(state: TrainState, batch: Batch, h: Hyper, cfg: TrainConfig, padded: bool = True) -> TrainState:
    """One application of the perceptron rule to a batch — a pure function."""
    return _perceptron_update(state, batch, h, cfg, padded)[0]


def finite(tree: Any) -> jax.Array:
    """True when every leaf is finite: one fused sum (a NaN or Inf anywhere makes the sum non-finite)."""
    return jnp.isfinite(sum(jnp.sum(leaf) for leaf in jax.tree_util.tree_leaves(tree)))


# XLA's CPU runtime runs a loop body's kernels back to back, without scheduling them as a graph, when every
# buffer they touch is at most this many bytes (its ThunkExecutor's threshold). A playground MLP's step then
# costs ~0.4 µs instead of ~0.7 µs — but one epoch's stacked batches are bigger than that, so the epoch is
# fed to the step loop in runs of a few steps, each its own small buffer (bench: 1.8× the epochs/s on the
# default net, 1.4× on the biggest, 2-3.5× with adam).
SEQUENTIAL_BYTES = 512
MAX_RUNS = 64  # a longer switch costs compile time (250 runs: +0.8 s) and gains nothing measurable


def epoch_runs(batches: Sequence[ArrayLike]) -> tuple[Batch, ...]:
    """One epoch's stacked batches (x (S, B, F), y (S, B), mask (S, B)) as ``train_epochs`` takes them:
    runs of whole steps, in order, each run's x, y and mask their own arrays of at most
    ``SEQUENTIAL_BYTES``. One run, the whole epoch, when a single step is already bigger (or the runs
    would be too many). Split on the host once per dataset: slicing inside the compiled call would cost
    a compiled kernel per run."""
    x, y, mask = (np.asarray(a, np.float32) for a in batches)
    steps = x.shape[0]
    fit = SEQUENTIAL_BYTES // x[0].nbytes  # x is the biggest of the three
    k = max((d for d in range(1, min(fit, steps) + 1) if steps % d == 0), default=steps)
    if steps // k > MAX_RUNS:
        k = steps
    return tuple(
        (jnp.asarray(x[i : i + k]), jnp.asarray(y[i : i + k]), jnp.asarray(mask[i : i + k])) for i in range(0, steps, k)
    )


def mlp_epoch(cfg: TrainConfig, state: TrainState, runs: tuple[Batch, ...], h: Hyper, padded: bool) -> TrainState:
    """One epoch over ``runs`` (``epoch_runs``) with this epoch's hyperparameters: the body of
    ``train_epochs``, and what a sweep vmaps over its configurations (server.ml.sweep)."""
    update = _perceptron_update if cfg.algorithm == "perceptron" else _sgd_update

    def run_steps(st: TrainState, i: jax.Array) -> tuple[TrainState, None]:
        run = runs[0] if len(runs) == 1 else jax.lax.switch(i, [lambda r=r: r for r in runs])
        st, _ = jax.lax.scan(lambda s, b: (update(s, b, h, cfg, padded)[0], None), st, run, unroll=cfg.unroll)
        return st, None

    return jax.lax.scan(run_steps, state, jnp.arange(len(runs)))[0]


RECORD_SLOTS = 100  # history records one call of train_epochs can return (the host picks ``every`` to fit)
RECORD_COLUMNS = ("epoch", "train_loss", "test_loss", "train_accuracy", "test_accuracy")


def record_every(epochs: int, slots: int = RECORD_SLOTS) -> int:
    """The record interval that fits ``epochs`` epochs' records into ``slots`` rows."""
    return max(1, -(-epochs // slots))


def _fits(cfg: TrainConfig, st: TrainState, x: jax.Array, y: jax.Array, weights: jax.Array) -> jax.Array:
    """Mean data loss and accuracy over each row of ``weights`` (k, n) — which of the n points count —
    from one forward pass in inference mode (as ``evaluate``): (k, 2); NaN where a row counts none."""
    logits, _ = apply_mlp(st.params, x, cfg.arch, bn_state=st.bn_state)
    per = jnp.stack([per_example_loss(logits, y, cfg.arch.output, cfg.loss), correct(logits, y, cfg.arch.output)])
    return (weights @ per.T) / jnp.sum(weights, axis=1, keepdims=True)


def _measured(
    runs: tuple[Batch, ...], test: tuple[jax.Array, jax.Array] | None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The points a record measures, for ``_fits``: the training set as the loop sees it (padding rows weigh
    nothing) and the test set after it, with the weights (2, n) of each; no test set: its row weighs none."""
    x, y, w = (jnp.concatenate([run[i] for run in runs]) for i in range(3))
    x, y, w = x.reshape(-1, x.shape[-1]), y.reshape(-1), w.reshape(-1)
    if test is None or test[0].shape[0] == 0:
        return x, y, jnp.stack([w, jnp.zeros_like(w)])  # the test columns come out NaN (0 / 0)
    n = test[0].shape[0]
    x, y = jnp.concatenate([x, test[0]]), jnp.concatenate([y, test[1]])
    return x, y, jnp.stack([jnp.concatenate([w, jnp.zeros(n)]), jnp.concatenate([jnp.zeros_like(w), jnp.ones(n)])])


Records = tuple[jax.Array, jax.Array]  # rows (RECORD_SLOTS, 5) and weights (RECORD_SLOTS or 0, n_params)
Write = Callable[[TrainState, jax.Array, Records], Records]


def _recorder(
    cfg: TrainConfig,
    state: TrainState,
    runs: tuple[Batch, ...],
    test: tuple[jax.Array, jax.Array] | None,
    every: jax.Array | int,
    path: bool,
) -> tuple[Write, Records]:
    """How ``train_epochs`` records (inside its loop): the write of epoch i's record, and the empty records."""
    x, y, w = _measured(runs, test)

    def measure(st: TrainState, i: jax.Array) -> jax.Array:
        (tr_loss, tr_acc), (te_loss, te_acc) = _fits(cfg, st, x, y, w)
        return jnp.stack([(i + 1).astype(jnp.float32), tr_loss, te_loss, tr_acc, te_acc]).astype(jnp.float32)

    def write(st: TrainState, i: jax.Array, rec: Records) -> Records:
        rows, points = rec
        k = i // every
        return rows.at[k].set(measure(st, i)), points.at[k].set(ravel_pytree(st.params)[0]) if path else points

    empty = jnp.full((RECORD_SLOTS, len(RECORD_COLUMNS)), jnp.nan, jnp.float32).at[:, 0].set(-1.0)
    size = ravel_pytree(state.params)[0].size if path else 0
    return write, (empty, jnp.zeros((RECORD_SLOTS if path else 0, size), jnp.float32))


@partial(jax.jit, static_argnames=("cfg", "padded", "path"))
def train_epochs(
    cfg: TrainConfig,
    state: TrainState,
    runs: tuple[Batch, ...],
    h: Hyper,
    n_epochs: jax.Array,
    padded: bool = True,
    start: jax.Array | int = 0,
    test: tuple[jax.Array, jax.Array] | None = None,
    every: jax.Array | int = 1,
    path: bool = False,
) -> tuple[jax.Array, TrainState, jax.Array, Records]:
    """Run up to ``n_epochs`` epochs in one compiled call, recording the losses and accuracies on the way.

    runs: one epoch from ``epoch_runs`` — whole batches, the last padded, in order; ``padded=False``
    promises every row is real. ``n_epochs`` is traced, so any count reuses the same program. Stops after
    the first epoch that leaves non-finite weights. Returns (epochs_run, state, finite, records); when not
    finite, the state before the bad epoch is the input state trained for ``epochs_run - 1`` epochs (the
    run is deterministic), which keeps the hot loop free of copies. ``start``: the epochs trained before
    this call (where the learning-rate schedule is).

    records: (RECORD_SLOTS, 5) float32, one row (``RECORD_COLUMNS``: the epoch counted from the call's
    start, the loss and accuracy on the whole training set, then on ``test`` — (x, y), NaN without one)
    after every ``every``-th epoch and after the last, made on the device so a long call needs no trip to
    the host for its history. Unused rows have epoch −1. The caller keeps ``ceil(n_epochs / every) <=
    RECORD_SLOTS``. With ``path``, the weights too, flattened (``ravel_pytree``: a trajectory point), one
    row (RECORD_SLOTS, n_params) per record: the records are the pair (rows, points).
    """
    write, start_records = _recorder(cfg, state, runs, test, every, path)
    Carry = tuple[jax.Array, TrainState, jax.Array, Records]

    def cond(carry: Carry) -> jax.Array:
        i, _, ok, _ = carry
        return (i < n_epochs) & ok

    def body(carry: Carry) -> Carry:
        i, st, _, records = carry
        st = mlp_epoch(cfg, st, runs, scheduled(h, cfg.schedule, start + i), padded)
        due = ((i + 1) % every == 0) | (i + 1 == n_epochs)
        records = jax.lax.cond(due, lambda r: write(st, i, r), lambda r: r, records)
        # A non-finite loss makes the next gradients, hence the weights, non-finite: checking the weights
        # once per epoch catches both; the last record's training loss is checked below.
        return i + 1, st, finite(st.params), records

    done, state, ok, records = jax.lax.while_loop(cond, body, (jnp.int32(0), state, jnp.bool_(True), start_records))
    # Weights can stay finite for a few epochs after the loss has overflowed: the result's training loss
    # (its record, made in the same call) must be finite too.
    last = records[0][jnp.maximum(done - 1, 0) // every, 1]
    return done, state, ok & ((done == 0) | jnp.isfinite(last)), records


@partial(jax.jit, static_argnames=("cfg",))
def evaluate(
    cfg: TrainConfig, params: Params, bn_state: BnState, x: jax.Array, y: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Mean data loss and accuracy of ``params`` on (x, y) (no dropout, running batch-norm statistics)."""
    logits, _ = apply_mlp(params, x, cfg.arch, bn_state=bn_state)
    loss = per_example_loss(logits, y, cfg.arch.output, cfg.loss).mean()
    return loss, correct(logits, y, cfg.arch.output).mean()


def mlp_data_loss(
    arch: Arch, loss: str, x: jax.Array, y: jax.Array, bn_state: BnState | None = None
) -> Callable[[Any], jax.Array]:
    """The mean data loss of ``train.evaluate`` (no dropout, running batch-norm statistics, no penalty) as
    a function of the params alone, for slices and Hessians of MLPs.

    Computed features × batch (examples on the minor axis): vmapped over thousands of parameter sets,
    each layer is then an (out, in) × (in, batch) product with a wide minor dimension, which XLA's CPU
    backend runs about twice as fast as ``apply_mlp``'s (batch, in) × (in, out) (bench/landscape.py).
    """
    xt = jnp.asarray(x).T  # (features, batch)

    def wt_h(w: jax.Array, h: jax.Array) -> jax.Array:
        return jax.lax.dot_general(w, h, (((0,), (0,)), ((), ())))  # wᵀh: (in, out), (in, batch) → (out, batch)

    def loss_fn(params: Any) -> jax.Array:
        h = xt
        for i, (_, act) in enumerate(arch.hidden):
            p = params[i]
            z = wt_h(p["w"], h) + p["b"][:, None]  # (units, batch)
            if arch.batch_norm:
                assert bn_state is not None, "a batch-norm MLP's loss needs its bn_state"
                s = bn_state[i]
                z = (z - s["mean"][:, None]) * jax.lax.rsqrt(s["var"] + BN_EPS)[:, None]
                z = z * p["gamma"][:, None] + p["beta"][:, None]
            h = ACTIVATIONS[act].fn(z)
        out = params[-1]
        # a dot here too: a broadcast multiply-sum is ~3× slower under vmap (bench/landscape.py)
        logits = wt_h(out["w"], h) + out["b"][:, None]  # (n_outputs, batch)
        return per_example_loss(logits.T, y, arch.output, loss).mean()

    return loss_fn
