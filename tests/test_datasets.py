"""Tests for server/ml/datasets.py: TF Playground geometry, determinism, split, features, grid."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from server.ml.datasets import (
    DATASETS,
    DOMAIN,
    FEATURE_LABELS,
    FEATURES,
    featurize,
    generate,
    grid_points,
    split,
)

NAMES = list(DATASETS)
CLASSIFIERS = [k for k, d in DATASETS.items() if d.problem == "classification"]


def by_class(points, labels):
    """Points of class 1 and class 0."""
    return points[labels == 1], points[labels == 0]


# ------------------------------------------------------------------------------ table


def test_table_is_consistent():
    assert NAMES == [
        "circle",
        "xor",
        "gauss",
        "spiral",
        "moons",
        "checkerboard",
        "blobs3",
        "plane",
        "multigauss",
    ]
    for name, info in DATASETS.items():
        assert info.name == name
        assert callable(info.fn)
        assert info.description.strip().endswith(".")
        if info.problem == "regression":
            assert info.n_classes == 0
        else:
            assert info.problem == "classification"
            assert info.n_classes == (3 if name == "blobs3" else 2)


def test_info_is_frozen():
    with pytest.raises(AttributeError):
        DATASETS["circle"].n_classes = 5


def test_unknown_name_raises_key_error_naming_it():
    with pytest.raises(KeyError, match="nope.*circle"):
        generate("nope", 10, 0.0, 0)


# ------------------------------------------------------------------ every dataset


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [0, 1, 7, 100, 101])
def test_shapes_and_dtypes(name, n):
    points, labels = generate(name, n, 0.25, seed=3)
    assert points.shape == (n, 2)
    assert points.dtype == np.float32
    assert labels.shape == (n,)
    expected = np.int32 if DATASETS[name].problem == "classification" else np.float32
    assert labels.dtype == expected


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_points_in_box_and_label_set(name, noise):
    points, labels = generate(name, 400, noise, seed=11)
    # Uniform/ring sets stay in the domain; Gaussian clouds and jitter may spill a little.
    box = {"gauss": 12.0, "blobs3": 12.0, "moons": 5.0 + 6 * noise}.get(name, 6.0)
    assert np.all(np.abs(points) <= box)
    info = DATASETS[name]
    if info.problem == "classification":
        assert set(np.unique(labels)) == set(range(info.n_classes))
    elif name == "multigauss":
        assert labels.min() >= -1 and labels.max() <= 1
        assert labels.min() < -0.5 and labels.max() > 0.5
    else:  # plane: TF does not clamp, (x + y + noise) / 10 stays within 1.2 * (1 + noise)
        assert np.all(np.abs(labels) <= 1.2 * (1 + noise) + 1e-6)
        assert labels.min() < -0.5 and labels.max() > 0.5


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_in_seed(name):
    a_pts, a_lab = generate(name, 50, 0.2, seed=7)
    b_pts, b_lab = generate(name, 50, 0.2, seed=7)
    np.testing.assert_array_equal(a_pts, b_pts)
    np.testing.assert_array_equal(a_lab, b_lab)
    c_pts, _ = generate(name, 50, 0.2, seed=8)
    assert not np.array_equal(a_pts, c_pts)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_output_is_shuffled(name):
    _, labels = generate(name, 200, 0.0, seed=0)
    # Unshuffled output would be sorted by class (or by position for the uniform sets).
    assert not np.all(np.diff(labels) <= 0) and not np.all(np.diff(labels) >= 0)
    # Both halves of the data hold both classes, so a 50 % split trains on everything.
    assert len(np.unique(labels[:100])) == len(np.unique(labels[100:])) == DATASETS[name].n_classes


@pytest.mark.parametrize("name", ["circle", "gauss", "spiral", "moons"])
def test_two_class_balance_exact(name):
    _, labels = generate(name, 200, 0.0, seed=1)
    assert np.sum(labels == 1) == np.sum(labels == 0) == 100
    _, labels = generate(name, 201, 0.0, seed=1)
    assert np.sum(labels == 1) == 101 and np.sum(labels == 0) == 100


def test_blobs3_balance():
    _, labels = generate("blobs3", 301, 0.0, seed=1)
    assert np.bincount(labels).tolist() == [101, 100, 100]


# ------------------------------------------------------------- TF Playground geometry


def test_circle_noise_free_labels_match_radius():
    points, labels = generate("circle", 500, 0.0, seed=2)
    r = np.hypot(points[:, 0], points[:, 1])
    np.testing.assert_array_equal(labels, (r < 2.5).astype(np.int32))
    assert np.all((r < 2.5) | ((r >= 3.5) & (r <= 5)))


def test_circle_noise_flips_labels_but_keeps_clean_points():
    points, labels = generate("circle", 500, 0.5, seed=2)
    r = np.hypot(points[:, 0], points[:, 1])
    # Stored points are the clean ones: still a disc and a ring with a gap between.
    assert np.all((r < 2.5) | ((r >= 3.5) & (r <= 5)))
    # ...but labels came from noisy copies, so some disagree with the radius.
    disagree = np.mean(labels != (r < 2.5))
    assert 0.02 < disagree < 0.5


def test_xor_noise_free_labels_match_sign():
    points, labels = generate("xor", 500, 0.0, seed=3)
    x, y = points[:, 0], points[:, 1]
    np.testing.assert_array_equal(labels, (x * y >= 0).astype(np.int32))
    assert np.all(np.abs(points) >= 0.3 - 1e-6) and np.all(np.abs(points) <= 5.3 + 1e-6)
    _, noisy = generate("xor", 500, 0.5, seed=3)
    assert np.any(noisy != (x * y >= 0))


@pytest.mark.parametrize(("noise", "variance"), [(0.0, 0.5), (0.5, 4.0)])
def test_gauss_means_and_variance(noise, variance):
    points, labels = generate("gauss", 4000, noise, seed=4)
    blue, orange = by_class(points, labels)
    tol = 0.1 * math.sqrt(variance)
    np.testing.assert_allclose(blue.mean(axis=0), [2, 2], atol=tol)
    np.testing.assert_allclose(orange.mean(axis=0), [-2, -2], atol=tol)
    np.testing.assert_allclose(blue.var(axis=0), [variance] * 2, rtol=0.1)
    np.testing.assert_allclose(orange.var(axis=0), [variance] * 2, rtol=0.1)


def test_spiral_noise_free_geometry():
    points, labels = generate("spiral", 400, 0.0, seed=5)
    r = np.hypot(points[:, 0], points[:, 1])
    assert r.min() >= 0 and r.max() <= 5
    # Each arm obeys t = 1.75 * 2pi * r / 5 + deltaT with x = r sin t, y = r cos t.
    t = 1.75 * 2 * np.pi * r / 5 + np.where(labels == 1, 0.0, np.pi)
    np.testing.assert_allclose(points[:, 0], r * np.sin(t), atol=1e-4)
    np.testing.assert_allclose(points[:, 1], r * np.cos(t), atol=1e-4)
    # Noise only shifts points by at most noise in each coordinate.
    noisy, noisy_labels = generate("spiral", 400, 0.5, seed=5)
    assert np.hypot(noisy[:, 0], noisy[:, 1]).max() <= 5 + 0.5 * math.sqrt(2)
    assert np.sum(noisy_labels == 1) == 200


def test_plane_noise_free_label_is_sum_over_ten():
    points, labels = generate("plane", 300, 0.0, seed=6)
    np.testing.assert_allclose(labels, (points[:, 0] + points[:, 1]) / 10, atol=1e-6)
    points, labels = generate("plane", 300, 0.3, seed=6)
    assert not np.allclose(labels, (points[:, 0] + points[:, 1]) / 10, atol=1e-3)


def tf_regress_gaussian_label(x, y):
    """Line-by-line port of TF Playground's regressGaussian getLabel, as a reference."""
    label = 0.0
    for cx, cy, sign in [
        [-4, 2.5, 1],
        [0, 2.5, -1],
        [4, 2.5, 1],
        [-4, -2.5, -1],
        [0, -2.5, 1],
        [4, -2.5, -1],
    ]:
        scaled = min(max(1 - math.hypot(x - cx, y - cy) / 2, 0.0), 1.0)
        if abs(sign * scaled) > abs(label):
            label = sign * scaled
    return label


