"""Inside the optimization, for a session: the loss surface around the current weights along two directions,
the path training took projected on it (with the true loss along the path and the distance off the plane),
the straight line from the initial weights, per-layer gradient health with plain-words diagnoses, and the
sharpness (the Hessian's top eigenvalue). Pure functions of (config, state, data, ...) over
``server.ml.landscape``; every array comes back as plain lists, non-finite values as None ("off scale").

MLP and CNN sessions alike: ``_loss_fn``, ``view_set`` and ``activation_names`` hold what differs between the
engines. A CNN's views evaluate the loss on its first training images (``cnn_experiment.view_set``: a
forward pass per grid cell over every image would take seconds); an MLP's on its whole training set.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from server import cnn_experiment as cx
from server import experiment as ex
from server.experiment import Data, finite_or_none
from server.ml import health
from server.ml import landscape as ls
from server.ml.cnn import CnnTrainConfig, apply_cnn, cnn_objective
from server.ml.models import apply_mlp
from server.ml.train import OPTIMIZERS, Hyper, TrainConfig, TrainState, init_opt_state, objective

DIRECTIONS = ("random", "pca", "init")
TRAJECTORY_POINTS = 200  # snapshots of the weights kept per session (thinned evenly over a long run)
MAX_TRAJECTORY_PARAMS = 100_000  # networks with more parameters keep no trajectory (memory)
CNN_PATH_LOSSES = 24  # a CNN path's true and slice losses at this many points (evenly spaced, the last too)

Config = TrainConfig | CnnTrainConfig  # an MLP or a CNN engine's static config


def is_cnn(cfg: Config) -> bool:
    return isinstance(cfg, CnnTrainConfig)


def _loss_fn(cfg: Config, bn_state, x, y) -> ls.LossFn:
    if is_cnn(cfg):
        return ls.cnn_data_loss(cfg.arch, x, y, bn_state, cfg.conv)
    return ls.mlp_data_loss(cfg.arch, cfg.loss, x, y, bn_state)


def _cells(cfg: Config) -> int:
    """Grid cells per vmapped step: one for a CNN (its im2col patches over the images are big already)."""
    return 1 if is_cnn(cfg) else ls.DEFAULT_BATCH


def view_set(cfg: Config, data) -> tuple[jax.Array, jax.Array]:
    """The examples the views evaluate the training loss on."""
    return cx.view_set(data) if is_cnn(cfg) else (data.x_train, data.y_train)


def activation_names(cfg: Config) -> list[str | None]:
    """Each params entry's activation (None for layers without one), the output layer left out."""
    return cx.activation_names(cfg.arch) if is_cnn(cfg) else [a for _, a in cfg.arch.hidden]


def output_name(cfg: Config) -> str:
    return "softmax" if is_cnn(cfg) else cfg.arch.output


def fix_keys(cfg: Config) -> tuple[str, ...]:
    """The spec keys a diagnosis's fixes may use: a CNN has no init choice or MLP-style batch-norm switch."""
    return ("activation", "learning_rate") if is_cnn(cfg) else ("activation", "init", "learning_rate", "batch_norm")


def flat(params) -> np.ndarray:
    """The weights as one float32 vector (a trajectory point)."""
    return np.asarray(ravel_pytree(params)[0], np.float32)


# ------------------------------------------------------------------------------------------ compiled


@partial(jax.jit, static_argnames=("cfg",))
def _band(cfg: Config, center, d1, d2, bn_state, x, y, alphas, betas):
    return ls.loss_slice(_loss_fn(cfg, bn_state, x, y), center, d1, d2, alphas, betas, batch_size=_cells(cfg))


SLICE_THREADS = min(2, os.cpu_count() or 1)
_bands = ThreadPoolExecutor(SLICE_THREADS, thread_name_prefix="slice")


def slice_grid(cfg: Config, center, d1, d2, bn_state, x, y, span: float, resolution: int, threads: int = 1):
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


@partial(jax.jit, static_argnames=("cfg",))
def _path(cfg: Config, center, d1, d2, bn_state, x, y, points, evaluate):
    """For trajectory points (T, P): plane coordinates, distance off the plane, the true loss at each point
    and the slice's loss at its projection. A CNN's losses only where ``evaluate`` (T,) holds (NaN elsewhere);
    an MLP's everywhere (they cost little)."""
    loss_fn = _loss_fn(cfg, bn_state, x, y)
    _, unravel = ravel_pytree(center)
    coords, off = ls.project_trajectory(points, center, d1, d2)
    if not is_cnn(cfg):
        true = jax.lax.map(lambda p: loss_fn(unravel(p)), points, batch_size=8)
        plane = jax.lax.map(lambda ab: loss_fn(ls.combine(center, d1, d2, ab[0], ab[1])), coords, batch_size=8)
        return coords, off, true, plane

    def where(ok, fn, arg):  # one forward pass when ok, none otherwise (lax.map without batching: a real branch)
        return jax.lax.cond(ok, fn, lambda _: jnp.float32(jnp.nan), arg)

    true = jax.lax.map(lambda t: where(t[1], lambda p: loss_fn(unravel(p)), t[0]), (points, evaluate))
    on_plane = lambda ab: loss_fn(ls.combine(center, d1, d2, ab[0], ab[1]))  # noqa: E731
    plane = jax.lax.map(lambda t: where(t[1], on_plane, t[0]), (coords, evaluate))
    return coords, off, true, plane


