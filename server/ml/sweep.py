"""Many configurations of one training program at once: a sweep's group, ``vmap``ped in one compiled call.

The configurations of a group share the static config (architecture, optimizer, loss, schedule...) and the
shapes of their data; what differs between them is traced: their weights and optimizer state, their
hyperparameters (learning rate, momentum, regularization rate, dropout), their random keys, and — when
``shared`` is off — their data (other seeds, other noise). The epoch loop is shared: every epoch, each live
configuration trains one epoch of its own (``train.mlp_epoch``, ``cnn.cnn_epoch`` under ``vmap``), a
configuration whose weights stop being finite is frozen at its last finite state and leaves the count of
epochs it trained, and every ``every``-th epoch each is measured on its training and test sets in
inference mode (as ``train.evaluate``), on the device, into a (slots, P, 5) table of
``train.RECORD_COLUMNS``. The host shrinks the group between calls (stopped configurations leave it).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from server.ml.cnn import CnnArch, CnnTrainConfig, Conv, cnn_epoch, evaluate_cnn, output_shapes
from server.ml.inspect import predict
from server.ml.train import (
    RECORD_COLUMNS,
    RECORD_SLOTS,
    Batch,
    Hyper,
    TrainConfig,
    TrainState,
    _fits,
    _measured,
    finite,
    mlp_epoch,
    scheduled,
)

Config = TrainConfig | CnnTrainConfig

# XLA's CPU compiler hands reductions above a size to YNNPACK fusions, which for a vmapped playground step
# cost ten times the loop fusions they replace (bench/sweep.py: the default net from 48 to 64 configurations
# at once went from 0.2 to 1.7 µs per configuration-step, the 6×8 spiral net from 4 to 8): the population
# programs are compiled without them. (The CNN frames gain from them, so the rest of the server keeps them.)
COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}
# Even so a vmapped step is fastest while its biggest intermediate stays below about this many floats
# (bench/sweep.py: the default net 32-64 configurations at once, the spiral net 8); a bigger group trains in
# blocks of that many configurations, one after another inside the program.
BLOCK_FLOATS = 5120
MAX_BLOCK = 128


# A CNN's vmapped step gains while its biggest im2col patch matrix (batch × H_out × W_out × k²·C_in floats) stays
# below about this (bench/sweep.py ``sweep_cnn_by_block_*``, configuration·epochs per second on one core, against
# one configuration at a time: the bars net, 46k floats a step, 2.4× at 8 configurations; the small shapes net
# (92k) and the digits net (37k) 1.2-1.25× at 4 or 8; ConvNetJS's 28×28 net (784k) 1.4× at 2, slower at 4).
CNN_BLOCK_FLOATS = 1_600_000
MAX_CNN_BLOCK = 8


def cnn_block_size(arch: CnnArch, batch: int) -> int:
    """Configurations per vmapped block for a CNN trained in mini-batches of ``batch`` images: a power of two."""
    outs = output_shapes(arch.input_shape, arch.layers)
    ins = [tuple(arch.input_shape), *outs[:-1]]
    patches = [o[0] * o[1] * layer.kernel**2 * i[2] for layer, i, o in zip(arch.layers, ins, outs, strict=True)
               if isinstance(layer, Conv)]  # fmt: skip
    room = CNN_BLOCK_FLOATS // max(1, batch * max(patches, default=1))
    return min(MAX_CNN_BLOCK, 1 << max(0, room.bit_length() - 1)) if room >= 1 else 1


def block_size(batch: int, sizes: tuple[int, ...]) -> int:
    """Configurations per vmapped block for an MLP of layer ``sizes`` (inputs first) and mini-batch ``batch``:
    its biggest per-step intermediate is a layer's (batch, in, out) multiply-sum (``models.dense``)."""
    per = batch * max((a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)), default=1)
    return max(1, min(MAX_BLOCK, BLOCK_FLOATS // max(per, 1)))


class GroupData(NamedTuple):
    """What a group trains and measures on: ``train`` as the single-session program takes it (MLP: the
    runs of ``train.epoch_runs``; CNN: the batches), ``measure`` the points of a record (MLP: x, y and the
    weights (2, n) of the training and test rows; CNN: x_train, y_train, x_test, y_test). Each leaf has a
    leading configuration axis unless the group shares one dataset."""

    train: Any
    measure: Any


def mlp_group_data(runs: tuple[Batch, ...], test: tuple[jax.Array, jax.Array]) -> GroupData:
    """One configuration's MLP data as a group takes it (``stack_data`` stacks several)."""
    return GroupData(runs, _measured(runs, test))


def cnn_group_data(batches: Batch, train: tuple[Any, Any], test: tuple[Any, Any]) -> GroupData:
    return GroupData(batches, (train[0], train[1], test[0], test[1]))


def stack(trees: list[Any]) -> Any:
    """Configurations' pytrees (states, hyperparameters, data) stacked along a new leading axis (on the
    host: one transfer per leaf, not one per configuration)."""
    return jax.tree_util.tree_map(lambda *leaves: jnp.asarray(np.stack(jax.device_get(leaves))), *trees)


def take(tree: Any, index: np.ndarray) -> Any:
    """The rows ``index`` of a stacked pytree (a group after some configurations left it)."""
    idx = jnp.asarray(index, jnp.int32)
    return jax.tree_util.tree_map(lambda leaf: jnp.take(leaf, idx, axis=0), tree)


def unstack(tree: Any, k: int) -> Any:
    """Configuration ``k`` of a stacked pytree."""
    return jax.tree_util.tree_map(lambda leaf: leaf[k], tree)


def _epoch(cfg: Config, st: TrainState, data: Any, h: Hyper, padded: bool) -> tuple[TrainState, jax.Array]:
    """One epoch of one configuration → (state, whether its losses stayed finite: a CNN checks each
    batch's, an MLP its records')."""
    if isinstance(cfg, CnnTrainConfig):
        st, losses = cnn_epoch(cfg, st, data, h, padded)
        return st, jnp.isfinite(losses.sum())
    return mlp_epoch(cfg, st, data, h, padded), jnp.bool_(True)


def _measure(cfg: Config, st: TrainState, points: Any) -> jax.Array:
    """[train_loss, test_loss, train_accuracy, test_accuracy] of one configuration."""
    if isinstance(cfg, CnnTrainConfig):
        x_tr, y_tr, x_te, y_te = points
        tr_loss, tr_acc = evaluate_cnn(cfg, st.params, st.bn_state, x_tr, y_tr)
        te_loss, te_acc = evaluate_cnn(cfg, st.params, st.bn_state, x_te, y_te)
        return jnp.stack([tr_loss, te_loss, tr_acc, te_acc]).astype(jnp.float32)
    x, y, w = points
    (tr_loss, tr_acc), (te_loss, te_acc) = _fits(cfg, st, x, y, w)
    return jnp.stack([tr_loss, te_loss, tr_acc, te_acc])


def _freeze(ok: jax.Array, new: Any, old: Any) -> Any:
    """Each configuration's new state where ``ok``, its old one elsewhere."""

    def pick(a: jax.Array, b: jax.Array) -> jax.Array:
        return jnp.where(ok.reshape(ok.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree_util.tree_map(pick, new, old)


class Population(NamedTuple):
    """What ``train_population`` returns: the states, which configurations are still finite, the epochs
    each trained in the call (its weights and losses finite), and the records (RECORD_SLOTS, P, 5)."""

    states: TrainState
    alive: jax.Array
    trained: jax.Array
    records: jax.Array


def _block(
    cfg: Config,
    states: TrainState,
    alive: jax.Array,
    data: GroupData,
    h: Hyper,
    n_epochs: jax.Array,
    start: jax.Array,
    every: jax.Array,
    end: jax.Array,
    padded: bool,
    shared: bool,
) -> Population:
    """``train_population`` for one block of configurations (vmapped, records (slots, P, 5))."""
    axis = None if shared else 0
    epoch: Callable[..., tuple[TrainState, jax.Array]] = jax.vmap(
        lambda st, d, he: _epoch(cfg, st, d, he, padded), in_axes=(0, axis, 0)
    )
    measure: Callable[..., jax.Array] = jax.vmap(lambda st, d: _measure(cfg, st, d), in_axes=(0, axis))
    size = alive.shape[0]
    empty = jnp.full((RECORD_SLOTS, size, len(RECORD_COLUMNS)), jnp.nan, jnp.float32).at[:, :, 0].set(-1.0)

    def write(st: TrainState, i: jax.Array, rec: tuple[jax.Array, jax.Array]) -> tuple[Any, jax.Array]:
        records, written = rec
        values = measure(st, data.measure)  # (P, 4)
        row = jnp.concatenate([jnp.full((size, 1), i + 1, jnp.float32), values], axis=1)
        return (records.at[written].set(row), written + 1), jnp.isfinite(values[:, 0])

    Carry = tuple[jax.Array, TrainState, jax.Array, jax.Array, tuple[jax.Array, jax.Array]]

    def cond(carry: Carry) -> jax.Array:
        i, _, ok, _, _ = carry
        return (i < n_epochs) & jnp.any(ok)

    def body(carry: Carry) -> Carry:
        i, st, ok, trained, rec = carry
        he = scheduled(h, cfg.schedule, start + i)
        new, losses_ok = epoch(st, data.train, he)
        fine = ok & losses_ok & jax.vmap(finite)(new.params)
        st = _freeze(fine, new, st)
        due = ((start + i + 1) % every == 0) | (start + i + 1 == end)
        rec, measured = jax.lax.cond(due, lambda r: write(st, i, r), lambda r: (r, jnp.ones((size,), bool)), rec)
        fine = fine & measured
        return i + 1, st, fine, trained + fine.astype(jnp.int32), rec

    start_carry = (jnp.int32(0), states, alive, jnp.zeros((size,), jnp.int32), (empty, jnp.int32(0)))
    _, states, alive, trained, (records, _) = jax.lax.while_loop(cond, body, start_carry)
    return Population(states, alive, trained, records)


@partial(jax.jit, static_argnames=("cfg", "shared"), compiler_options=COMPILER_OPTIONS)
def population_outputs(cfg: TrainConfig, states: TrainState, grid: jax.Array, shared: bool = True) -> jax.Array:
    """Each MLP configuration's output over featurized grid points (G², F) — or (P, G², F) when its
    features differ — as ``inspect.predict``: (P, G²) or (P, G², K). The small decision maps of a sweep."""
    axis = None if shared else 0
    return jax.vmap(lambda st, g: predict(cfg, st.params, st.bn_state, g), in_axes=(0, axis))(states, grid)


@partial(jax.jit, static_argnames=("cfg", "padded", "shared", "block"), compiler_options=COMPILER_OPTIONS)
def train_population(
    cfg: Config,
    states: TrainState,
    alive: jax.Array,
    data: GroupData,
    h: Hyper,
    n_epochs: jax.Array,
    start: jax.Array,
    every: jax.Array,
    end: jax.Array,
    padded: bool = True,
    shared: bool = True,
    block: int = 16,
) -> Population:
    """Train every configuration of a group ``n_epochs`` epochs (traced: any count reuses the program).

    states, h, alive (P,): stacked along the configurations; data: ``GroupData``, stacked too unless
    ``shared``. ``start``: the epochs trained before (where the schedule is; the same for every
    configuration of a group). A configuration whose weights or training loss stop being finite keeps its
    last finite weights and trains no more (``alive`` false). Records: one row per configuration after
    each epoch that is a multiple of ``every`` counted from the start of training (``start`` + epochs of
    this call), and after epoch ``end`` (the last of the run), in the order made, epochs counted from the
    call's start; unused rows have epoch −1; the caller keeps the records of a call within RECORD_SLOTS.
    Calls can so be any length: the records fall on the same epochs however the run is cut. A block
    whose configurations all stopped being finite stops early.

    The configurations train in blocks of ``block``, one block after another inside the program: XLA's CPU
    kernels slow down several times over once a vmapped step's buffers pass a few dozen configurations
    (bench/sweep.py), so a bigger population is a loop over blocks of that size.
    """
    size = alive.shape[0]
    if size <= block:
        return _block(cfg, states, alive, data, h, n_epochs, start, every, end, padded, shared)
    blocks = -(-size // block)
    pad = blocks * block - size

    def split(leaf: jax.Array) -> jax.Array:
        full = jnp.concatenate([leaf, jnp.repeat(leaf[:1], pad, axis=0)]) if pad else leaf
        return full.reshape(blocks, block, *leaf.shape[1:])

    xs = jax.tree_util.tree_map(split, (states, h, data if not shared else None))
    live = jnp.concatenate([alive, jnp.zeros((pad,), bool)]).reshape(blocks, block)  # padding never trains
    xs = (xs[0], live, xs[1], xs[2])

    def one(x: tuple[Any, ...]) -> Population:
        st, ok, hb, db = x
        return _block(cfg, st, ok, data if shared else db, hb, n_epochs, start, every, end, padded, shared)

    out = jax.lax.map(one, xs)

    def join(leaf: jax.Array) -> jax.Array:
        return leaf.reshape(blocks * block, *leaf.shape[2:])[:size]

    states_out, alive_out, trained = (jax.tree_util.tree_map(join, t) for t in (out.states, out.alive, out.trained))
    records = jnp.moveaxis(out.records, 0, 1).reshape(RECORD_SLOTS, blocks * block, -1)[:, :size]
    return Population(states_out, alive_out, trained, records)