def test_multigauss_matches_tf_reference():
    points, labels = generate("multigauss", 300, 0.0, seed=7)
    expected = [tf_regress_gaussian_label(float(x), float(y)) for x, y in points]
    np.testing.assert_allclose(labels, expected, atol=1e-5)
    assert np.all(np.abs(labels) <= 1)
    _, noisy = generate("multigauss", 300, 0.5, seed=7)
    assert not np.allclose(noisy, expected, atol=1e-3)


# --------------------------------------------------------------- Neuroglass additions


def test_moons_noise_free_are_separate_arcs():
    points, labels = generate("moons", 400, 0.0, seed=8)
    assert np.all(np.abs(points[:, 0]) <= 5 + 1e-5) and np.all(np.abs(points[:, 1]) <= 3.75 + 1e-5)
    blue, orange = by_class(points, labels)
    # Blue arch sits above and left of the orange one, and the two never touch.
    assert blue[:, 1].mean() > orange[:, 1].mean() and blue[:, 0].mean() < orange[:, 0].mean()
    gap = np.min(np.linalg.norm(blue[:, None, :] - orange[None, :, :], axis=-1))
    assert gap > 0.5
    noisy, _ = generate("moons", 400, 0.5, seed=8)
    assert np.max(np.abs(noisy - points)) > 0.5