def _evaluated(real: int, cfg: Config) -> np.ndarray:
    """Which of TRAJECTORY_POINTS rows get their losses computed: every real one for an MLP; for a CNN at
    most CNN_PATH_LOSSES, evenly spaced, the last (the current weights) included."""
    flags = np.zeros(TRAJECTORY_POINTS, bool)
    if not is_cnn(cfg) or real <= CNN_PATH_LOSSES:
        flags[:real] = True
    else:
        flags[np.round(np.linspace(0, real - 1, CNN_PATH_LOSSES)).astype(int)] = True
    return flags


@jax.jit
def _random_plane(key, params):
    k1, k2 = jax.random.split(key)
    return ls.filter_normalized_direction(k1, params), ls.filter_normalized_direction(k2, params)


@jax.jit
def _init_plane(key, init_params, params):
    return ls.init_plane(key, init_params, params)


@jax.jit
def _pca_plane(points, params):
    return ls.pca_directions(points, params)


@partial(jax.jit, static_argnames=("cfg",))
def _line(cfg: Config, start, end, bn_state, x, y, ts):
    return ls.interpolate_1d(_loss_fn(cfg, bn_state, x, y), start, end, ts, batch_size=_cells(cfg))


@partial(jax.jit, static_argnames=("cfg", "iters"))
def _sharpness(cfg: Config, params, bn_state, x, y, key, iters: int):
    return ls.hessian_top_eigenvalue(_loss_fn(cfg, bn_state, x, y), params, key, iters)


@partial(jax.jit, static_argnames=("cfg",))
def _health(cfg: Config, state: TrainState, x, y, h: Hyper):
    """Gradients of the view set's objective, the update the optimizer would make with them, and each
    layer's activations on the same examples: one call."""
    mask = jnp.ones((x.shape[0],), jnp.float32)
    if is_cnn(cfg):
        grads, _ = jax.grad(cnn_objective, has_aux=True)(state.params, state.bn_state, x, y, mask, h, cfg)
        _, extras = apply_cnn(state.params, x, cfg.arch, bn_state=state.bn_state, with_activations=True, conv=cfg.conv)
    else:
        grads, _ = jax.grad(objective, has_aux=True)(state.params, state.bn_state, x, y, mask, h, cfg)
        _, extras = apply_mlp(state.params, x, cfg.arch, bn_state=state.bn_state, with_activations=True)
    updates, _ = OPTIMIZERS[cfg.optimizer].make(h).update(grads, state.opt_state, state.params)
    return health.gradient_health(grads, state.params, updates, extras["activations"], activation_names(cfg))


# ------------------------------------------------------------------------------------------ views


def _clean(a: Any) -> Any:
    """Numbers as lists with None for NaN/Inf (nested)."""
    arr = np.asarray(a, np.float64)
    if arr.ndim == 0:
        return finite_or_none(float(arr))
    return [_clean(v) for v in arr]


