"""Loss landscape: directions, slices, projections, Hessian, gradient health — facts pinned on real
models (server.ml.models / cnn) and on problems with known answers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from server.engines import mlp as ex
from server.engines.diagnosis import in_words
from server.ml import cnn
from server.ml import health as hl
from server.ml import landscape as ls
from server.ml.models import Arch, apply_mlp, init_mlp
from server.ml.train import evaluate, per_example_loss
from server.spec import ExperimentSpec


def mlp_setup(overrides: dict | None = None):
    """(cfg, data, state) of a real spec (TF Playground's default unless overridden)."""
    spec = ExperimentSpec.model_validate(overrides or {})
    cfg = ex.config_for(spec)
    return cfg, ex.build_data(spec), ex.init_train_state(spec, cfg)


def flat(tree) -> np.ndarray:
    return np.array(ravel_pytree(tree)[0])


def filter_norms(w) -> np.ndarray:
    """Norm of each slice along the last axis (a neuron's incoming weights, a conv filter)."""
    w = np.asarray(w)
    return np.sqrt(np.sum(w * w, axis=tuple(range(w.ndim - 1))))


def random_tree(seed: int, like):
    """Standard-normal leaves shaped like ``like`` (NumPy's generator: nothing to compile)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), like)


# jitted once here: eager, every random draw and every op compiles and dispatches on its own
direction = jax.jit(ls.filter_normalized_direction, static_argnames="include_bias_bn")


@pytest.fixture(scope="module")
def default_mlp():
    cfg, data, state = mlp_setup()
    loss_fn = jax.jit(ls.mlp_data_loss(cfg.arch, cfg.loss, data.x_train, data.y_train, state.bn_state))
    return cfg, data, state, loss_fn


# ---------------------------------------------------------------------------------------------- the loss


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # tanh output, squared error on ±1
        {"training": {"loss": "cross_entropy"}, "network": {"hidden": [{"units": 3, "activation": "relu"}]}},
        {"dataset": {"name": "blobs3"}, "training": {"loss": "cross_entropy"}},  # softmax over 3 classes
        {"problem": "regression", "dataset": {"name": "plane"}},
        {"training": {"batch_norm": True}},
    ],
)
def test_mlp_data_loss_equals_evaluate(overrides):
    cfg, data, state = mlp_setup(overrides)
    params = random_tree(3, state.params)  # not the init: every weight matters
    bn_state = jax.tree.map(lambda s: s + 0.3, state.bn_state)  # non-trivial running statistics
    loss_fn = ls.mlp_data_loss(cfg.arch, cfg.loss, data.x_train, data.y_train, bn_state)
    expected, _ = evaluate(cfg, params, bn_state, data.x_train, data.y_train)
    assert float(jax.jit(loss_fn)(params)) == pytest.approx(float(expected), rel=1e-5)


# -------------------------------------------------------------------------------------------- directions


def test_filter_normalized_direction_matches_each_neurons_norm():
    arch = Arch(n_inputs=3, hidden=((5, "tanh"), (4, "relu")), output="tanh", n_outputs=1, batch_norm=True)
    params = init_mlp(jax.random.key(0), arch, "xavier")
    params[0]["w"] = params[0]["w"].at[:, 2].set(0.0)  # a neuron with no incoming weights
    params[0]["gamma"] = params[0]["gamma"] * jnp.arange(1.0, 6.0)
    d = direction(jax.random.key(1), params)
    for layer, dl in zip(params, d, strict=True):
        np.testing.assert_allclose(filter_norms(dl["w"]), filter_norms(layer["w"]), rtol=1e-5)
        assert not np.allclose(dl["w"], layer["w"])  # random, not the weights themselves
        for name in ("b", "gamma", "beta"):
            if name in layer:
                assert np.all(np.asarray(dl[name]) == 0)  # left out by default
    assert np.all(np.asarray(d[0]["w"][:, 2]) == 0)
    with_bn = direction(jax.random.key(1), params, include_bias_bn=True)
    np.testing.assert_allclose(jnp.abs(with_bn[0]["gamma"]), jnp.abs(params[0]["gamma"]), rtol=1e-6)
    np.testing.assert_allclose(with_bn[0]["w"], d[0]["w"])  # the weights' part does not change


def test_filter_normalized_direction_of_a_cnn_is_per_filter():
    arch = cnn.CnnArch((8, 8, 2), (cnn.Conv(4, 3, 1, "same", "relu"), cnn.Pool("max", 2), cnn.Dense(6, "relu")), 3)
    params = cnn.init_cnn(jax.random.key(0), arch)
    params[0]["w"] = params[0]["w"] * jnp.array([0.1, 1.0, 3.0, 10.0])  # filters of very different scales
    d = direction(jax.random.key(1), params)
    w, dw = params[0]["w"], d[0]["w"]  # (k, k, C_in, F)
    assert dw.shape == (3, 3, 2, 4)
    np.testing.assert_allclose(filter_norms(dw), filter_norms(w), rtol=1e-5)
    np.testing.assert_allclose(filter_norms(d[2]["w"]), filter_norms(params[2]["w"]), rtol=1e-5)  # dense
    assert d[1] == {}


def test_init_plane_starts_at_the_init_and_is_orthogonal(default_mlp):
    cfg, data, state, loss_fn = default_mlp
    init = state.params
    now = jax.tree.map(lambda p, r: p + 0.5 * r, init, random_tree(5, init))
    d1, d2 = jax.jit(ls.init_plane)(jax.random.key(6), init, now)
    assert abs(float(flat(d1) @ flat(d2))) < 1e-4 * np.linalg.norm(flat(d1)) * np.linalg.norm(flat(d2))
    grid = jax.jit(lambda c, u, v: ls.loss_slice(loss_fn, c, u, v, jnp.array([-1.0, 0.0]), jnp.array([0.0])))(
        now, d1, d2
    )
    np.testing.assert_allclose(grid[0], [loss_fn(init), loss_fn(now)], rtol=1e-5)


def test_pca_of_a_straight_trajectory_recovers_the_line():
    center = [{"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}, {"w": jnp.ones((2, 1)), "b": jnp.ones(1)}]
    u = flat(random_tree(0, center))
    u /= np.linalg.norm(u)
    steps = np.array([3.0, 2.2, 1.5, 0.7, 0.2, 0.0])  # converging onto the centre
    traj = flat(center)[None] + steps[:, None] * u[None]
    d1, d2, explained = ls.pca_directions(jnp.asarray(traj), center)
    assert abs(flat(d1) @ u) == pytest.approx(1.0, abs=1e-5)
    assert flat(d1) @ u > 0  # signed so the first point is on the positive side
    assert float(explained[0]) == pytest.approx(1.0, abs=1e-5)
    assert float(explained[1]) == pytest.approx(0.0, abs=1e-5)
    assert abs(flat(d2) @ flat(d1)) < 1e-5
    coords, off = ls.project_trajectory(jnp.asarray(traj), center, d1, d2)
    np.testing.assert_allclose(coords[:, 0], steps, atol=1e-5)
    np.testing.assert_allclose(off, 0.0, atol=1e-5)


def test_pca_of_a_planar_trajectory_spans_the_plane():
    center = [{"w": jnp.zeros((4, 3)), "b": jnp.zeros(3)}]
    u, v = flat(random_tree(1, center)), flat(random_tree(2, center))
    unravel = ravel_pytree(center)[1]
    snapshots = [unravel(2 * s * u + np.sin(3 * s) * v) for s in np.linspace(0.0, 1.0, 9)]  # a curve in a plane
    d1, d2, explained = ls.pca_directions(snapshots, center)  # a list of pytrees works too
    assert float(explained.sum()) == pytest.approx(1.0, abs=1e-5)
    _, off = ls.project_trajectory(snapshots, center, d1, d2)
    np.testing.assert_allclose(off, 0.0, atol=1e-4)


# ------------------------------------------------------------------------------------ slices and projection


def test_slice_centre_is_the_loss_and_cells_are_the_loss_there(default_mlp):
    cfg, data, state, loss_fn = default_mlp
    center = state.params
    d1 = direction(jax.random.key(1), center)
    d2 = direction(jax.random.key(2), center)
    alphas, betas = jnp.linspace(-1.0, 1.0, 7), jnp.linspace(-0.5, 1.0, 4)  # 0 at alphas[3], betas[1]
    expected = float(loss_fn(center))
    for method in ls.SLICE_METHODS:
        run = jax.jit(lambda c, d1, d2, a, b, m=method: ls.loss_slice(loss_fn, c, d1, d2, a, b, method=m, batch_size=5))
        grid = np.asarray(run(center, d1, d2, alphas, betas))
        assert grid.shape == (4, 7)  # (betas, alphas)
        assert grid[1, 3] == pytest.approx(expected, abs=1e-6)
        corner = jax.tree.map(lambda c, u, v: c + alphas[6] * u + betas[3] * v, center, d1, d2)
        assert grid[3, 6] == pytest.approx(float(loss_fn(corner)), rel=1e-5)
        assert np.ptp(grid) > 1e-3  # the directions do move the loss


def test_slice_with_the_models_own_forward_pass(default_mlp):
    cfg, data, state, _ = default_mlp

    def loss_fn(params):  # what a generic engine passes: apply_mlp + per_example_loss
        logits, _ = apply_mlp(params, data.x_train, cfg.arch, bn_state=state.bn_state)
        return per_example_loss(logits, data.y_train, cfg.arch.output, cfg.loss).mean()

    d = direction(jax.random.key(1), state.params)
    grid = ls.loss_slice(loss_fn, state.params, d, d, jnp.array([0.0, 0.5]), jnp.array([0.0, -0.5]))
    expected, _ = evaluate(cfg, state.params, state.bn_state, data.x_train, data.y_train)
    assert float(grid[0, 0]) == pytest.approx(float(expected), abs=1e-6)
    assert float(grid[1, 1]) == pytest.approx(float(expected), abs=1e-6)  # 0.5·d − 0.5·d: the centre again


def test_a_slice_that_overflows_gives_non_finite_cells_without_raising():
    center = {"w": jnp.zeros((2, 2))}
    d1, d2 = {"w": jnp.eye(2)}, {"w": jnp.array([[0.0, 1.0], [1.0, 0.0]])}

    def loss_fn(p):
        q = jnp.sum(p["w"] ** 2)
        return jnp.exp(q) - jnp.exp(q) + q  # q where exp(q) is finite, inf − inf = NaN beyond ~88

    alphas = betas = jnp.array([-100.0, -1.0, 0.0, 2.0, 100.0])
    for method in ls.SLICE_METHODS:
        grid = np.asarray(
            jax.jit(lambda a, b, m=method: ls.loss_slice(loss_fn, center, d1, d2, a, b, method=m))(alphas, betas)
        )
        inner = np.abs(np.asarray(alphas))[None, :] <= 2.0
        inner = inner & inner.T
        assert np.all(np.isnan(grid[~inner]))
        a, b = np.meshgrid(alphas, betas)
        np.testing.assert_allclose(grid[inner], 2 * (a**2 + b**2)[inner], rtol=1e-6)


def test_projection_of_a_run_along_d1_lies_on_the_axis():
    center = [{"w": jnp.ones((3, 4)), "b": jnp.zeros(4)}, {"w": jnp.ones((4, 1)), "b": jnp.zeros(1)}]
    d1 = direction(jax.random.key(1), center)
    d2 = jax.tree.map(lambda r, a: r + 0.6 * a, direction(jax.random.key(2), center), d1)
    ts = jnp.array([-1.0, -0.4, 0.0, 0.3, 1.2])
    run = [jax.tree.map(lambda c, u, t=t: c + t * u, center, d1) for t in ts]
    coords, off = jax.jit(ls.project_trajectory)(ls.ravel_trajectory(run), center, d1, d2)
    np.testing.assert_allclose(coords[:, 0], ts, atol=1e-5)
    np.testing.assert_allclose(coords[:, 1], 0.0, atol=1e-5)  # d2 is not orthogonal to d1: least squares
    np.testing.assert_allclose(off, 0.0, atol=1e-5)

    # a point off the plane: 0.3·d1 − 0.2·d2 plus 1.5 along a unit vector orthogonal to both
    f1, f2 = flat(d1), flat(d2)
    q, _ = np.linalg.qr(np.stack([f1, f2, flat(random_tree(3, center))], axis=1))
    point = flat(center) + 0.3 * f1 - 0.2 * f2 + 1.5 * q[:, 2]
    coords, off = ls.project_trajectory(jnp.asarray(point[None]), center, d1, d2)
    np.testing.assert_allclose(coords[0], [0.3, -0.2], atol=1e-5)
    assert float(off[0]) == pytest.approx(1.5, rel=1e-5)


def test_interpolate_1d_runs_from_start_to_end(default_mlp):
    cfg, data, state, loss_fn = default_mlp
    start = state.params
    end = jax.tree.map(lambda p, r: p + r, start, random_tree(4, start))
    middle = jax.tree.map(lambda a, b: 0.5 * (a + b), start, end)
    losses = jax.jit(lambda s, e, t: ls.interpolate_1d(loss_fn, s, e, t))(start, end, jnp.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(losses, [loss_fn(start), loss_fn(middle), loss_fn(end)], rtol=1e-5)


# -------------------------------------------------------------------------------------------------- Hessian


def quadratic(eigenvalues, seed=0):
    """0.5 xᵀAx with A = Q diag(eigenvalues) Qᵀ, Q a random rotation."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(eigenvalues),) * 2))
    return jnp.asarray(q @ np.diag(eigenvalues) @ q.T, jnp.float32)


@pytest.mark.parametrize("eigenvalues", [[7.0, 3.0, 2.0, 1.0, 0.5, 0.1, -0.3, -1.0], [-6.0, 2.0, 1.0, 0.5]])
def test_hessian_top_eigenvalue_of_a_quadratic(eigenvalues):
    a = quadratic(eigenvalues)

    def loss_fn(x):
        return 0.5 * x @ a @ x

    top = jax.jit(lambda x, k: ls.hessian_top_eigenvalue(loss_fn, x, k))(jnp.ones(len(eigenvalues)), jax.random.key(0))
    assert float(top) == pytest.approx(eigenvalues[0], rel=0.01)  # the largest magnitude, sign kept


def test_hessian_top_eigenvalue_on_a_pytree():
    params = [{"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}, {"w": jnp.zeros((2, 1)), "b": jnp.zeros(1)}]
    x0, unravel = ravel_pytree(params)
    eigenvalues = np.linspace(-1.0, 4.0, x0.size)[::-1].copy()  # 4 on top, 11 parameters
    eigenvalues[1] = 2.0  # a clear gap
    a = quadratic(eigenvalues, seed=1)

    def loss_fn(p):
        v = ravel_pytree(p)[0]
        return 0.5 * v @ a @ v

    top = jax.jit(lambda p, k: ls.hessian_top_eigenvalue(loss_fn, p, k, iters=30))(params, jax.random.key(2))
    assert float(top) == pytest.approx(4.0, rel=0.01)


@pytest.mark.parametrize("overrides", [{"training": {"loss": "cross_entropy"}}, {"dataset": {"name": "xor"}}])
def test_hessian_top_eigenvalue_of_a_real_mlp_matches_the_dense_hessian(overrides):
    # (at TF Playground's default init the top positive and negative curvatures have the same magnitude to
    # 10⁻⁴, where power iteration cannot separate them: these two points have a clear top eigenvalue)
    cfg, data, state = mlp_setup(overrides)
    loss_fn = ls.mlp_data_loss(cfg.arch, cfg.loss, data.x_train, data.y_train, state.bn_state)
    flat0, unravel = ravel_pytree(state.params)  # 25 parameters: the dense Hessian is cheap
    dense = np.asarray(jax.jit(jax.hessian(lambda v: loss_fn(unravel(v))))(flat0))
    eig = np.linalg.eigvalsh(0.5 * (dense + dense.T))
    expected = eig[np.argmax(np.abs(eig))]
    top = jax.jit(lambda p, k: ls.hessian_top_eigenvalue(loss_fn, p, k))(state.params, jax.random.key(0))
    assert float(top) == pytest.approx(float(expected), rel=0.01)


# ------------------------------------------------------------------------------------------ gradient health


def health_of(overrides: dict):
    """Real gradients and activations of a spec's fresh net on its training data → (health, names)."""
    cfg, data, state = mlp_setup(overrides)
    arch = cfg.arch

    def loss(params):
        logits, extras = apply_mlp(params, data.x_train, arch, bn_state=state.bn_state, with_activations=True)
        return per_example_loss(logits, data.y_train, arch.output, cfg.loss).mean(), extras["activations"]

    grads, activations = jax.grad(loss, has_aux=True)(state.params)
    names = [act for _, act in arch.hidden]
    return hl.gradient_health(grads, state.params, None, activations, names), names


DEEP = {"dataset": {"name": "spiral"}, "features": ["x1", "x2"]}


def diagnose(*args, **kwargs):
    """The findings as the API gives them: server.ml's codes and numbers, in words (server.engines.diagnosis)."""
    return in_words(hl.diagnose(*args, **kwargs))


def test_ml_findings_are_codes_and_numbers_not_sentences():
    overrides = DEEP | {"network": {"hidden": [{"units": 8, "activation": "sigmoid"}] * 6, "init": "normal"}}
    health, names = health_of(overrides)
    (finding,) = [d for d in hl.diagnose(health, names, init="normal", learning_rate=0.03) if d["kind"] == "vanishing"]
    assert "message" not in finding
    assert finding["ratio"] < hl.VANISHING_RATIO and finding["last"] == 6
    assert "sigmoid" in finding["causes"] and "small_init" in finding["causes"]


def test_vanishing_gradients_are_diagnosed_on_a_deep_sigmoid_net():
    overrides = DEEP | {"network": {"hidden": [{"units": 8, "activation": "sigmoid"}] * 6, "init": "normal"}}
    health, names = health_of(overrides)
    found = diagnose(health, names, init="normal", learning_rate=0.03)
    vanishing = [d for d in found if d["kind"] == "vanishing"]
    assert len(vanishing) == 1, found
    assert vanishing[0]["layer"] == 0
    assert "layer 1 gets 10⁻" in vanishing[0]["message"] and "layer 7" in vanishing[0]["message"]
    assert {"activation": "relu", "init": "he"} in vanishing[0]["fixes"]


def test_vanishing_gradients_are_not_diagnosed_on_relu_with_he_init():
    overrides = DEEP | {"network": {"hidden": [{"units": 8, "activation": "relu"}] * 6, "init": "he"}}
    health, names = health_of(overrides)
    assert float(health["grad_norm"][0] / health["grad_norm"][-1]) > hl.VANISHING_RATIO
    assert not [d for d in diagnose(health, names, init="he") if d["kind"] in ("vanishing", "exploding")]


def test_gradient_health_counts_dead_and_saturated_units_and_nans():
    arch = Arch(n_inputs=2, hidden=((4, "relu"), (4, "sigmoid")), output="tanh", n_outputs=1)
    params = [
        {"w": jnp.array([[0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, -1.0]]), "b": jnp.array([-1.0, 1.0, -0.5, 3.0])},
        {"w": jnp.full((4, 4), 0.01), "b": jnp.array([10.0, -10.0, 0.0, 12.0])},  # units 0, 1, 3 saturated
        {"w": jnp.ones((4, 1)), "b": jnp.zeros(1)},
    ]
    x = jax.random.uniform(jax.random.key(0), (64, 2), minval=-1.0, maxval=1.0)  # units 1, 3 always fire
    _, extras = apply_mlp(params, x, arch, with_activations=True)
    names = ["relu", "sigmoid"]
    grads = jax.tree.map(jnp.ones_like, params)
    grads[1]["w"] = grads[1]["w"].at[0, 0].set(jnp.nan)
    grads[1]["b"] = grads[1]["b"].at[2].set(jnp.inf)
    updates = jax.tree.map(lambda p: 0.1 * p, params)
    health = jax.jit(lambda g, p, u, a: hl.gradient_health(g, p, u, a, names))(
        grads, params, updates, extras["activations"]
    )
    np.testing.assert_array_equal(health["layer"], [0, 1, 2])
    np.testing.assert_array_equal(health["units"], [4, 4, 1])
    np.testing.assert_allclose(health["dead_fraction"], [0.5, 0.0, 0.0])
    np.testing.assert_allclose(health["saturated_fraction"], [0.0, 0.75, 0.0])
    np.testing.assert_array_equal(health["nonfinite_grads"], [0, 2, 0])
    np.testing.assert_array_equal(health["nonfinite_params"], [0, 0, 0])
    assert int(health["nonfinite_grads_total"]) == 2
    np.testing.assert_allclose(health["update_ratio"], [0.1, 0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(health["grad_norm"][0], np.sqrt(8.0), rtol=1e-6)

    found = diagnose(health, names, init="xavier", learning_rate=0.3)
    assert [(d["kind"], d["layer"]) for d in found] == [("exploding", 1), ("dead_relu", 0), ("saturated", 1)]
    assert "2 of 4 ReLU units" in found[1]["message"] and {"learning_rate": 0.03} in found[1]["fixes"]
    assert "3 of 4 sigmoid units" in found[2]["message"]


def test_diagnose_exploding_growth_and_a_healthy_net():
    health = {
        "layer": np.arange(3),
        "units": np.array([8, 8, 1]),
        "grad_norm": np.array([2e3, 10.0, 1.0]),
        "dead_fraction": np.zeros(3),
        "saturated_fraction": np.zeros(3),
        "nonfinite_grads": np.zeros(3, int),
        "nonfinite_params": np.zeros(3, int),
        "nonfinite_grads_total": 0,
        "nonfinite_params_total": 0,
    }
    found = diagnose(health, ["relu", "relu"], init="he", learning_rate=1.0)
    assert [d["kind"] for d in found] == ["exploding"]
    assert "10³ times layer 3's" in found[0]["message"] and {"learning_rate": 0.1} in found[0]["fixes"]
    assert diagnose(health | {"grad_norm": np.array([0.5, 1.0, 1.0])}, ["relu", "relu"]) == []
