"""Toy 2-D datasets, train/test split, input features and the plotting grid.

The four classification sets and the two regression sets follow TensorFlow Playground's
`src/dataset.ts` geometry; `moons`, `checkerboard` and `blobs3` are Neuroglass additions.
Everything lives on the square domain [-6, 6]^2.

Labels: classification -> int32 class indices (0 = TF's -1 / orange, 1 = TF's +1 / blue,
0..2 for blobs3); regression -> float32 targets scaled as TF scales them.
`noise` is TF's fraction 0..0.5 (the UI percentage / 100).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

DOMAIN = (-6.0, 6.0)

# (n, noise, rng) -> (points float32 (n, 2), labels (n,))
DataFn = Callable[[int, float, np.random.Generator], tuple[np.ndarray, np.ndarray]]
Array = np.ndarray | jax.Array


# --------------------------------------------------------------------------- helpers


def _halves(n: int) -> tuple[int, int]:
    """Split n into (class-1 count, class-0 count); the extra odd point goes to class 1."""
    return n - n // 2, n // 2


def _classes(x: np.ndarray, y: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pack coordinates (n,), (n,) and class indices into float32 (n, 2) and int32 (n,)."""
    return np.stack([x, y], axis=1).astype(np.float32), labels.astype(np.int32)


def _targets(x: np.ndarray, y: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pack coordinates and regression targets into float32 (n, 2) and float32 (n,)."""
    # `+ 0.0` turns any -0.0 into 0.0 so equal targets compare and print the same.
    return np.stack([x, y], axis=1).astype(np.float32), (values + 0.0).astype(np.float32)


# --------------------------------------------------------------- TF Playground classification


def circle(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blue disc of radius 2.5 inside an orange ring 3.5..5 (TF `classifyCircleData`)."""
    radius = 5.0
    n_pos, n_neg = _halves(n)
    r = np.concatenate([rng.uniform(0, radius * 0.5, n_pos), rng.uniform(radius * 0.7, radius, n_neg)])
    angle = rng.uniform(0, 2 * np.pi, n)
    x, y = r * np.sin(angle), r * np.cos(angle)
    # TF labels the *noisy* point but stores the clean one, so noise shows up as
    # wrongly coloured points near the boundary rather than as blurred geometry.
    nx, ny = rng.uniform(-radius, radius, (2, n)) * noise
    return _classes(x, y, np.hypot(x + nx, y + ny) < radius * 0.5)


def xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blue where x and y share a sign, orange otherwise (TF `classifyXORData`)."""
    x, y = rng.uniform(-5, 5, (2, n))
    # Push points 0.3 away from the axes so the quadrants are visibly separated.
    x = x + np.where(x > 0, 0.3, -0.3)
    y = y + np.where(y > 0, 0.3, -0.3)
    nx, ny = rng.uniform(-5, 5, (2, n)) * noise  # label at the noisy point, store the clean one
    return _classes(x, y, (x + nx) * (y + ny) >= 0)


def gauss(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blue cloud around (2, 2), orange around (-2, -2) (TF `classifyTwoGaussData`)."""
    variance = 0.5 + noise * (4.0 - 0.5) / 0.5  # d3 linear [0, 0.5] -> [0.5, 4], not clamped
    std = np.sqrt(variance)
    n_pos, n_neg = _halves(n)
    pts = np.concatenate([rng.normal(2.0, std, (n_pos, 2)), rng.normal(-2.0, std, (n_neg, 2))])
    labels = np.concatenate([np.ones(n_pos), np.zeros(n_neg)])
    return _classes(pts[:, 0], pts[:, 1], labels)


def spiral(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two arms winding 1.75 turns out to radius 5, offset by half a turn (TF `classifySpiralData`)."""

    def arm(m: int, delta_t: float) -> tuple[np.ndarray, np.ndarray]:
        # Evenly spaced along the arm; only the noise is random. Shapes (m,).
        i = np.arange(m) / max(m, 1)
        r, t = i * 5, 1.75 * i * 2 * np.pi + delta_t
        return r * np.sin(t) + rng.uniform(-1, 1, m) * noise, r * np.cos(t) + rng.uniform(-1, 1, m) * noise

    n_pos, n_neg = _halves(n)
    (x1, y1), (x0, y0) = arm(n_pos, 0.0), arm(n_neg, np.pi)
    labels = np.concatenate([np.ones(n_pos), np.zeros(n_neg)])
    return _classes(np.concatenate([x1, x0]), np.concatenate([y1, y0]), labels)


# ------------------------------------------------------------------ Neuroglass classification


def moons(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half-moons (sklearn's `make_moons` shape) stretched over about [-5, 5]^2."""
    n_pos, n_neg = _halves(n)
    # Unit moons: blue upper arch centred (0, 0), orange lower arch centred (1, 0.5),
    # both radius 1; together they span x in [-1, 2], y in [-0.5, 1].
    t1, t0 = rng.uniform(0, np.pi, n_pos), rng.uniform(0, np.pi, n_neg)
    x = np.concatenate([np.cos(t1), 1 - np.cos(t0)])
    y = np.concatenate([np.sin(t1), 0.5 - np.sin(t0)])
    # Centre on the origin and stretch to x in [-5, 5], y in [-3.75, 3.75].
    x, y = (x - 0.5) * (10 / 3), (y - 0.25) * 5
    # Gaussian jitter of the stored point: std 1 (domain units) at the maximum noise 0.5.
    x, y = x + rng.normal(0, 2 * noise, n), y + rng.normal(0, 2 * noise, n)
    return _classes(x, y, np.concatenate([np.ones(n_pos), np.zeros(n_neg)]))


def checkerboard(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A 4x4 board of 3x3 squares over [-6, 6]^2; blue where the column + row index is even."""
    cell = 3.0
    x, y = rng.uniform(-6, 6, (2, n))
    # Same noise model as TF's circle/xor: colour by a jittered point (up to half a
    # square at noise 0.5), store the clean one -> mislabelled points near the edges.
    nx, ny = rng.uniform(-cell, cell, (2, n)) * noise
    col, row = np.floor((x + nx + 6) / cell), np.floor((y + ny + 6) / cell)
    return _classes(x, y, (col + row) % 2 == 0)


_BLOB_ANGLES = np.deg2rad([90.0, 210.0, 330.0])  # class 0 on top, 1 bottom-left, 2 bottom-right
_BLOB_RADIUS = 3.5


def blobs3(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Three round Gaussian clouds, one per class, evenly spaced on a circle of radius 3.5."""
    counts = [n // 3 + (k < n % 3) for k in range(3)]  # as even as possible, extras to low classes
    std = 0.6 + 2.4 * noise  # 0.6 (clearly separate) .. 1.8 at noise 0.5 (clouds overlap)
    pts = np.concatenate(
        [
            rng.normal(0, std, (c, 2)) + _BLOB_RADIUS * np.array([np.cos(a), np.sin(a)])
            for c, a in zip(counts, _BLOB_ANGLES, strict=True)
        ]
    )
    labels = np.repeat(np.arange(3), counts)
    return _classes(pts[:, 0], pts[:, 1], labels)


# ---------------------------------------------------------------------- TF regression


def plane(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Target (x + y) / 10, a tilted plane (TF `regressPlane`)."""
    x, y = rng.uniform(-6, 6, (2, n))
    nx, ny = rng.uniform(-6, 6, (2, n)) * noise
    # TF's labelScale maps [-10, 10] -> [-1, 1] without clamping, so corners reach +-1.2.
    return _targets(x, y, (x + nx + y + ny) / 10)


# (centre x, centre y, sign) of TF's six bumps.
_GAUSSIANS = np.array([[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1], [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]])


def multigauss(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Six cone-shaped bumps of alternating sign in two rows (TF `regressGaussian`)."""
    x, y = rng.uniform(-6, 6, (2, n))
    nx, ny = rng.uniform(-6, 6, (2, n)) * noise
    cx, cy, sign = _GAUSSIANS.T
    d = np.hypot((x + nx)[:, None] - cx, (y + ny)[:, None] - cy)  # (n, 6)
    bumps = sign * np.clip(1 - d / 2, 0, 1)  # labelScale: [0, 2] -> [1, 0], clamped
    # TF keeps the bump largest in absolute value (first one wins ties, like argmax).
    strongest = bumps[np.arange(n), np.argmax(np.abs(bumps), axis=1)]
    return _targets(x, y, strongest)


# ------------------------------------------------------------------------------ table


@dataclass(frozen=True)
class DatasetInfo:
    """One entry of the dataset menu."""

    name: str
    fn: DataFn
    problem: Literal["classification", "regression"]
    n_classes: int  # 2 or 3 for classification, 0 for regression
    description: str


_CLS: Literal["classification"] = "classification"
_REG: Literal["regression"] = "regression"

_MENU = [
    DatasetInfo("circle", circle, _CLS, 2, "Two rings: an inner disc of blue and an outer ring of orange."),
    DatasetInfo("xor", xor, _CLS, 2, "Four quadrants: blue where x and y have the same sign, else orange."),
    DatasetInfo("gauss", gauss, _CLS, 2, "Two round clouds: blue around (2, 2), orange around (-2, -2)."),
    DatasetInfo("spiral", spiral, _CLS, 2, "Two spiral arms, one blue and one orange, winding outwards."),
    DatasetInfo("moons", moons, _CLS, 2, "Two interlocking half-moons: a blue arch over an orange one."),
    DatasetInfo("checkerboard", checkerboard, _CLS, 2, "A 4×4 board of alternating blue and orange squares."),
    DatasetInfo("blobs3", blobs3, _CLS, 3, "Three round clouds, one per class, spaced around the centre."),
    DatasetInfo("plane", plane, _REG, 0, "A tilted plane: the target rises from bottom-left to top-right."),
    DatasetInfo("multigauss", multigauss, _REG, 0, "Six bumps in two rows, alternately up and down."),
]
DATASETS: dict[str, DatasetInfo] = {info.name: info for info in _MENU}


def generate(name: str, n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Make dataset `name` with n points, deterministic in (name, n, noise, seed), and shuffle it."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    if n < 0 or noise < 0:
        raise ValueError(f"need n >= 0 and noise >= 0, got n={n}, noise={noise}")
    rng = np.random.default_rng(seed)
    points, labels = DATASETS[name].fn(n, noise, rng)
    # Generators emit points class by class; TF shuffles once so a split mixes classes.
    order = rng.permutation(n)
    return points[order], labels[order]


# ------------------------------------------------------------------------------ split


def split(
    points: np.ndarray, labels: np.ndarray, train_percent: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First round(n * train_percent / 100) points train, the rest test (data come pre-shuffled)."""
    if not 0 <= train_percent <= 100:
        raise ValueError(f"train_percent must be in [0, 100], got {train_percent}")
    n = len(points)
    n_train = round(n * train_percent / 100)
    if n >= 2:
        n_train = min(max(n_train, 1), n - 1)  # never leave either side empty
    return points[:n_train], labels[:n_train], points[n_train:], labels[n_train:]


# --------------------------------------------------------------------------- features


def _xp(a: Array) -> ModuleType:
    """The array module matching `a`: jax.numpy for jax arrays and tracers, else numpy."""
    return jnp if isinstance(a, jax.Array) else np


# Each maps points (..., 2) -> (...). Order is the order shown in the UI.
FEATURES: dict[str, Callable[[Array], Array]] = {
    "x1": lambda p: p[..., 0],
    "x2": lambda p: p[..., 1],
    "x1_sq": lambda p: p[..., 0] ** 2,
    "x2_sq": lambda p: p[..., 1] ** 2,
    "x1x2": lambda p: p[..., 0] * p[..., 1],
    "sin_x1": lambda p: _xp(p).sin(p[..., 0]),
    "sin_x2": lambda p: _xp(p).sin(p[..., 1]),
}

FEATURE_LABELS: dict[str, str] = {
    "x1": "X₁",
    "x2": "X₂",
    "x1_sq": "X₁²",
    "x2_sq": "X₂²",
    "x1x2": "X₁X₂",
    "sin_x1": "sin(X₁)",
    "sin_x2": "sin(X₂)",
}


def featurize(points: Array, names: Sequence[str]) -> Array:
    """Stack the named features of points (..., 2) into (..., len(names)), in numpy or jax as given."""
    unknown = [f for f in names if f not in FEATURES]
    if unknown:
        raise KeyError(f"unknown feature(s) {unknown}; choose from: {', '.join(FEATURES)}")
    if not isinstance(points, jax.Array):
        points = np.asarray(points)
    xp = _xp(points)
    if not names:
        return xp.zeros((*points.shape[:-1], 0), dtype=points.dtype)
    return xp.stack([FEATURES[f](points) for f in names], axis=-1)


# ------------------------------------------------------------------------------- grid


def grid_points(resolution: int) -> np.ndarray:
    """Cell centres of a resolution x resolution grid over DOMAIN, float32 (resolution**2, 2).

    Row-major, row 0 at the top (y = +6) and column 0 at the left (x = -6), so the
    output reshaped to (resolution, resolution) paints straight onto a canvas.
    """
    if resolution < 1:
        raise ValueError(f"resolution must be >= 1, got {resolution}")
    lo, hi = DOMAIN
    centres = lo + (np.arange(resolution) + 0.5) * (hi - lo) / resolution  # (res,), increasing
    xs, ys = np.meshgrid(centres, centres[::-1])  # (res, res) each; ys decreases down the rows
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