def landscape(
    cfg: Config,
    state: TrainState,
    data: Data,
    *,
    directions: str,
    resolution: int,
    span: float | None,
    seed: int,
    init_params: Any,
    trajectory: list[tuple[int, np.ndarray]],
    threads: int = 1,
) -> dict[str, Any]:
    """The training loss over a resolution² grid of center + α·d1 + β·d2, α, β ∈ [−span, span], centred on
    the current weights, and the trajectory on the same plane; the grid in ``threads`` bands at once.

    directions: "random" two filter-normalized random directions (Li et al. 2018; biases and batch-norm
    parameters left out), "pca" the top two principal directions of the recorded trajectory (unit vectors:
    coordinates are distances in weight space), "init" d1 = current − initial weights (α = −1 is the
    initial point) and a filter-normalized random d2 orthogonal to it. ``span`` None: 1 for random, 1.25
    for init, 1.25 × the trajectory's extent for pca.
    """
    center, bn = state.params, state.bn_state
    key = jax.random.PRNGKey(seed)
    # Always TRAJECTORY_POINTS rows (one compiled program, whatever the path's length), padded with the
    # centre: a zero deviation, which neither PCA nor the projection notices.
    here = flat(center)
    points = np.stack([p for _, p in trajectory]) if trajectory else here[None]
    real = len(points)
    points = np.concatenate([points, np.broadcast_to(here, (TRAJECTORY_POINTS - real, here.size))])
    explained = None
    if directions == "random":
        d1, d2 = _random_plane(key, center)
    elif directions == "init":
        d1, d2 = _init_plane(key, init_params, center)
    else:
        d1, d2, ratios = _pca_plane(jnp.asarray(points), center)
        explained = _clean(ratios)
    x, y = view_set(cfg, data)
    evaluate = jnp.asarray(_evaluated(real, cfg))
    coords, off, true, plane = _path(cfg, center, d1, d2, bn, x, y, jnp.asarray(points), evaluate)
    coords, off, true, plane = (np.asarray(a)[:real] for a in (coords, off, true, plane))
    if span is None:
        extent = float(np.abs(coords).max()) if directions == "pca" and len(coords) else 0.0
        span = {"random": 1.0, "init": 1.25}.get(directions, 1.25 * extent) or 1.0
    grid = slice_grid(cfg, center, d1, d2, bn, x, y, span, resolution, threads)
    finite = grid[np.isfinite(grid)]
    mid = resolution // 2
    return {
        "directions": directions,
        "resolution": resolution,
        "span": span,
        "coordinates": _clean(np.linspace(-span, span, resolution)),
        "loss": _clean(grid),  # rows: β from −span up; columns: α; None = off scale
        "loss_min": finite_or_none(float(finite.min())) if finite.size else None,
        "loss_max": finite_or_none(float(finite.max())) if finite.size else None,
        "off_scale": int(grid.size - finite.size),
        "center_loss": finite_or_none(float(grid[mid, mid])),
        "explained_variance": explained,
        "examples": int(x.shape[0]),
        "trajectory": {
            "epochs": [e for e, _ in trajectory],
            "alpha": _clean(coords[:, 0]),
            "beta": _clean(coords[:, 1]),
            "true_loss": _clean(true),
            "plane_loss": _clean(plane),
            "off_plane": _clean(off),
        },
    }


def interpolation(cfg: Config, state: TrainState, data: Data, *, init_params: Any, steps: int) -> dict[str, Any]:
    """The training loss along the straight line from the initial weights (t = 0) to the current (t = 1),
    a quarter beyond each end."""
    ts = np.linspace(-0.25, 1.25, steps, dtype=np.float32)
    x, y = view_set(cfg, data)
    losses = _line(cfg, init_params, state.params, state.bn_state, x, y, jnp.asarray(ts))
    return {"t": _clean(ts), "loss": _clean(losses), "examples": int(x.shape[0])}


def sharpness(cfg: Config, state: TrainState, data: Data, *, learning_rate: float, iters: int, seed: int):
    """The Hessian's top eigenvalue of the training loss (power iteration) and gradient descent's
    stability line 2 / learning rate (plain GD diverges along directions sharper than that)."""
    x, y = view_set(cfg, data)
    value = _sharpness(cfg, state.params, state.bn_state, x, y, jax.random.PRNGKey(seed), iters)
    return {
        "top_eigenvalue": finite_or_none(float(value)),
        "stability_threshold": 2.0 / learning_rate,
        "iters": iters,
        "examples": int(x.shape[0]),
    }


def gradients(cfg: Config, state: TrainState, data: Data, h: Hyper, *, init: str) -> dict[str, Any]:
    """Per-layer gradient health on the training set and what it means in plain words, with fixes."""
    x, y = view_set(cfg, data)
    numbers = jax.device_get(_health(cfg, state, x, y, h))
    names = activation_names(cfg)
    numeric = ("grad_norm", "weight_norm", "update_ratio", "dead_fraction", "saturated_fraction")
    layers = []
    for i, layer in enumerate(np.asarray(numbers["layer"]).tolist()):
        row = {
            "layer": layer,
            "units": int(numbers["units"][i]),
            "activation": names[layer] if layer < len(names) else output_name(cfg),
        }
        row |= {k: finite_or_none(float(numbers[k][i])) for k in numeric}
        row |= {k: int(numbers[k][i]) for k in ("nonfinite_grads", "nonfinite_params")}
        layers.append(row)
    diagnosis = health.diagnose(numbers, names, init, float(h.learning_rate), fix_keys=fix_keys(cfg))
    return {"layers": layers, "diagnosis": diagnosis, "examples": int(x.shape[0])}


# ------------------------------------------------------------------------------------------ the race

RACE_SNAPSHOTS = 40  # points of each run's path (plus its start)
MAX_RACE_RUNS = 6


