"""The CNN core pins facts: im2col equals XLA's convolution (values and gradients), shapes match the
geometry, impossible geometry names its layer, a tiny CNN learns bars, the confusion matrix counts."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from server.ml import cnn
from server.ml.cnn import BatchNorm, CnnArch, CnnTrainConfig, Conv, Dense, Dropout, Flatten, GeometryError, Pool
from server.ml.images import generate_images, split_images
from server.ml.train import hyper


def _random_geometry(rng: np.random.Generator, k=None, stride=None, padding=None):
    """A random valid conv geometry: (x (B, H, W, C), w (k, k, C, F), stride, padding); kernel side 1-7,
    stride 1-3, 1-4 channels in and out, unless given."""
    k = int(rng.integers(1, 8)) if k is None else k
    stride = int(rng.integers(1, 4)) if stride is None else stride
    padding = str(rng.choice(["same", "valid"])) if padding is None else padding
    c, f = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    lo = k if padding == "valid" else 1
    h, w = (int(rng.integers(lo, lo + 9)) for _ in range(2))
    x = rng.standard_normal((2, h, w, c)).astype(np.float32)
    kernel = rng.standard_normal((k, k, c, f)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(kernel), stride, padding


CONV_DN = ("NHWC", "HWIO", "NHWC")


@partial(jax.jit, static_argnames=("stride", "padding"))
def _forwards(x, w, stride, padding):
    """im2col's output and lax's with lax's own "SAME"/"VALID" padding: one compile per geometry."""
    return cnn.conv2d(x, w, stride, padding, "im2col"), jax.lax.conv_general_dilated(
        x, w, (stride, stride), padding.upper(), dimension_numbers=CONV_DN
    )


@partial(jax.jit, static_argnames=("stride", "padding"))
def _gradients(x, w, r, stride, padding):
    """Gradients w.r.t. x and w of <conv(x, w), r> (r a random cotangent) for each implementation."""

    def f(x, w, impl):
        return jnp.sum(cnn.conv2d(x, w, stride, padding, impl) * r)

    return {impl: jax.grad(f, argnums=(0, 1))(x, w, impl) for impl in cnn.CONV_IMPLS}


def test_im2col_equals_lax_conv_forward():
    rng = np.random.default_rng(0)
    # every kernel side with both paddings (strides cycling 1-3), then random geometries
    fixed = [(k, 1 + (k + (p == "valid")) % 3, p) for k in range(1, 8) for p in ("same", "valid")]
    for i in range(18):
        x, w, stride, padding = _random_geometry(rng, *(fixed[i] if i < len(fixed) else ()))
        ours, ref = _forwards(x, w, stride, padding)
        where = f"x {x.shape} w {w.shape} stride {stride} {padding}"
        assert ours.shape == ref.shape, where
        np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=1e-5, err_msg=where)


def test_im2col_gradients_equal_lax_conv():
    rng = np.random.default_rng(1)
    for _ in range(6):
        x, w, stride, padding = _random_geometry(rng)
        shape = jax.eval_shape(partial(cnn.conv2d, stride=stride, padding=padding, impl="lax"), x, w).shape
        r = jnp.asarray(rng.standard_normal(shape).astype(np.float32))
        grads = _gradients(x, w, r, stride, padding)
        where = f"x {x.shape} w {w.shape} stride {stride} {padding}"
        for ours, theirs in zip(grads["im2col"], grads["lax"], strict=True):
            np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=1e-4, err_msg=where)