def test_checkerboard_noise_free_labels_follow_squares():
    points, labels = generate("checkerboard", 500, 0.0, seed=9)
    col = np.floor((points[:, 0] + 6) / 3)
    row = np.floor((points[:, 1] + 6) / 3)
    np.testing.assert_array_equal(labels, ((col + row) % 2 == 0).astype(np.int32))
    _, noisy = generate("checkerboard", 500, 0.5, seed=9)
    assert 0.02 < np.mean(noisy != labels) < 0.5


def test_blobs3_centres_on_circle_and_spread_grows():
    points, labels = generate("blobs3", 3000, 0.0, seed=10)
    means = np.stack([points[labels == k].mean(axis=0) for k in range(3)])
    np.testing.assert_allclose(np.linalg.norm(means, axis=1), 3.5, atol=0.15)
    pairwise = [np.linalg.norm(means[i] - means[j]) for i, j in [(0, 1), (1, 2), (0, 2)]]
    np.testing.assert_allclose(pairwise, 3.5 * math.sqrt(3), atol=0.25)
    spread = [generate("blobs3", 3000, s, seed=10) for s in (0.0, 0.5)]
    stds = [p[lab == k].std(axis=0).mean() for p, lab in spread for k in range(3)]
    np.testing.assert_allclose(stds, [0.6] * 3 + [1.8] * 3, rtol=0.1)


# ------------------------------------------------------------------------------ split


@pytest.mark.parametrize(
    ("n", "percent", "n_train"),
    [(10, 70, 7), (10, 50, 5), (100, 33, 33), (10, 0, 1), (10, 100, 9), (2, 50, 1), (2, 100, 1), (1, 100, 1)],
)
def test_split_sizes(n, percent, n_train):
    points, labels = generate("xor", n, 0.0, seed=0)
    x_train, y_train, x_test, y_test = split(points, labels, percent)
    assert len(x_train) == len(y_train) == n_train
    assert len(x_test) == len(y_test) == n - n_train