@partial(jax.jit, static_argnames=("cfg",))
def _train_loss(cfg: Config, params, bn_state, x, y):
    return _loss_fn(cfg, bn_state, x, y)(params)


def race(
    cfg: Config,
    state: TrainState,
    data: Data,
    h: Hyper,
    *,
    runs: list[dict[str, Any]],
    epochs: int,
    resolution: int,
    center: int | None,
) -> dict[str, Any]:
    """Copies of the network from the same weights (the session's now), on the same batches, each trained
    ``epochs`` epochs with its own optimizer / learning rate / momentum; their paths on one shared plane —
    the top-2 PCA directions of every run's movement together — with the loss over it and each run's loss
    curve. The plane is centred on the runs' mean final weights, or on run ``center``'s (then a warning:
    the plane favours that run; the others' losses on it are not their own).

    ``runs``: [{"optimizer", "learning_rate", "momentum"?}, ...]. Training here never touches the session.
    """
    per_chunk = max(1, -(-epochs // RACE_SNAPSHOTS))
    engine = cx if is_cnn(cfg) else ex
    x, y = view_set(cfg, data)
    paths, curves, notes = [], [], []
    for run in runs:
        run_cfg = dataclasses.replace(cfg, optimizer=run["optimizer"])
        run_h = h._replace(
            learning_rate=jnp.float32(run["learning_rate"]), momentum=jnp.float32(run.get("momentum", h.momentum))
        )
        st = TrainState(state.params, init_opt_state(run_cfg, state.params), state.bn_state, state.key)
        points, curve, done, diverged = [flat(st.params)], [], 0, False
        curve.append((0, float(_train_loss(cfg, st.params, st.bn_state, x, y))))
        while done < epochs and not diverged:
            step = engine.advance(run_cfg, st, data, run_h, min(per_chunk, epochs - done))
            st, done, diverged = step.state, done + step.epochs, step.diverged
            points.append(flat(st.params))
            loss = float(_train_loss(cfg, st.params, st.bn_state, x, y))
            curve.append((done, loss))
            if diverged:
                notes.append(f"{_label(run)} diverged after {done} epochs (its last finite weights are shown)")
        paths.append(np.stack(points))
        curves.append(curve)
    everything = np.concatenate(paths)
    if center is None:
        middle = np.mean([p[-1] for p in paths], axis=0)
    else:
        middle = paths[center][-1]
        notes.append(
            f"the plane is centred on {_label(runs[center])}'s final weights: it favours that run — the others' "
            "paths may lie off it and their loss on it is not their own (the distance off the plane says how far)"
        )
    _, unravel = ravel_pytree(state.params)
    middle_params = unravel(jnp.asarray(middle))
    pad = (RACE_SNAPSHOTS + 1) * MAX_RACE_RUNS - len(everything)  # fixed rows: one compiled PCA for any race
    stacked = np.concatenate([everything, np.broadcast_to(middle, (pad, middle.size))])
    d1, d2, ratios = _pca_plane(jnp.asarray(stacked), middle_params)
    out_runs = []
    for run, path, curve in zip(runs, paths, curves, strict=True):
        rows = np.concatenate([path, np.broadcast_to(middle, (TRAJECTORY_POINTS - len(path), middle.size))])
        n = len(path)
        evaluate = jnp.asarray(_evaluated(n, cfg))
        coords, off, true, plane = _path(cfg, middle_params, d1, d2, state.bn_state, x, y, jnp.asarray(rows), evaluate)
        out_runs.append(
            {
                **run,
                "label": _label(run),
                "alpha": _clean(np.asarray(coords)[:n, 0]),
                "beta": _clean(np.asarray(coords)[:n, 1]),
                "true_loss": _clean(np.asarray(true)[:n]),
                "plane_loss": _clean(np.asarray(plane)[:n]),
                "off_plane": _clean(np.asarray(off)[:n]),
                "curve": {"epoch": [e for e, _ in curve], "train_loss": [finite_or_none(v) for _, v in curve]},
            }
        )
    reach = max((abs(v) for r in out_runs for v in r["alpha"] + r["beta"] if v is not None), default=1.0)
    span = 1.15 * reach or 1.0
    grid = slice_grid(cfg, middle_params, d1, d2, state.bn_state, x, y, span, resolution)
    return {
        "epochs": epochs,
        "resolution": resolution,
        "span": span,
        "coordinates": _clean(np.linspace(-span, span, resolution)),
        "loss": _clean(grid),
        "explained_variance": _clean(ratios),
        "centred_on": "mean" if center is None else center,
        "runs": out_runs,
        "notes": notes,
    }


def _label(run: dict[str, Any]) -> str:
    return f"{run['optimizer']} (learning rate {run['learning_rate']:g})"