def test_conv_gradient_matches_finite_differences():
    # float32 central differences on a tiny conv: a loss that is quadratic in w makes them accurate.
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((1, 5, 4, 2)).astype(np.float32))
    w = rng.standard_normal((3, 3, 2, 2)).astype(np.float32)

    def loss(w):
        return 0.5 * jnp.sum(cnn.conv2d(x, w, 2, "same") ** 2)

    grad = np.asarray(jax.grad(loss)(jnp.asarray(w)))
    eps = 1e-2
    for idx in [(0, 0, 0, 0), (1, 2, 1, 0), (2, 1, 0, 1), (1, 1, 1, 1)]:
        plus, minus = w.copy(), w.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric = (float(loss(jnp.asarray(plus))) - float(loss(jnp.asarray(minus)))) / (2 * eps)
        assert numeric == pytest.approx(grad[idx], rel=1e-2, abs=1e-2)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_equals_reduce_window(kind):
    rng = np.random.default_rng(3)
    for _ in range(12):
        size, stride = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        x = jnp.asarray(rng.standard_normal((2, int(rng.integers(size, 10)), int(rng.integers(size, 10)), 3)))
        init, op = (-jnp.inf, jax.lax.max) if kind == "max" else (0.0, jax.lax.add)
        ref = jax.lax.reduce_window(x, init, op, (1, size, size, 1), (1, stride, stride, 1), "VALID")
        ref = ref if kind == "max" else ref / (size * size)
        ours = jax.jit(cnn.pool2d, static_argnums=(1, 2, 3))(x, kind, size, stride)
        np.testing.assert_allclose(ours, ref, atol=1e-6)


def _random_layers(rng: np.random.Generator, side: int) -> tuple[cnn.Layer, ...]:
    """A random stack that fits a side×side image (spatial layers first, then maybe dense/dropout)."""
    layers, s = [], side
    for _ in range(int(rng.integers(1, 5))):
        pick = rng.integers(4)
        if pick <= 1:
            k, stride = int(rng.integers(1, 8)), int(rng.integers(1, 3))
            padding = "valid" if k <= s and rng.random() < 0.5 else "same"
            layers.append(Conv(int(rng.integers(1, 6)), k, stride, padding, "relu"))
            s = (s - k) // stride + 1 if padding == "valid" else -(-s // stride)
        elif pick == 2 and s >= 2:
            size = int(rng.integers(1, min(s, 3) + 1))
            stride = None if rng.random() < 0.5 else int(rng.integers(1, 3))
            layers.append(Pool(str(rng.choice(["max", "avg"])), size, stride))
            s = (s - size) // (stride or size) + 1
        else:
            layers.append(BatchNorm())
    if rng.random() < 0.5:
        layers += [Flatten(), Dense(int(rng.integers(1, 9)), "tanh"), Dropout(0.3)]
    elif rng.random() < 0.5:
        layers.append(Dense(5, "relu"))  # straight after a spatial layer: flattens it
    return tuple(layers)


def test_output_shapes_match_apply():
    rng = np.random.default_rng(4)
    for trial in range(60):
        side, c = int(rng.integers(4, 13)), int(rng.integers(1, 4))
        arch = CnnArch((side, side, c), _random_layers(rng, side), 3)
        shapes = cnn.output_shapes(arch.input_shape, arch.layers)
        # Shapes only: eval_shape traces init and apply without compiling them (a compile per arch is slow).
        params = jax.eval_shape(partial(cnn.init_cnn, arch=arch), jax.random.key(trial))
        x = jax.ShapeDtypeStruct((2, side, side, c), jnp.float32)
        for train in (False, True):
            apply = partial(cnn.apply_cnn, arch=arch, train=train, key=jax.random.key(0), with_activations=True)
            logits, extras = jax.eval_shape(apply, params, x)
            assert logits.shape == (2, 3)
            assert [a.shape[1:] for a in extras["activations"]] == shapes, arch


def test_param_shapes_and_count():
    arch = CnnArch((8, 8, 1), (Conv(4, 3), Pool(), BatchNorm(), Flatten(), Dense(6, "tanh")), 10)
    params = jax.eval_shape(partial(cnn.init_cnn, arch=arch), jax.random.key(0))
    shapes = [{k: v.shape for k, v in p.items()} for p in params]
    assert shapes == [
        {"w": (3, 3, 1, 4), "b": (4,)},
        {},
        {"gamma": (4,), "beta": (4,)},
        {},
        {"w": (64, 6), "b": (6,)},
        {"w": (6, 10), "b": (10,)},
    ]
    assert [len(s) for s in cnn.init_cnn_bn_state(arch)] == [0, 0, 2, 0, 0]


