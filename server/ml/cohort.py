"""Several live sessions of one network on one dataset, trained and drawn together: the single session's
programs (``train.train_epochs``, ``inspect.compute_frame``) vmapped over the sessions' states,
hyperparameters and schedule positions. The states go in and come out as tuples, stacked and split inside
the compiled call, so a round of a class's turns costs one dispatch and one transfer instead of one per
session. A cohort is padded to one of ``SIZES`` (the pad rows train copies of the first session, and are
dropped): a few programs per network, whatever the number of sessions.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, TypeVar

import jax
import jax.numpy as jnp

from server.ml.inspect import compute_frame
from server.ml.train import Batch, Hyper, Records, TrainConfig, TrainState, train_epochs

T = TypeVar("T")
SIZES = (2, 4, 8, 16, 32)
MAX = SIZES[-1]  # sessions per cohort at most (more make two cohorts)


def padded(n: int) -> int:
    """The program size a cohort of ``n`` (2..MAX) sessions runs as."""
    return next(size for size in SIZES if size >= n)


def pad(items: Sequence[T]) -> tuple[T, ...]:
    """A cohort's items (states, hyperparameters, epochs) padded to its program's size with copies of the first."""
    return (*items, *[items[0]] * (padded(len(items)) - len(items)))


def _stack(trees: tuple[Any, ...]) -> Any:
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *trees)


@partial(jax.jit, static_argnames=("cfg", "padded", "path"))
def train_many(
    cfg: TrainConfig,
    states: tuple[TrainState, ...],
    runs: tuple[Batch, ...],
    hs: tuple[Hyper, ...],
    n_epochs: jax.Array,
    padded: bool,
    starts: jax.Array,
    test: tuple[jax.Array, jax.Array],
    every: jax.Array,
    path: bool,
) -> tuple[jax.Array, tuple[TrainState, ...], jax.Array, Records]:
    """``train_epochs`` for each session (its state, hyperparameters and ``starts[i]``) on the same data, the
    same ``n_epochs``: (epochs run (P,), the states, finite (P,), records with a leading P axis)."""

    def one(state: TrainState, h: Hyper, start: jax.Array) -> tuple[jax.Array, TrainState, jax.Array, Records]:
        return train_epochs(cfg, state, runs, h, n_epochs, padded, start, test, every, path)

    done, new, ok, records = jax.vmap(one)(_stack(states), _stack(hs), starts)
    split = tuple(jax.tree_util.tree_map(lambda leaf, i=i: leaf[i], new) for i in range(len(states)))
    return done, split, ok, records


@partial(jax.jit, static_argnames=("cfg",))
def frames_many(
    cfg: TrainConfig,
    states: tuple[TrainState, ...],
    hs: tuple[Hyper, ...],
    x_train: jax.Array,
    y_train: jax.Array,
    x_test: jax.Array,
    y_test: jax.Array,
    grid_out: jax.Array,
    grid_neurons: jax.Array,
) -> dict[str, Any]:
    """``compute_frame`` of each session on the same data: its arrays with a leading P axis, and under
    ``params`` its weights (a frame carries them: one transfer with the rest instead of one per session)."""

    def one(state: TrainState, h: Hyper) -> dict[str, Any]:
        frame = compute_frame(cfg, state, h, x_train, y_train, x_test, y_test, grid_out, grid_neurons)
        return frame | {"params": state.params}

    out: dict[str, Any] = jax.vmap(one)(_stack(states), _stack(hs))
    return out