def test_split_is_disjoint_prefix():
    points, labels = generate("circle", 40, 0.1, seed=0)
    x_train, y_train, x_test, y_test = split(points, labels, 75)
    np.testing.assert_array_equal(np.concatenate([x_train, x_test]), points)
    np.testing.assert_array_equal(np.concatenate([y_train, y_test]), labels)
    train_rows = {tuple(p) for p in x_train.tolist()}
    assert not train_rows & {tuple(p) for p in x_test.tolist()}


def test_split_rejects_bad_percent():
    points, labels = generate("circle", 10, 0.0, seed=0)
    with pytest.raises(ValueError):
        split(points, labels, 120)


# --------------------------------------------------------------------------- features

PTS = np.array([[1.0, 2.0], [-0.5, 3.0]], dtype=np.float32)
EXPECTED = {
    "x1": [1.0, -0.5],
    "x2": [2.0, 3.0],
    "x1_sq": [1.0, 0.25],
    "x2_sq": [4.0, 9.0],
    "x1x2": [2.0, -1.5],
    "sin_x1": [math.sin(1.0), math.sin(-0.5)],
    "sin_x2": [math.sin(2.0), math.sin(3.0)],
}


def test_feature_tables_in_order():
    assert list(FEATURES) == ["x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2"]
    assert list(FEATURE_LABELS) == list(FEATURES)
    assert list(FEATURE_LABELS.values()) == ["X₁", "X₂", "X₁²", "X₂²", "X₁X₂", "sin(X₁)", "sin(X₂)"]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_feature_numpy_and_jax(name):
    np.testing.assert_allclose(FEATURES[name](PTS), EXPECTED[name], rtol=1e-6)
    np.testing.assert_allclose(FEATURES[name](jnp.asarray(PTS)), EXPECTED[name], rtol=1e-6)


def test_featurize_numpy_keeps_numpy_and_order():
    names = ["sin_x2", "x1", "x1x2"]
    out = featurize(PTS, names)
    assert isinstance(out, np.ndarray) and out.shape == (2, 3)
    np.testing.assert_allclose(out, np.array([EXPECTED[k] for k in names]).T, rtol=1e-6)


def test_featurize_jax_and_jit():
    names = list(FEATURES)
    expected = np.array([EXPECTED[k] for k in names]).T
    out = featurize(jnp.asarray(PTS), names)
    assert isinstance(out, jax.Array)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    jitted = jax.jit(lambda p: featurize(p, names))
    np.testing.assert_allclose(jitted(jnp.asarray(PTS)), expected, rtol=1e-6)
    # Leading batch dimensions pass through: a (res, res, 2) grid -> (res, res, 7).
    grid = jnp.asarray(grid_points(4).reshape(4, 4, 2))
    assert jitted(grid).shape == (4, 4, 7)


def test_featurize_edge_cases():
    assert featurize(PTS, []).shape == (2, 0)
    with pytest.raises(KeyError, match="cos_x1"):
        featurize(PTS, ["x1", "cos_x1"])


# ------------------------------------------------------------------------------- grid


def test_grid_orientation():
    res = 10
    grid = grid_points(res)
    assert grid.shape == (res * res, 2) and grid.dtype == np.float32
    assert DOMAIN == (-6.0, 6.0)
    h = 12 / res / 2
    np.testing.assert_allclose(grid[0], [-6 + h, 6 - h])  # top-left
    np.testing.assert_allclose(grid[res - 1], [6 - h, 6 - h])  # top-right
    np.testing.assert_allclose(grid[res], [-6 + h, 6 - 3 * h])  # start of row 1, one cell down
    np.testing.assert_allclose(grid[-1], [6 - h, -6 + h])  # bottom-right
    img = grid.reshape(res, res, 2)
    assert np.all(np.diff(img[:, :, 0], axis=1) > 0)  # x grows to the right
    assert np.all(np.diff(img[:, :, 1], axis=0) < 0)  # y falls downwards
    np.testing.assert_allclose(grid.mean(axis=0), [0, 0], atol=1e-6)
    np.testing.assert_allclose(grid_points(1), [[0.0, 0.0]])