@pytest.mark.parametrize(
    ("layers", "index", "kind"),
    [
        ((Conv(4, 7, padding="valid"),), 0, "conv"),
        ((Conv(4, 3), Pool(size=3), Conv(4, 3, padding="valid")), 2, "conv"),
        ((Pool(size=6),), 0, "pool"),
        ((Conv(4, 3, stride=2), Pool(size=2), Pool(size=2), Pool(size=2)), 2, "pool"),
        ((Flatten(), Conv(4, 3)), 1, "conv"),
        ((Dense(4), Pool()), 1, "pool"),
    ],
)
def test_impossible_geometry_names_the_layer(layers, index, kind):
    with pytest.raises(GeometryError, match=rf"layer {index} \({kind}\)") as info:
        cnn.output_shapes((5, 5, 1), layers)
    assert isinstance(info.value, ValueError)
    with pytest.raises(GeometryError):
        cnn.init_cnn(jax.random.key(0), CnnArch((5, 5, 1), layers, 2))


def test_same_and_valid_sizes():
    assert cnn.output_shapes((7, 9, 1), (Conv(2, 3, 2, "same"),)) == [(4, 5, 2)]  # ceil(in / stride)
    assert cnn.output_shapes((7, 9, 1), (Conv(2, 3, 2, "valid"),)) == [(3, 4, 2)]  # floor((in - k) / s) + 1
    assert cnn.output_shapes((7, 7, 3), (Pool("max", 3, 2), Flatten())) == [(3, 3, 3), (27,)]


def test_layer_specs_validate_and_round_trip():
    with pytest.raises(ValueError, match="filters"):
        Conv(filters=65)
    with pytest.raises(ValueError, match="kernel"):
        Conv(kernel=8)
    with pytest.raises(ValueError, match="activation"):
        Dense(4, "nope")
    with pytest.raises(ValueError, match="unknown layer type"):
        cnn.layer_from_dict({"type": "lstm"})
    for layer in (Conv(8, 5, 2, "valid", "tanh"), Pool("avg", 3, 1), Flatten(), Dense(7), Dropout(0.2), BatchNorm()):
        d = cnn.layer_to_dict(layer)
        assert d["type"] in cnn.LAYERS
        assert cnn.layer_from_dict(d) == layer
    arch = CnnArch((8, 8, 1), (Conv(), Pool()), 4)
    assert hash(arch) == hash(CnnArch((8, 8, 1), (Conv(), Pool()), 4))


@pytest.fixture(scope="module")
def bars():
    x, y = generate_images("bars", 400, 0.05, seed=0, size=16)
    return split_images(x, y, 75, seed=0)


def test_tiny_cnn_learns_bars(bars, conv="im2col"):
    x_tr, y_tr, x_te, y_te = bars
    arch = CnnArch((16, 16, 1), (Conv(4, 3, activation="relu"), Pool("max", 2), BatchNorm(), Dropout(0.1)), 2)
    cfg = CnnTrainConfig(arch, optimizer="adam", regularization="l2", dropout=True, conv=conv)
    state = cnn.init_cnn_state(cfg, cnn.init_cnn(jax.random.key(0), arch), jax.random.key(1))
    before, _ = cnn.evaluate_cnn(cfg, state.params, state.bn_state, x_te, y_te)
    batches = cnn.image_batches(x_tr, y_tr, 16)  # 300 images: the last batch is padded
    done, state, ok = cnn.train_cnn_epochs(cfg, state, batches, hyper(0.01, reg_rate=1e-4, dropout=[0.1]), jnp.int32(5))
    assert int(done) == 5 and bool(ok)
    loss, acc = cnn.evaluate_cnn(cfg, state.params, state.bn_state, x_te, y_te)
    assert float(acc) > 0.9
    assert float(loss) < float(before)
    logits = cnn.predict_cnn(cfg, state.params, state.bn_state, x_te)
    cm = cnn.confusion_matrix(logits, y_te, 2)
    assert cm.shape == (2, 2) and int(cm.sum()) == len(y_te)
    assert int(jnp.trace(cm)) == round(float(acc) * len(y_te))
    assert cm.sum(axis=1).tolist() == np.bincount(y_te, minlength=2).tolist()  # rows are the true classes


def test_divergence_stops_training(bars):
    x_tr, y_tr, _, _ = bars
    arch = CnnArch((16, 16, 1), (Conv(2, 3, activation="linear"),), 2)
    cfg = CnnTrainConfig(arch, optimizer="sgd")
    state = cnn.init_cnn_state(cfg, cnn.init_cnn(jax.random.key(0), arch), jax.random.key(1))
    done, _, ok = cnn.train_cnn_epochs(cfg, state, cnn.image_batches(x_tr, y_tr, 50), hyper(1e30), jnp.int32(50))
    assert not bool(ok) and int(done) < 50


