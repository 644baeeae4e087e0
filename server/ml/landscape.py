"""Loss-landscape views, generic over the models' params pytrees (gradient health: ``server.ml.health``).

Params are lists of layer dicts (``server.ml.models`` MLPs, ``server.ml.cnn`` CNNs): a neuron — or a
conv filter — is a slice along the LAST axis of a ``"w"`` leaf; ``"b"``, ``"gamma"``, ``"beta"`` are
biases and batch-norm parameters. Everything that needs a loss takes a pure ``loss_fn(params) -> scalar``
(close over the data and the static config), so MLP and CNN engines share one implementation. Functions
are jit-friendly (no Python branching on traced values, static shapes): callers wrap them in ``jax.jit``
with their own static config.

- directions: ``filter_normalized_direction`` (Li et al. 2018, "Visualizing the Loss Landscape of Neural
  Nets"), ``pca_directions`` of a trajectory, ``init_plane`` (init → now, plus an orthogonal random one);
- ``loss_slice`` (a 2-D grid in one compiled call), ``interpolate_1d``, ``project_trajectory``;
- ``hessian_top_eigenvalue`` (power iteration on Hessian-vector products);
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from server.ml.cnn import cnn_data_loss
from server.ml.train import mlp_data_loss

Params = Any  # a pytree of arrays: list of layer dicts
LossFn = Callable[[Params], jax.Array]

__all__ = ["cnn_data_loss", "mlp_data_loss"]  # the models' data losses, here with the views that take them

BIAS_BN = ("b", "gamma", "beta")  # leaf names that are not a neuron's incoming weights

# ------------------------------------------------------------------------------------------ tree algebra


def _tree_vdot(a: Params, b: Params) -> jax.Array:
    """⟨a, b⟩ summed over every leaf."""
    return sum((jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)), jnp.float32(0))


def combine(center: Params, d1: Params, d2: Params, a: jax.Array | float, b: jax.Array | float) -> Params:
    """center + a·d1 + b·d2, leaf by leaf."""
    return jax.tree.map(lambda c, u, v: c + a * u + b * v, center, d1, d2)


def ravel_trajectory(points: Sequence[Params]) -> jax.Array:
    """Snapshots of params (pytrees, or already-flat vectors) → (T, P), one flattened vector per row."""
    return jnp.stack([ravel_pytree(p)[0] for p in points])


def _as_matrix(trajectory: jax.Array | Sequence[Params]) -> jax.Array:
    return ravel_trajectory(trajectory) if isinstance(trajectory, list | tuple) else jnp.asarray(trajectory)


# -------------------------------------------------------------------------------------------- directions


def _leaf_name(path: Sequence[Any]) -> str | None:
    last = path[-1] if path else None
    return getattr(last, "key", None)


def _filter_normalize(d: jax.Array, w: jax.Array) -> jax.Array:
    """Rescale each slice of ``d`` along its last axis to the norm of the same slice of ``w`` (0-D and
    1-D leaves: element by element, so d_i = sign(d_i)·|w_i|). A zero slice of ``w`` gives a zero slice."""
    axes = tuple(range(d.ndim - 1))
    d_norm = jnp.sqrt(jnp.sum(d * d, axis=axes, keepdims=True))
    w_norm = jnp.sqrt(jnp.sum(w * w, axis=axes, keepdims=True))
    return d * jnp.where(d_norm > 0, w_norm / jnp.where(d_norm > 0, d_norm, 1.0), 0.0)


def filter_normalized_direction(key: jax.Array, params: Params, include_bias_bn: bool = False) -> Params:
    """A random Gaussian direction shaped like ``params``, filter-normalized (Li et al. 2018).

    Every weight leaf (any leaf not named b/gamma/beta) is normalized per neuron/filter: each slice along
    its last axis — a dense unit's incoming weights (fan_in,), a conv filter (k, k, C_in) — gets the norm
    of the same slice of the weights, so the plot's scale is the same for every layer whatever its
    weights' scale. Biases and batch-norm parameters get 0 (as in the paper: their directions are left
    out) unless ``include_bias_bn``, then each element is its own "filter": ±|value| (what the paper's
    code does when it keeps them; a zero bias stays fixed).
    """
    paths, treedef = jax.tree_util.tree_flatten_with_path(params)
    keys = jax.random.split(key, max(len(paths), 1))
    out = []
    for k, (path, leaf) in zip(keys, paths, strict=False):
        bias_bn = _leaf_name(path) in BIAS_BN
        if bias_bn and not include_bias_bn:
            out.append(jnp.zeros_like(leaf))
            continue
        d = jax.random.normal(k, leaf.shape, leaf.dtype)
        out.append(jnp.sign(d) * jnp.abs(leaf) if bias_bn else _filter_normalize(d, leaf))
    return jax.tree_util.tree_unflatten(treedef, out)


def init_direction(init_params: Params, params: Params) -> Params:
    """The way training went: params − init_params (α = −1 on it is the initial point, 0 the current)."""
    return jax.tree.map(lambda p, q: p - q, params, init_params)


def orthogonalize(d: Params, against: Params) -> Params:
    """Gram–Schmidt: d minus its component along ``against`` (d unchanged when ``against`` is 0)."""
    aa = _tree_vdot(against, against)
    c = jnp.where(aa > 0, _tree_vdot(d, against) / jnp.where(aa > 0, aa, 1.0), 0.0)
    return jax.tree.map(lambda x, y: x - c * y, d, against)


def init_plane(
    key: jax.Array, init_params: Params, params: Params, include_bias_bn: bool = False
) -> tuple[Params, Params]:
    """(d1, d2) for a slice centred on ``params``: d1 = params − init, d2 a filter-normalized random
    direction made orthogonal to d1 (its per-filter norms then hold only approximately)."""
    d1 = init_direction(init_params, params)
    return d1, orthogonalize(filter_normalized_direction(key, params, include_bias_bn), d1)


def pca_directions(trajectory: jax.Array | Sequence[Params], center: Params) -> tuple[Params, Params, jax.Array]:
    """Top-2 principal directions of (trajectory − center), and their explained-variance ratios (2,).

    ``trajectory``: (T, P) flattened param vectors (``ravel_trajectory``) or a list of snapshots. As in
    Li et al., deviations are taken from ``center`` (usually the final params), not from their mean. The
    directions are unit vectors (so projected coordinates are distances in parameter space), signed so the
    trajectory's first point has non-negative coordinates. All-zero deviations give ratios 0.
    """
    flat_c, unravel = ravel_pytree(center)
    m = _as_matrix(trajectory) - flat_c  # (T, P)
    if m.shape[0] < 2:  # one snapshot: a zero row gives the second (arbitrary) direction ratio 0
        m = jnp.concatenate([m, jnp.zeros((2 - m.shape[0], m.shape[1]), m.dtype)])
    _, s, vt = jnp.linalg.svd(m, full_matrices=False)
    var = s * s
    tiny = jnp.finfo(var.dtype).tiny  # type: ignore[no-untyped-call]  # ml_dtypes' finfo.__new__ is unannotated
    explained = var[:2] / jnp.maximum(var.sum(), tiny)
    dirs = vt[:2] * jnp.where(m[0] @ vt[:2].T < 0, -1.0, 1.0)[:, None]
    return unravel(dirs[0]), unravel(dirs[1]), explained


# --------------------------------------------------------------------------------------- slices and paths

SLICE_METHODS = ("map", "rows", "vmap")
DEFAULT_SLICE_METHOD = "map"  # bench/landscape.py, biggest MLP 51×51: map 48 ms, rows 50-54, vmap 91
DEFAULT_BATCH = 9  # cells per vmapped step of "map": 9 × (8 units × 500 examples) stays in cache (bench)


def _check_method(method: str) -> None:
    if method not in SLICE_METHODS:
        raise ValueError(f"unknown slice method {method!r}; choose one of {', '.join(SLICE_METHODS)}")


def _map_cells(fn: Callable[..., jax.Array], xs: tuple[jax.Array, ...], method: str, batch_size: int) -> jax.Array:
    """fn over the leading axis of xs: all at once ("vmap") or a batched loop (``lax.map``)."""
    if method == "vmap":
        return jax.vmap(fn)(*xs)
    return jax.lax.map(lambda t: fn(*t), xs, batch_size=batch_size)


def loss_slice(
    loss_fn: LossFn,
    center: Params,
    d1: Params,
    d2: Params,
    alphas: jax.Array,
    betas: jax.Array,
    *,
    method: str = DEFAULT_SLICE_METHOD,
    batch_size: int = DEFAULT_BATCH,
) -> jax.Array:
    """(len(betas), len(alphas)) grid of loss(center + α·d1 + β·d2): row i is β = betas[i].

    One traced program (jit the caller): ``method`` "map" loops over cells ``batch_size`` at a time
    (``lax.map``), "rows" loops over betas with each row vmapped, "vmap" vmaps every cell at once (the
    most memory). Cells whose loss overflows come out as NaN or ±Inf, as the loss gives them: nothing
    raises; the caller marks them off scale.
    """
    _check_method(method)
    alphas, betas = jnp.asarray(alphas), jnp.asarray(betas)

    def cell(a: jax.Array, b: jax.Array) -> jax.Array:
        return loss_fn(combine(center, d1, d2, a, b))

    if method == "rows":
        return jax.lax.map(lambda b: jax.vmap(lambda a: cell(a, b))(alphas), betas)
    grid_a, grid_b = jnp.meshgrid(alphas, betas)  # (nb, na) each
    losses = _map_cells(cell, (grid_a.ravel(), grid_b.ravel()), method, batch_size)
    return losses.reshape(betas.shape[0], alphas.shape[0])


def interpolate_1d(
    loss_fn: LossFn,
    start: Params,
    end: Params,
    ts: jax.Array,
    *,
    method: str = DEFAULT_SLICE_METHOD,
    batch_size: int = DEFAULT_BATCH,
) -> jax.Array:
    """Losses along start + t·(end − start) for each t in ``ts``, (len(ts),) (t = 0 start, t = 1 end)."""
    _check_method(method)
    direction = init_direction(start, end)
    zero = jax.tree.map(jnp.zeros_like, start)
    if method == "rows":
        method = "vmap"  # one row
    return _map_cells(
        lambda t: loss_fn(combine(start, direction, zero, t, 0.0)), (jnp.asarray(ts),), method, batch_size
    )


def project_trajectory(
    trajectory: jax.Array | Sequence[Params], center: Params, d1: Params, d2: Params
) -> tuple[jax.Array, jax.Array]:
    """Each point's plane coordinates (T, 2) = least-squares (α, β) with point ≈ center + α·d1 + β·d2,
    and its distance off the plane (T,) (the norm of the residual).

    d1 and d2 need not be orthogonal: the 2×2 normal equations G·(α, β) = Dᵀ(θ − center), G = DᵀD, are
    solved with G's pseudo-inverse, so parallel or zero directions give the minimum-norm answer.
    """
    flat_c, _ = ravel_pytree(center)
    basis = jnp.stack([ravel_pytree(d1)[0], ravel_pytree(d2)[0]])  # (2, P)
    m = _as_matrix(trajectory) - flat_c  # (T, P)
    coords = (m @ basis.T) @ jnp.linalg.pinv(basis @ basis.T)  # G is symmetric: (G⁻¹ Dᵀm)ᵀ = mᵀD G⁻¹
    residual = m - coords @ basis
    return coords, jnp.sqrt(jnp.sum(residual * residual, axis=1))


# ------------------------------------------------------------------------------------------------ Hessian


def hessian_top_eigenvalue(loss_fn: LossFn, params: Params, key: jax.Array, iters: int = 20) -> jax.Array:
    """The Hessian's eigenvalue of largest magnitude at ``params``, by power iteration.

    Each step is one Hessian-vector product, forward-over-reverse: jvp(grad(loss_fn), (params,), (v,)).
    Returns the Rayleigh quotient vᵀHv of the last unit vector (exact for the top eigenvector). Near a
    saddle the largest magnitude can be a negative curvature: the sign is kept. The error shrinks as
    (|λ₂| / |λ₁|)^(2·iters): when the top positive and negative curvatures have almost the same magnitude
    (e.g. TF Playground's default net at its init, 0.4184 and −0.4185) the iterate mixes both and the
    estimate lands between them, whatever ``iters``.
    """
    flat, unravel = ravel_pytree(params)
    grad = jax.grad(loss_fn)

    def hvp(v: jax.Array) -> jax.Array:
        return ravel_pytree(jax.jvp(grad, (params,), (unravel(v),))[1])[0]

    v0 = jax.random.normal(key, flat.shape, flat.dtype)
    v0 = v0 / jnp.linalg.norm(v0)

    def step(_: jax.Array, carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        v, _ = carry
        hv = hvp(v)
        n = jnp.linalg.norm(hv)
        return jnp.where(n > 0, hv / jnp.where(n > 0, n, 1.0), v), jnp.vdot(v, hv)

    return jax.lax.fori_loop(0, iters, step, (v0, jnp.zeros((), flat.dtype)))[1]
