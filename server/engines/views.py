"""Inside the optimization, for a session of any engine: the loss surface around the current weights along two
directions, the path training took projected on it (with the true loss along the path and the distance off
the plane), the straight line between two weight sets, per-layer gradient health with plain-words diagnoses,
the sharpness (the Hessian's top eigenvalue) and the optimizer race. Pure functions of (engine, config,
state, data, ...) over the compiled programs of ``server.ml.probes``; every array comes back as plain lists,
non-finite values as None ("off scale").

The engine says which examples the views evaluate the loss on (``view_set``: an MLP's whole training set, a
CNN's first training images) and how to train (the race); the config says the rest (``server.ml.probes``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from server.engines.base import Engine, findings, finite_or_none
from server.ml import probes
from server.ml.probes import TRAJECTORY_POINTS, Config, flat
from server.ml.train import Hyper, TrainState, init_opt_state
from server.spec import ExperimentSpec

DIRECTIONS = ("random", "pca", "init")
MAX_TRAJECTORY_PARAMS = 100_000  # networks with more parameters keep no trajectory (memory)
SLICE_THREADS = probes.SLICE_THREADS

__all__ = ["TRAJECTORY_POINTS", "flat"]


# ------------------------------------------------------------------------------------------ views


def _clean(a: Any) -> Any:
    """Numbers as lists with None for NaN/Inf (nested)."""
    arr = np.asarray(a, np.float64)
    if arr.ndim == 0:
        return finite_or_none(float(arr))
    return [_clean(v) for v in arr]


def _padded_path(trajectory: list[tuple[int, np.ndarray]], center: Any) -> tuple[np.ndarray, int]:
    """The trajectory as TRAJECTORY_POINTS rows (one compiled program, whatever the path's length), padded
    with the centre: a zero deviation, which neither PCA nor the projection notices; and its real length."""
    here = flat(center)
    points = np.stack([p for _, p in trajectory]) if trajectory else here[None]
    real = len(points)
    return np.concatenate([points, np.broadcast_to(here, (TRAJECTORY_POINTS - real, here.size))]), real


def _plane(directions: str, key: jax.Array, init_params: Any, center: Any, points: np.ndarray) -> tuple[Any, Any, Any]:
    """(d1, d2, explained variance or None) of the chosen directions."""
    if directions == "random":
        return (*probes.random_plane(key, center), None)
    if directions == "init":
        return (*probes.init_plane(key, init_params, center), None)
    d1, d2, ratios = probes.pca_plane(jnp.asarray(points), center)
    return d1, d2, _clean(ratios)


def landscape(
    engine: Engine,
    cfg: Config,
    state: TrainState,
    data: Any,
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
    points, real = _padded_path(trajectory, center)
    d1, d2, explained = _plane(directions, jax.random.PRNGKey(seed), init_params, center, points)
    x, y = engine.view_set(cfg, data)
    evaluate = jnp.asarray(probes.evaluated(real, cfg))
    coords, off, true, plane = probes.path(cfg, center, d1, d2, bn, x, y, jnp.asarray(points), evaluate)
    coords, off, true, plane = (np.asarray(a)[:real] for a in (coords, off, true, plane))
    if span is None:
        extent = float(np.abs(coords).max()) if directions == "pca" and len(coords) else 0.0
        span = {"random": 1.0, "init": 1.25}.get(directions, 1.25 * extent) or 1.0
    grid = probes.slice_grid(cfg, center, d1, d2, bn, x, y, span, resolution, threads)
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


def interpolation(
    engine: Engine, cfg: Config, state: TrainState, data: Any, *, init_params: Any, steps: int
) -> dict[str, Any]:
    """The training loss along the straight line from the initial weights (t = 0) to the current (t = 1),
    a quarter beyond each end."""
    ts = np.linspace(-0.25, 1.25, steps, dtype=np.float32)
    x, y = engine.view_set(cfg, data)
    losses = probes.line(cfg, init_params, state.params, state.bn_state, x, y, jnp.asarray(ts))
    return {"t": _clean(ts), "loss": _clean(losses), "examples": int(x.shape[0])}


def sharpness(
    engine: Engine, cfg: Config, state: TrainState, data: Any, *, learning_rate: float, iters: int, seed: int
) -> dict[str, Any]:
    """The Hessian's top eigenvalue of the training loss (power iteration) and gradient descent's
    stability line 2 / learning rate (plain GD diverges along directions sharper than that)."""
    x, y = engine.view_set(cfg, data)
    value = probes.top_eigenvalue(cfg, state.params, state.bn_state, x, y, jax.random.PRNGKey(seed), iters)
    return {
        "top_eigenvalue": finite_or_none(float(value)),
        "stability_threshold": 2.0 / learning_rate,
        "iters": iters,
        "examples": int(x.shape[0]),
    }


def gradients(
    engine: Engine, spec: ExperimentSpec, cfg: Config, state: TrainState, data: Any, h: Hyper
) -> dict[str, Any]:
    """Per-layer gradient health (``probes.measure_health``: the frames' definition too) on the view set and
    what it means in plain words, with fixes."""
    x, y = engine.view_set(cfg, data)
    numbers = jax.device_get(probes.gradient_health(cfg, state, x, y, h))
    names = cfg.activation_names()
    numeric = ("grad_norm", "weight_norm", "update_ratio", "dead_fraction", "saturated_fraction")
    layers = []
    for i, layer in enumerate(np.asarray(numbers["layer"]).tolist()):
        row = {
            "layer": layer,
            "units": int(numbers["units"][i]),
            "activation": names[layer] if layer < len(names) else cfg.output_name,
        }
        row |= {k: finite_or_none(float(numbers[k][i])) for k in numeric}
        row |= {k: int(numbers[k][i]) for k in ("nonfinite_grads", "nonfinite_params")}
        layers.append(row)
    return {"layers": layers, "diagnosis": findings(engine, spec, cfg, numbers), "examples": int(x.shape[0])}


# ------------------------------------------------------------------------------------------ the race

RACE_SNAPSHOTS = 40  # points of each run's path (plus its start)
MAX_RACE_RUNS = 6


def _race_run(
    engine: Engine,
    cfg: Config,
    state: TrainState,
    data: Any,
    h: Hyper,
    run: dict[str, Any],
    epochs: int,
    x: Any,
    y: Any,
) -> tuple[np.ndarray, list[tuple[int, float]], list[str]]:
    """One contestant from the session's weights: its path (snapshots, flat), loss curve and notes."""
    per_chunk = max(1, -(-epochs // RACE_SNAPSHOTS))
    run_cfg = dataclasses.replace(cfg, optimizer=run["optimizer"])
    momentum = jnp.float32(run.get("momentum", h.momentum))
    run_h = h._replace(learning_rate=jnp.float32(run["learning_rate"]), momentum=momentum)
    st = TrainState(state.params, init_opt_state(run_cfg, state.params), state.bn_state, state.key)
    points, done, diverged = [flat(st.params)], 0, False
    curve = [(0, float(probes.data_loss(cfg, st.params, st.bn_state, x, y)))]
    while done < epochs and not diverged:
        step = engine.advance(run_cfg, st, data, run_h, min(per_chunk, epochs - done))
        st, done, diverged = step.state, done + step.epochs, step.diverged
        points.append(flat(st.params))
        curve.append((done, float(probes.data_loss(cfg, st.params, st.bn_state, x, y))))
    notes = [f"{_label(run)} diverged after {done} epochs (its last finite weights are shown)"] if diverged else []
    return np.stack(points), curve, notes


def race(
    engine: Engine,
    cfg: Config,
    state: TrainState,
    data: Any,
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
    x, y = engine.view_set(cfg, data)
    paths, curves, notes = [], [], []
    for run in runs:
        path, curve, note = _race_run(engine, cfg, state, data, h, run, epochs, x, y)
        paths.append(path)
        curves.append(curve)
        notes += note
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
    d1, d2, ratios = probes.pca_plane(jnp.asarray(stacked), middle_params)
    plane = (middle, middle_params, d1, d2)
    out_runs = [
        _race_on_plane(cfg, state, plane, x, y, run, path, curve)
        for run, path, curve in zip(runs, paths, curves, strict=True)
    ]
    reach = max((abs(v) for r in out_runs for v in r["alpha"] + r["beta"] if v is not None), default=1.0)
    span = 1.15 * reach or 1.0
    grid = probes.slice_grid(cfg, middle_params, d1, d2, state.bn_state, x, y, span, resolution)
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


def _race_on_plane(
    cfg: Config,
    state: TrainState,
    plane: tuple[np.ndarray, Any, Any, Any],
    x: Any,
    y: Any,
    run: dict[str, Any],
    path: np.ndarray,
    curve: list[tuple[int, float]],
) -> dict[str, Any]:
    """One race run as the page draws it: its path's coordinates on the shared plane (origin flat and as
    parameters, d1, d2), its
    true and on-plane loss and distance off the plane at every point, and its loss curve."""
    middle, middle_params, d1, d2 = plane
    rows = np.concatenate([path, np.broadcast_to(middle, (TRAJECTORY_POINTS - len(path), middle.size))])
    n = len(path)
    evaluate = jnp.asarray(probes.evaluated(n, cfg))
    coords, off, true, loss = probes.path(cfg, middle_params, d1, d2, state.bn_state, x, y, jnp.asarray(rows), evaluate)
    return {
        **run,
        "label": _label(run),
        "alpha": _clean(np.asarray(coords)[:n, 0]),
        "beta": _clean(np.asarray(coords)[:n, 1]),
        "true_loss": _clean(np.asarray(true)[:n]),
        "plane_loss": _clean(np.asarray(loss)[:n]),
        "off_plane": _clean(np.asarray(off)[:n]),
        "curve": {"epoch": [e for e, _ in curve], "train_loss": [finite_or_none(v) for _, v in curve]},
    }


def _label(run: dict[str, Any]) -> str:
    return f"{run['optimizer']} (learning rate {run['learning_rate']:g})"
