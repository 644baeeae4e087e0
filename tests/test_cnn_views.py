"""Activation maximization and saliency: they do what the lecture says they do."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from server.ml import cnn
from server.ml.cnn_views import maximize, saliency

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
