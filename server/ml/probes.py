"""The compiled programs of the optimization views, for MLPs and CNNs alike: a loss slice in bands, a path
projected on a plane with its true and slice losses, the planes (random, init, PCA), the line between two
weight sets, the Hessian's top eigenvalue, and gradient health — the ONE definition frames and
GET .../gradients share.

Every program takes the model's static config (``train.TrainConfig`` or ``cnn.CnnTrainConfig``), which
says what the views need through the same methods (``data_loss``, ``objective``, ``activations``,
``activation_names``, ``slice_cells``, ``path_losses``): nothing here asks which kind a model is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from server.ml import health
from server.ml import landscape as ls
from server.ml.cnn import CnnTrainConfig
from server.ml.models import BnState
from server.ml.train import OPTIMIZERS, Hyper, TrainConfig, TrainState

Config = TrainConfig | CnnTrainConfig  # an MLP's or a CNN's static config
Params = ls.Params  # a params pytree (layer dicts), or a direction in it: what landscape's views take
TRAJECTORY_POINTS = 200  # rows of every path program (a path is padded to it: one compiled shape)


def flat(params: Any) -> np.ndarray:
    """The weights as one float32 vector (a trajectory point), in ``ravel_pytree``'s order: put together on
    the host from one transfer of the leaves (ravel_pytree itself runs an op per leaf, each dispatched alone)."""
    leaves = jax.tree_util.tree_leaves(jax.device_get(params))
    return (
        np.concatenate([np.ravel(np.asarray(leaf, np.float32)) for leaf in leaves])
        if leaves
        else np.zeros(0, np.float32)
    )


# ------------------------------------------------------------------------------------------ slices


@partial(jax.jit, static_argnames=("cfg",))
def _band(
    cfg: Config,
    center: Params,
    d1: Params,
    d2: Params,
    bn_state: BnState,
    x: jax.Array,
    y: jax.Array,
    alphas: jax.Array,
    betas: jax.Array,
) -> jax.Array:
    loss_fn = cfg.data_loss(bn_state, x, y)
    return ls.loss_slice(loss_fn, center, d1, d2, alphas, betas, batch_size=cfg.slice_cells)


SLICE_THREADS = min(2, os.cpu_count() or 1)
_bands = ThreadPoolExecutor(SLICE_THREADS, thread_name_prefix="slice")


def slice_grid(
    cfg: Config,
    center: Params,
    d1: Params,
    d2: Params,
    bn_state: BnState,
    x: jax.Array,
    y: jax.Array,
    span: float,
    resolution: int,
    threads: int = 1,
) -> np.ndarray:
    """The resolution² slice (rows β, columns α, both ``span`` × [−1, 1]). With ``threads`` > 1 its rows are
    cut into that many equal bands computed at once, each in its own thread (XLA runs one slice on one core;
    JAX lets go of the GIL while it computes): about twice as fast on two idle cores, the same numbers."""
    coords = jnp.linspace(-1.0, 1.0, resolution) * jnp.float32(span)
    if threads <= 1:
        return np.asarray(_band(cfg, center, d1, d2, bn_state, x, y, coords, coords))
    rows = -(-resolution // threads)  # equal bands (one compiled shape); the last one repeats its edge row
    betas = jnp.concatenate([coords, jnp.full((rows * threads - resolution,), coords[-1])])
    jobs = [
        _bands.submit(_band, cfg, center, d1, d2, bn_state, x, y, coords, betas[i * rows : (i + 1) * rows])
        for i in range(threads)
    ]
    return np.concatenate([np.asarray(job.result()) for job in jobs])[:resolution]


def evaluated(real: int, cfg: Config) -> np.ndarray:
    """Which of TRAJECTORY_POINTS rows get their losses computed: every real one, or where the model says
    its losses are dear (``path_losses``) that many, evenly spaced, the last (the current weights) included."""
    flags = np.zeros(TRAJECTORY_POINTS, bool)
    most = cfg.path_losses
    if most is None or real <= most:
        flags[:real] = True
    else:
        flags[np.round(np.linspace(0, real - 1, most)).astype(int)] = True
    return flags


@partial(jax.jit, static_argnames=("cfg",))
def path(
    cfg: Config,
    center: Params,
    d1: Params,
    d2: Params,
    bn_state: BnState,
    x: jax.Array,
    y: jax.Array,
    points: jax.Array,
    evaluate: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """For trajectory points (T, P): plane coordinates, distance off the plane, the true loss at each point
    and the slice's loss at its projection, where ``evaluate`` (T,) holds (NaN elsewhere). A model whose
    losses are cheap (``path_losses`` None) gets them in batches of 8; a dear one point by point, with a real
    branch that skips the points not asked for."""
    loss_fn = cfg.data_loss(bn_state, x, y)
    _, unravel = ravel_pytree(center)
    coords, off = ls.project_trajectory(points, center, d1, d2)
    on_plane = lambda ab: loss_fn(ls.combine(center, d1, d2, ab[0], ab[1]))  # noqa: E731
    if cfg.path_losses is None:
        nan = jnp.float32(jnp.nan)
        true = jnp.where(evaluate, jax.lax.map(lambda p: loss_fn(unravel(p)), points, batch_size=8), nan)
        return coords, off, true, jnp.where(evaluate, jax.lax.map(on_plane, coords, batch_size=8), nan)

    def where(
        ok: jax.Array, fn: Callable[[jax.Array], jax.Array], arg: jax.Array
    ) -> jax.Array:  # one forward pass when ok, none otherwise (lax.map without batching: a real branch)
        return jax.lax.cond(ok, fn, lambda _: jnp.float32(jnp.nan), arg)

    true = jax.lax.map(lambda t: where(t[1], lambda p: loss_fn(unravel(p)), t[0]), (points, evaluate))
    plane = jax.lax.map(lambda t: where(t[1], on_plane, t[0]), (coords, evaluate))
    return coords, off, true, plane


@jax.jit
def random_plane(key: jax.Array, params: Params) -> tuple[Params, Params]:
    k1, k2 = jax.random.split(key)
    return ls.filter_normalized_direction(k1, params), ls.filter_normalized_direction(k2, params)


@jax.jit
def init_plane(key: jax.Array, init_params: Params, params: Params) -> tuple[Params, Params]:
    return ls.init_plane(key, init_params, params)


@jax.jit
def pca_plane(points: jax.Array, params: Params) -> tuple[Params, Params, jax.Array]:
    return ls.pca_directions(points, params)


@partial(jax.jit, static_argnames=("cfg",))
def line(
    cfg: Config, start: Params, end: Params, bn_state: BnState, x: jax.Array, y: jax.Array, ts: jax.Array
) -> jax.Array:
    return ls.interpolate_1d(cfg.data_loss(bn_state, x, y), start, end, ts, batch_size=cfg.slice_cells)


@partial(jax.jit, static_argnames=("cfg", "iters"))
def top_eigenvalue(
    cfg: Config, params: Params, bn_state: BnState, x: jax.Array, y: jax.Array, key: jax.Array, iters: int
) -> jax.Array:
    return ls.hessian_top_eigenvalue(cfg.data_loss(bn_state, x, y), params, key, iters)


@partial(jax.jit, static_argnames=("cfg",))
def data_loss(cfg: Config, params: Params, bn_state: BnState, x: jax.Array, y: jax.Array) -> jax.Array:
    return cfg.data_loss(bn_state, x, y)(params)


# ------------------------------------------------------------------------------------------ health


def measure_health(cfg: Config, state: TrainState, x: jax.Array, y: jax.Array, h: Hyper) -> dict[str, jax.Array]:
    """Gradient health (``health.gradient_health``) — THE definition, for frames and GET .../gradients alike:
    the gradients of the training objective (data loss + penalty, batch statistics as in a training step,
    no dropout) on (x, y), the update the optimizer would make with them from its current state, and each
    layer's activations on the same examples (running statistics). Traceable: a frame program inlines it."""
    mask = jnp.ones((x.shape[0],), jnp.float32)
    grads, _ = jax.grad(cfg.objective, has_aux=True)(state.params, state.bn_state, x, y, mask, h)
    acts = cfg.activations(state.params, state.bn_state, x)
    updates, _ = OPTIMIZERS[cfg.optimizer].make(h).update(grads, state.opt_state, state.params)
    return health.gradient_health(grads, state.params, updates, acts, cfg.activation_names())


gradient_health = jax.jit(measure_health, static_argnames=("cfg",))
