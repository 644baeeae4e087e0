"""Activation maximization, saliency and the convolution walkthrough: they do what the lecture says."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from server.ml import cnn
from server.ml.cnn_views import conv_walkthrough, maximize, saliency

ARCH = cnn.CnnArch(
    (12, 12, 1), (cnn.Conv(6, 3, 1, "same", "tanh"), cnn.Pool("max", 2, 2), cnn.Conv(4, 3, 1, "same", "tanh")), 2
)


@pytest.fixture(scope="module")
def params():
    return cnn.init_cnn(jax.random.PRNGKey(3), ARCH)


@pytest.mark.parametrize("layer", [0, 2])
def test_activation_maximization_raises_every_filters_activation(params, layer):
    images, start, end = maximize(params, None, jax.random.PRNGKey(0), ARCH, layer, steps=20)
    channels = ARCH.layers[layer].filters
    assert images.shape == (channels, 12, 12, 1)
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    assert np.all(np.asarray(end) > np.asarray(start) + 0.02)
    # Each image is for its own filter: filter c responds to image c more than to the average other image.
    acts = jax.vmap(lambda img: cnn.apply_cnn(params, img[None], ARCH, with_activations=True)[1]["activations"][layer])(
        images
    )[:, 0]  # (image, H, W, channel)
    own = jnp.array([acts[c, ..., c].mean() for c in range(channels)])
    others = jnp.array([jnp.delete(acts[..., c].mean(axis=(1, 2)), c).mean() for c in range(channels)])
    assert int(jnp.sum(own > others)) >= channels - 1


def test_saliency_is_the_input_gradient_of_the_predicted_class(params):
    x = jax.random.uniform(jax.random.PRNGKey(1), (3, 12, 12, 1))
    s = saliency(params, None, x, ARCH)
    assert s.shape == (3, 12, 12) and float(s.min()) >= 0
    logits = cnn.apply_cnn(params, x, ARCH)[0]
    top = jnp.argmax(logits, axis=-1)
    eps = 1e-2
    for n, (i, j) in enumerate([(2, 3), (6, 6), (11, 0)]):
        bump = jnp.zeros_like(x).at[n, i, j, 0].set(eps)
        up = cnn.apply_cnn(params, x + bump, ARCH)[0][n, top[n]]
        down = cnn.apply_cnn(params, x - bump, ARCH)[0][n, top[n]]
        assert float(s[n, i, j]) == pytest.approx(abs(float(up - down)) / (2 * eps), rel=0.05, abs=1e-4)


WALK_ARCH = cnn.CnnArch(
    (12, 12, 1),
    (cnn.Conv(4, 3, 1, "same", "relu"), cnn.Pool("max", 2), cnn.Conv(3, 5, 2, "same", "tanh"), cnn.Pool("avg", 3, 2)),
    3,
)


@pytest.mark.parametrize(("layer", "at"), [(0, None), (0, (0, 0)), (0, (7, 3)), (2, None)])
def test_conv_walkthrough_multiplies_and_sums_to_the_real_feature_map(layer, at):
    params = cnn.init_cnn(jax.random.PRNGKey(5), WALK_ARCH)
    params[layer]["b"] = params[layer]["b"] + 0.05  # a bias that shows in the sums
    image = jax.random.uniform(jax.random.PRNGKey(6), (12, 12, 1))
    row, col = at or (None, None)
    out = conv_walkthrough(params, cnn.init_cnn_bn_state(WALK_ARCH), WALK_ARCH, image, layer, 1, row, col)
    patch, weights = np.array(out["patch"]), np.array(out["weights"])
    products, sums = np.array(out["products"]), np.array(out["sums"])
    k, s, n = out["kernel"], out["stride"], len(out["sums"])
    assert weights.shape == (patch.shape[0], k, k) and patch.shape[1] == (n - 1) * s + k
    # each product is a patch value times a weight, each sum their total plus the bias
    for i in range(n):
        for j in range(n):
            window = patch[:, i * s : i * s + k, j * s : j * s + k]
            np.testing.assert_allclose(products[i, j], window * weights, rtol=1e-6)
    np.testing.assert_allclose(sums, products.sum(axis=(2, 3, 4)) + out["bias"], rtol=1e-6)
    # after the activation: exactly what the layer outputs at those positions
    np.testing.assert_allclose(out["outputs"], out["feature_map"], atol=1e-5)
    if layer == 0:
        assert np.array(out["outputs"]).min() >= 0.0  # ReLU
        # padding cells are zeros outside the image; the rest are the image's pixels
        top, left = out["patch_origin"]
        pad = np.array(out["padding_cells"])
        assert pad.any() == (top < 0 or left < 0 or top + patch.shape[1] > 12 or left + patch.shape[2] > 12)
        for y, x in zip(*np.nonzero(~pad), strict=True):
            assert patch[0, y, x] == pytest.approx(float(image[top + y, left + x, 0]))
        assert np.all(patch[0][pad] == 0.0)
    if at == (7, 3):
        assert (out["row"], out["col"]) == (7, 3)
    if at is None:  # the strongest region of the map, on the pooling grid
        stride = out["pool"]["stride"]
        assert out["row"] % stride == 0 and out["col"] % stride == 0


def test_conv_walkthrough_pools_its_outputs():
    params = cnn.init_cnn(jax.random.PRNGKey(7), WALK_ARCH)
    image = jax.random.uniform(jax.random.PRNGKey(8), (12, 12, 1))
    bn = cnn.init_cnn_bn_state(WALK_ARCH)
    out = conv_walkthrough(params, bn, WALK_ARCH, image, 0, 2)
    pool, outputs = out["pool"], np.array(out["outputs"])
    assert pool["kind"] == "max" and len(out["sums"]) == 4 and len(pool["windows"]) == 4
    _, extras = cnn.apply_cnn(params, image[None], WALK_ARCH, bn_state=bn, with_activations=True)
    pooled = np.asarray(extras["activations"][1][0, ..., 2])  # the real pool layer's output
    for win in pool["windows"]:
        cells = [outputs[i, j] for i, j in win["cells"]]
        assert win["value"] == pytest.approx(max(cells)) and outputs[tuple(win["winner"])] == max(cells)
        r, c = (out["row"] + win["row"]) // 2, (out["col"] + win["col"]) // 2
        assert win["value"] == pytest.approx(float(pooled[r, c]), abs=1e-5)
    deeper = conv_walkthrough(params, bn, WALK_ARCH, image, 2, 0)  # avg pool 3 stride 2 over a 3 × 3 map
    assert deeper["pool"]["kind"] == "avg" and len(deeper["pool"]["windows"]) == 1
    assert deeper["pool"]["windows"][0]["value"] == pytest.approx(np.mean(deeper["outputs"]))
    with pytest.raises(ValueError, match="pool layer, not conv"):
        conv_walkthrough(params, bn, WALK_ARCH, image, 1, 0)
