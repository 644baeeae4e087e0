"""Tests for server/ml/models.py: the activation table, dense, init, backprop gradients, weight transfer.

The gradient tests compare JAX's gradients of the training objective (server/ml/train.py) with central
finite differences, so a forward pass that autodiff gets wrong (a custom activation, batch norm, a
penalty) shows up as a mismatch, whatever the cause.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from server.ml.models import (
    ACTIVATIONS,
    Arch,
    apply_mlp,
    count_params,
    dense,
    init_bn_state,
    init_mlp,
    output_value,
    transfer_params,
)
from server.ml.train import TrainConfig, hyper, objective

SMALL = Arch(2, ((4, "tanh"), (2, "tanh")), "tanh", 1)  # TF Playground's first screen
KEY = jax.random.PRNGKey(0)


def random_params(arch, seed=0):
    """Parameters of init_mlp's structure with generic values (non-zero biases, gamma ≠ 1, beta ≠ 0), drawn
    in numpy: the gradient and transfer tests need many throwaway architectures, and init_mlp compiles
    once per architecture."""
    rng = np.random.default_rng(seed)
    params = []
    for i, (fan_in, fan_out) in enumerate(zip(arch.sizes[:-1], arch.sizes[1:], strict=True)):
        layer = {"w": rng.normal(size=(fan_in, fan_out)) / np.sqrt(fan_in), "b": rng.normal(size=fan_out) * 0.1}
        if arch.batch_norm and i < len(arch.hidden):
            layer["gamma"] = rng.uniform(0.5, 1.5, fan_out)
            layer["beta"] = rng.normal(size=fan_out) * 0.1
        params.append({k: jnp.asarray(v, jnp.float32) for k, v in layer.items()})
    return params


# --------------------------------------------------------------------------- activations

Z = np.array([-2.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 2.0])


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# The lecture's formulas, written independently of jax (float64 numpy / math).
EXPECTED = {
    "linear": lambda z: z,
    "step": lambda z: np.where(z < 0, 0.0, np.where(z > 0, 1.0, 0.5)),
    "sign": lambda z: np.where(z < 0, -1.0, np.where(z > 0, 1.0, 0.0)),
    "piecewise_linear": lambda z: np.where(z <= -0.5, 0.0, np.where(z >= 0.5, 1.0, z + 0.5)),
    "sigmoid": _sigmoid,
    "tanh": lambda z: (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z)),
    "relu": lambda z: np.maximum(0.0, z),
    "leaky_relu": lambda z: np.where(z >= 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.exp(z) - 1.0),
    "softplus": lambda z: np.log(1.0 + np.exp(z)),
    "gaussian": lambda z: np.exp(-z * z),
    "gelu": lambda z: np.array([v * 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in z]),
    "swish": lambda z: z * _sigmoid(z),
}


def test_activation_table_has_exactly_the_lecture_units():
    assert set(ACTIVATIONS) == set(EXPECTED)
    assert len(ACTIVATIONS) == 13


@jax.jit
def _table(z):
    """Every activation and its derivative at z, in one compiled call (op by op is much slower)."""
    return {name: (a.fn(z), jax.vmap(jax.grad(a.fn))(z)) for name, a in ACTIVATIONS.items()}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_activation_values_follow_the_formula(name):
    got = np.asarray(_table(jnp.asarray(Z, jnp.float32))[name][0], np.float64)
    np.testing.assert_allclose(got, EXPECTED[name](Z), rtol=1e-6, atol=1e-6, err_msg=name)


def test_step_and_sign_values_at_the_origin_and_either_side():
    # The exact table entries users see in the lecture: no rounding tolerance.
    z = jnp.array([-1e-3, 0.0, 1e-3], jnp.float32)
    assert np.asarray(ACTIVATIONS["step"].fn(z)).tolist() == [0.0, 0.5, 1.0]
    assert np.asarray(ACTIVATIONS["sign"].fn(z)).tolist() == [-1.0, 0.0, 1.0]


def test_only_step_and_sign_have_zero_gradient():
    flagged = {name for name, a in ACTIVATIONS.items() if a.zero_gradient}
    assert flagged == {"step", "sign"}
    # ...and the flag is true to fact: their derivative is 0 away from 0, the others' is not.
    table = _table(jnp.array([-0.3, 0.2, 0.4], jnp.float32))
    for name, a in ACTIVATIONS.items():
        assert bool(jnp.all(table[name][1] == 0)) == a.zero_gradient, name


def test_activation_values_stay_in_the_declared_range():
    table = _table(jnp.linspace(-10.0, 10.0, 2001, dtype=jnp.float32))
    for name, a in ACTIVATIONS.items():
        v = np.asarray(table[name][0])
        lo, hi = a.range
        assert v.min() >= lo - 1e-6 and v.max() <= hi + 1e-6, name


# --------------------------------------------------------------------------- dense


@pytest.mark.parametrize(
    ("rows", "fan_in", "fan_out"),
    [
        (5, 3, 4),  # broadcast multiply-sum path
        (64, 8, 8),  # largest batch on the broadcast path
        (65, 8, 8),  # one more row: matmul path
        (5, 70, 70),  # matrix too big for the broadcast path
        (300, 2, 4),  # a frame grid
    ],
)
def test_dense_is_a_matrix_product(rows, fan_in, fan_out):
    rng = np.random.default_rng(rows + fan_in)
    x = rng.normal(size=(rows, fan_in)).astype(np.float32)
    w = rng.normal(size=(fan_in, fan_out)).astype(np.float32)
    got = np.asarray(dense(jnp.asarray(x), jnp.asarray(w)))
    assert got.shape == (rows, fan_out)
    np.testing.assert_allclose(got, x.astype(np.float64) @ w.astype(np.float64), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- init


def test_init_shapes_and_parameter_count():
    params = init_mlp(KEY, SMALL)
    shapes = [(tuple(p["w"].shape), tuple(p["b"].shape)) for p in params]
    assert shapes == [((2, 4), (4,)), ((4, 2), (2,)), ((2, 1), (1,))]
    assert count_params(params) == 4 * 2 + 4 + 2 * 4 + 2 + 1 * 2 + 1 == 25
    assert all(p["w"].dtype == jnp.float32 for p in params)
    # biases start at zero whatever the init
    assert all(not np.any(np.asarray(p["b"])) for p in params)


def test_random_params_helper_has_init_mlps_structure():
    # random_params stands in for init_mlp in many tests: it must build the same pytree
    for arch in (SMALL, Arch(3, ((5, "relu"),), "softmax", 3, batch_norm=True)):
        want = jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), init_mlp(KEY, arch))
        assert jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), random_params(arch)) == want


def test_zeros_init_gives_all_zero_weights():
    params = init_mlp(KEY, SMALL, "zeros")
    assert all(not np.any(np.asarray(leaf)) for leaf in jax.tree_util.tree_leaves(params))


def test_init_depends_on_the_key():
    a, b = init_mlp(jax.random.PRNGKey(1), SMALL), init_mlp(jax.random.PRNGKey(2), SMALL)
    assert not np.array_equal(a[0]["w"], b[0]["w"])
    np.testing.assert_array_equal(a[0]["w"], init_mlp(jax.random.PRNGKey(1), SMALL)[0]["w"])


BIG = Arch(64, ((64, "relu"), (32, "relu")), "linear", 1)


def test_xavier_is_glorot_uniform():
    for layer, (fan_in, fan_out) in zip(init_mlp(KEY, BIG, "xavier"), [(64, 64), (64, 32), (32, 1)], strict=True):
        w = np.asarray(layer["w"])
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        assert np.abs(w).max() <= bound
        if w.size >= 1000:  # enough samples to fill the interval: the bound is the right one, not a smaller one
            assert np.abs(w).max() > 0.95 * bound
            assert abs(w.std() - bound / math.sqrt(3.0)) < 0.1 * bound / math.sqrt(3.0)


def test_he_std_is_sqrt_2_over_fan_in():
    w = np.asarray(init_mlp(KEY, BIG, "he")[0]["w"])  # 4096 samples
    assert abs(w.mean()) < 0.02
    assert w.std() == pytest.approx(math.sqrt(2.0 / 64), rel=0.1)


def test_normal_init_is_small():
    w = np.asarray(init_mlp(KEY, BIG, "normal")[0]["w"])
    assert w.std() == pytest.approx(0.01, rel=0.1)


def test_unknown_init_is_an_error():
    with pytest.raises(KeyError, match="unknown init"):
        init_mlp(KEY, SMALL, "orthogonal")


def test_batch_norm_adds_gamma_beta_to_hidden_layers_only():
    arch = Arch(2, ((4, "tanh"), (3, "relu")), "softmax", 3, batch_norm=True)
    params = init_mlp(KEY, arch)
    for layer, units in zip(params[:2], (4, 3), strict=True):
        assert set(layer) == {"w", "b", "gamma", "beta"}
        np.testing.assert_array_equal(layer["gamma"], np.ones(units, np.float32))
        np.testing.assert_array_equal(layer["beta"], np.zeros(units, np.float32))
    assert set(params[-1]) == {"w", "b"}
    assert count_params(params) == (2 * 4 + 4 + 8) + (4 * 3 + 3 + 6) + (3 * 3 + 3)
    assert [(s["mean"].shape, s["var"].shape) for s in init_bn_state(arch)] == [((4,), (4,)), ((3,), (3,))]
    assert init_bn_state(SMALL) == []


# --------------------------------------------------------------------------- forward pass


def test_apply_mlp_is_the_layer_formula():
    # h = φ(x W + b) layer by layer, logits = h W_out + b_out, written out in numpy.
    params = random_params(SMALL)
    x = np.random.default_rng(0).normal(size=(7, 2)).astype(np.float32)
    p = [{k: np.asarray(v, np.float64) for k, v in layer.items()} for layer in params]
    h1 = np.tanh(x @ p[0]["w"] + p[0]["b"])
    h2 = np.tanh(h1 @ p[1]["w"] + p[1]["b"])
    want = h2 @ p[2]["w"] + p[2]["b"]
    logits, extras = apply_mlp(params, jnp.asarray(x), SMALL, with_activations=True)
    np.testing.assert_allclose(np.asarray(logits), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(extras["activations"][0]), h1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(extras["activations"][1]), h2, rtol=1e-5, atol=1e-6)


def test_dropout_is_inverted_dropout():
    # in training each hidden unit is either dropped (0) or scaled by 1 / (1 − rate), so the expected
    # activation equals the evaluation-time one; in evaluation (train=False) nothing is dropped, key or not
    arch = Arch(2, ((64, "sigmoid"),), "tanh", 1)
    params = random_params(arch)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(32, 2)), jnp.float32)
    _, ev = apply_mlp(params, x, arch, with_activations=True)
    _, tr = apply_mlp(params, x, arch, train=True, dropout=0.25, key=KEY, with_activations=True)
    h, d = np.asarray(ev["activations"][0]), np.asarray(tr["activations"][0])
    kept = d != 0
    np.testing.assert_allclose(d[kept], h[kept] / 0.75, rtol=1e-6)
    assert 0.7 < kept.mean() < 0.8  # about 1 − rate of the units survive
    _, tr_eval = apply_mlp(params, x, arch, train=False, dropout=0.25, key=KEY, with_activations=True)
    np.testing.assert_array_equal(np.asarray(tr_eval["activations"][0]), h)


def test_output_value_scales():
    logits = jnp.array([[-3.0, 0.0, 1.0], [0.0, 2.0, -1.0]], jnp.float32)
    np.testing.assert_allclose(output_value(logits, "tanh"), np.tanh([-3.0, 0.0]), rtol=1e-6)
    # sigmoid output shown on the same ±1 scale as tanh: 2p − 1
    np.testing.assert_allclose(output_value(logits, "sigmoid"), 2 * _sigmoid(np.array([-3.0, 0.0])) - 1, rtol=1e-6)
    assert np.asarray(output_value(logits, "sign")).tolist() == [-1.0, 1.0]
    np.testing.assert_array_equal(output_value(logits, "linear"), np.array([-3.0, 0.0], np.float32))
    probs = np.asarray(output_value(logits, "softmax"))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert probs.argmax(axis=1).tolist() == [2, 1]


# --------------------------------------------------------------------------- gradients vs finite differences


def _preactivations(params, x, arch):
    """Hidden pre-activations z of every layer (no batch norm), to keep test points away from kinks.
    In numpy with the reference formulas: cheap, and independent of the code under test."""
    h, zs = x.astype(np.float64), []
    for i, (_, act) in enumerate(arch.hidden):
        z = h @ np.asarray(params[i]["w"], np.float64) + np.asarray(params[i]["b"], np.float64)
        zs.append(z)
        h = EXPECTED[act](z.ravel()).reshape(z.shape)
    return zs


def _batch(arch, n=12, margin=0.05, seed=0):
    """n inputs whose hidden pre-activations all stay ``margin`` away from 0 (relu's kink), and targets
    of the kind the output expects."""
    rng = np.random.default_rng(seed)
    params = random_params(arch, seed)
    x = rng.normal(size=(200, arch.n_inputs)).astype(np.float32) * 1.5
    far = np.ones(len(x), bool)
    for z in _preactivations(params, x, arch):
        far &= np.abs(z).min(axis=1) > margin
    x = x[far][:n]
    assert len(x) == n, "not enough test points away from the kinks: pick another seed"
    if arch.output == "softmax":
        y = rng.integers(0, arch.n_outputs, n).astype(np.float32)
    elif arch.output == "linear":
        y = rng.normal(size=n).astype(np.float32)
    else:
        y = rng.choice([-1.0, 1.0], n).astype(np.float32)
    return params, jnp.asarray(x), jnp.asarray(y)


def assert_grad_matches_finite_differences(loss, params, eps=1e-3, rtol=1e-2, atol=2e-4):
    """Every component of jax.grad(loss) at params against the central difference (f(p+εe) − f(p−εe)) / 2ε,
    in float32 (rounding error of the quotient ≈ 1e-7 / ε ≪ atol)."""
    flat, unravel = ravel_pytree(params)

    @jax.jit  # one compile per case; run op by op, the many small ops cost more than the arithmetic
    def both(flat):
        g, _ = ravel_pytree(jax.grad(loss)(unravel(flat)))
        f = jax.vmap(lambda v: loss(unravel(v)))
        basis = eps * jnp.eye(flat.size, dtype=flat.dtype)
        return g, (f(flat + basis) - f(flat - basis)) / (2 * eps)

    g, fd = (np.asarray(a) for a in both(flat))
    assert np.abs(g).max() > 1e-3, "degenerate test point: the gradient vanishes"
    bad = np.abs(fd - g) > atol + rtol * np.abs(g)
    assert not bad.any(), f"gradient differs from finite differences at {np.flatnonzero(bad)}: {g[bad]} vs {fd[bad]}"


def _loss(cfg, x, y, reg_rate=0.0):
    """The training objective (data loss + penalty) as a function of the params alone, in train mode."""
    h = hyper(0.1, reg_rate=reg_rate)
    mask = jnp.ones((x.shape[0],), jnp.float32)
    bn = init_bn_state(cfg.arch)
    return lambda p: objective(p, bn, x, y, mask, h, cfg)[0]


@pytest.mark.parametrize(
    "act", ["tanh", "sigmoid", "relu", "leaky_relu", "elu", "softplus", "gaussian", "gelu", "swish"]
)
def test_gradient_through_hidden_activation(act):
    arch = Arch(2, ((4, act), (3, act)), "tanh", 1)
    params, x, y = _batch(arch)
    assert_grad_matches_finite_differences(_loss(TrainConfig(arch), x, y), params)


@pytest.mark.parametrize(
    ("output", "n_out", "loss"),
    [
        ("tanh", 1, "mse"),
        ("sigmoid", 1, "cross_entropy"),
        ("softmax", 3, "cross_entropy"),
        ("softmax", 3, "mse"),
        ("linear", 1, "mse"),
    ],
)
def test_gradient_of_each_output_and_loss(output, n_out, loss):
    arch = Arch(2, ((4, "tanh"),), output, n_out)
    params, x, y = _batch(arch)
    assert_grad_matches_finite_differences(_loss(TrainConfig(arch, loss=loss), x, y), params)


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_gradient_with_penalty(kind):
    arch = Arch(2, ((4, "tanh"),), "tanh", 1)
    params, x, y = _batch(arch)
    # |w| has a kink at 0: the point must keep every weight further from 0 than ε
    assert min(float(jnp.abs(p["w"]).min()) for p in params) > 1e-2
    cfg = TrainConfig(arch, regularization=kind)
    loss = _loss(cfg, x, y, reg_rate=0.3)
    assert float(loss(params)) > float(_loss(TrainConfig(arch), x, y)(params)), "the penalty adds nothing"
    assert_grad_matches_finite_differences(loss, params)


def test_gradient_with_batch_norm_in_train_mode():
    arch = Arch(2, ((4, "tanh"), (3, "tanh")), "tanh", 1, batch_norm=True)
    params, x, y = _batch(arch)  # gamma/beta away from their initial 1/0: a generic point
    assert_grad_matches_finite_differences(_loss(TrainConfig(arch), x, y), params)


# --------------------------------------------------------------------------- transfer_params


def _transfer(old_arch, new_arch, rows=(0, 1), old_key=1, new_key=2):
    old, fresh = random_params(old_arch, old_key), random_params(new_arch, new_key)
    params, report = transfer_params(old, old_arch, fresh, new_arch, list(rows))
    assert report["kept"] + report["initialized"] == count_params(params), "report does not add up"
    assert sum(r["kept"] + r["initialized"] for r in report["layers"]) == count_params(params)
    # the result has exactly the new architecture's shapes
    assert jax.tree_util.tree_map(jnp.shape, params) == jax.tree_util.tree_map(jnp.shape, fresh)
    return old, fresh, params, report


def _eq(a, b):
    """Bitwise equality of two arrays."""
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_transfer_same_architecture_keeps_everything():
    old, _, new, report = _transfer(SMALL, SMALL)
    for o, n in zip(jax.tree_util.tree_leaves(old), jax.tree_util.tree_leaves(new), strict=True):
        _eq(o, n)
    assert report["kept"] == 25 and report["initialized"] == 0


def test_transfer_adding_a_neuron_keeps_every_old_weight():
    new_arch = Arch(2, ((5, "tanh"), (2, "tanh")), "tanh", 1)
    old, fresh, new, report = _transfer(SMALL, new_arch)
    _eq(new[0]["w"][:, :4], old[0]["w"])
    _eq(new[0]["b"][:4], old[0]["b"])
    _eq(new[1]["w"][:4], old[1]["w"])
    _eq(new[1]["b"], old[1]["b"])
    _eq(new[2]["w"], old[2]["w"])
    _eq(new[2]["b"], old[2]["b"])
    # the new neuron: fresh incoming weights and bias, fresh outgoing row
    _eq(new[0]["w"][:, 4], fresh[0]["w"][:, 4])
    _eq(new[0]["b"][4], fresh[0]["b"][4])
    _eq(new[1]["w"][4], fresh[1]["w"][4])
    assert report["kept"] == 25
    assert report["initialized"] == 2 + 1 + 2  # two inputs and a bias in, two weights out


def test_transfer_removing_the_last_neuron_keeps_the_rest():
    new_arch = Arch(2, ((3, "tanh"), (2, "tanh")), "tanh", 1)
    old, _, new, report = _transfer(SMALL, new_arch)
    _eq(new[0]["w"], old[0]["w"][:, :3])
    _eq(new[0]["b"], old[0]["b"][:3])
    _eq(new[1]["w"], old[1]["w"][:3])
    _eq(new[1]["b"], old[1]["b"])
    _eq(new[2]["w"], old[2]["w"])
    assert report["initialized"] == 0
    assert report["kept"] == count_params(new)


def test_transfer_adding_a_layer_at_the_end():
    new_arch = Arch(2, ((4, "tanh"), (2, "tanh"), (3, "relu")), "tanh", 1)
    old, fresh, new, report = _transfer(SMALL, new_arch)
    for i in (0, 1):  # earlier hidden layers untouched
        _eq(new[i]["w"], old[i]["w"])
        _eq(new[i]["b"], old[i]["b"])
    _eq(new[2]["w"], fresh[2]["w"])  # the new layer is fresh
    _eq(new[3]["w"][:2], old[2]["w"])  # output layer: the overlapping block survives
    _eq(new[3]["w"][2], fresh[3]["w"][2])
    _eq(new[3]["b"], old[2]["b"])
    assert report["layers"][2]["kept"] == 0
    assert report["layers"][3]["kept"] == 2 + 1


def test_transfer_input_rows_follow_the_features():
    # features [x1, x2] → [x2, x1_sq]: new row 0 is old row 1 (x2), row 1 (x1_sq) is new
    old, fresh, new, report = _transfer(SMALL, SMALL, rows=(1, None))
    _eq(new[0]["w"][0], old[0]["w"][1])
    _eq(new[0]["w"][1], fresh[0]["w"][1])
    _eq(new[0]["b"], old[0]["b"])
    _eq(new[1]["w"], old[1]["w"])
    assert report["layers"][0]["kept"] == 4 + 4
    assert report["layers"][0]["initialized"] == 4


def test_transfer_keeps_batch_norm_parameters():
    old_arch = Arch(2, ((4, "tanh"),), "tanh", 1, batch_norm=True)
    new_arch = Arch(2, ((5, "tanh"),), "tanh", 1, batch_norm=True)
    old, fresh, new, report = _transfer(old_arch, new_arch)
    _eq(new[0]["gamma"][:4], old[0]["gamma"])
    _eq(new[0]["beta"][:4], old[0]["beta"])
    _eq(new[0]["gamma"][4], fresh[0]["gamma"][4])
    _eq(new[0]["beta"][4], fresh[0]["beta"][4])
    assert report["layers"][0]["kept"] == 4 * (2 + 1 + 2)  # w columns, b, gamma, beta of 4 neurons


def test_transfer_to_and_from_no_hidden_layers_keeps_only_what_still_means_the_same():
    # Removing every hidden layer: the output now reads the features, not hidden units. Its old weights
    # (from hidden units) mean something else, so only its bias survives.
    linear = Arch(2, (), "tanh", 1)
    old, fresh, new, report = _transfer(SMALL, linear)
    _eq(new[0]["w"], fresh[0]["w"])
    _eq(new[0]["b"], old[2]["b"])
    assert report["kept"] == 1 and report["initialized"] == 2
    # And back: the first hidden layer is new, the output keeps its bias but not its feature weights.
    old, fresh, new, report = _transfer(linear, SMALL)
    _eq(new[0]["w"], fresh[0]["w"])
    _eq(new[2]["w"], fresh[2]["w"])
    _eq(new[2]["b"], old[0]["b"])
    assert report["kept"] == 1