def test_evaluate_in_chunks_equals_one_pass():
    arch = CnnArch((6, 6, 1), (Conv(3, 3),), 3)
    cfg = CnnTrainConfig(arch)
    params = cnn.init_cnn(jax.random.key(0), arch)
    x = jax.random.uniform(jax.random.key(1), (cnn.EVAL_CHUNK + 7, 6, 6, 1))
    logits = cnn.predict_cnn(cfg, params, cnn.init_cnn_bn_state(arch), x)
    np.testing.assert_allclose(logits, jax.jit(partial(cnn.apply_cnn, arch=arch))(params, x)[0], atol=1e-5)


def test_augmentation_shows_fresh_variants_each_epoch_and_still_learns(bars):
    x_tr, y_tr, x_te, y_te = bars
    arch = CnnArch((16, 16, 1), (Conv(4, 3, activation="relu"), Pool("max", 2)), 2)
    plain = CnnTrainConfig(arch, optimizer="adam")
    cfg = CnnTrainConfig(arch, optimizer="adam", augment=(2, 10.0, 0.25))
    batches = cnn.image_batches(x_tr, y_tr, 16)  # 300 images: the last batch has padded rows
    a, b = cnn.augmented(cfg, jax.random.key(0), batches[0]), cnn.augmented(cfg, jax.random.key(1), batches[0])
    assert a.shape == batches[0].shape and not np.array_equal(a, b) and not np.array_equal(a, batches[0])
    pad = np.asarray(batches[2]) == 0
    assert pad.any() and np.all(np.asarray(a)[pad] == 0)  # padded rows stay blank (and masked)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0 + 1e-6

    start = cnn.init_cnn(jax.random.key(0), arch)
    h = hyper(0.01)

    def train(c, epochs):
        state = cnn.init_cnn_state(c, start, jax.random.key(1))
        done, state, ok = cnn.train_cnn_epochs(c, state, batches, h, jnp.int32(epochs))
        assert int(done) == epochs and bool(ok)
        return state

    s1, s2 = train(cfg, 4), train(cfg, 4)
    np.testing.assert_array_equal(s1.params[0]["w"], s2.params[0]["w"])  # deterministic: the key decides
    assert not np.allclose(s1.params[0]["w"], train(plain, 4).params[0]["w"])
    # The key moves on every epoch, so epoch 2 sees other variants than epoch 1.
    assert not np.array_equal(train(cfg, 1).key, train(cfg, 2).key)
    _, acc = cnn.evaluate_cnn(cfg, s1.params, s1.bn_state, x_te, y_te)
    assert float(acc) > 0.85


def test_dropout_rates_are_traced_so_changing_one_never_recompiles(bars):
    x_tr, y_tr, _, _ = bars
    layers = lambda rate: (Conv(4, 3, activation="relu"), Pool("max", 2), Dropout(rate))  # noqa: E731
    arch = CnnArch((16, 16, 1), layers(0.2), 2)
    assert arch == CnnArch((16, 16, 1), layers(0.7), 2)  # the rate is not part of the compiled identity
    cfg, plain = CnnTrainConfig(arch, optimizer="adam", dropout=True), CnnTrainConfig(arch, optimizer="adam")
    batches = cnn.image_batches(x_tr, y_tr, 25)
    start = cnn.init_cnn(jax.random.key(0), arch)

    def train(c, rates):
        state = cnn.init_cnn_state(c, start, jax.random.key(1))
        _, state, _ = cnn.train_cnn_epochs(c, state, batches, hyper(0.01, dropout=rates), jnp.int32(2))
        return np.asarray(state.params[0]["w"])

    low = train(cfg, [0.2])
    compiled = cnn.train_cnn_epochs._cache_size()
    high, none = train(cfg, [0.7]), train(cfg, [0.0])
    assert cnn.train_cnn_epochs._cache_size() == compiled  # other rates: the same program
    assert not np.allclose(low, high)
    np.testing.assert_allclose(none, train(plain, 0.0), atol=1e-6)  # rate 0 keeps every unit
