"""What a CNN's units respond to: activation maximization and saliency, as pure jitted functions.

Activation maximization (the lecture's "what does this filter want to see?"): start from a grey image with
a little noise and climb the gradient of one filter's mean activation with respect to the input, with the
usual regularizers — random jitter (shift the image by a pixel or two each step, so the result does not
rely on exact pixel positions), an L2 penalty (keeps pixels moderate) and a light blur every few steps
(keeps high-frequency noise out). Every filter of a layer climbs at once (``vmap``), in one compiled call.

Saliency: the gradient of the predicted class's logit with respect to the input pixels, per example.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from server.ml import cnn


def _layer_output(params, x, arch: cnn.CnnArch, layer: int, bn_state) -> jax.Array:
    """Layer ``layer``'s output for images x (n, H, W, C)."""
    _, extras = cnn.apply_cnn(params, x, arch, bn_state=bn_state, with_activations=True)
    return extras["activations"][layer]


def _blur(img: jax.Array) -> jax.Array:
    """A 3×3 binomial blur of one image (H, W, C), edges repeated."""
    p = jnp.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    rows = 0.25 * p[:-2] + 0.5 * p[1:-1] + 0.25 * p[2:]
    return 0.25 * rows[:, :-2] + 0.5 * rows[:, 1:-1] + 0.25 * rows[:, 2:]


@partial(jax.jit, static_argnames=("arch", "layer", "steps"))
def maximize(
    params,
    bn_state,
    key: jax.Array,
    arch: cnn.CnnArch,
    layer: int,
    steps: int = 20,
    lr: float = 0.1,
    l2: float = 0.01,
    jitter: int = 1,
    blur_every: int = 4,
):
    """For every channel (filter or unit) of layer ``layer``: an input image that makes its mean activation
    large. Returns (images (channels, H, W, C) in [0, 1], the mean activation of each channel on its own
    image at the start and at the end (channels,))."""
    shape = tuple(arch.input_shape)
    out = jax.eval_shape(lambda x: _layer_output(params, x, arch, layer, bn_state), jnp.zeros((1, *shape)))
    channels = out.shape[-1]

    def activation(img, c):  # img (H, W, C) → channel c's mean activation
        a = _layer_output(params, img[None], arch, layer, bn_state)[0]
        return jnp.mean(a[..., c]) if a.ndim == 3 else a[c]

    def climb(c, k):
        img = 0.5 + 0.01 * jax.random.normal(k, shape)
        start = activation(img, c)

        def step(carry, i):
            img, k = carry
            k, sub = jax.random.split(k)
            dy, dx = jax.random.randint(sub, (2,), -jitter, jitter + 1)
            shifted = jnp.roll(img, (dy, dx), axis=(0, 1))
            g = jax.grad(lambda im: activation(im, c) - l2 * jnp.mean((im - 0.5) ** 2))(shifted)
            g = g / (jnp.sqrt(jnp.mean(g * g)) + 1e-8)  # normalized steps: the same pace for every filter
            img = jnp.roll(shifted + lr * g, (-dy, -dx), axis=(0, 1))
            img = jnp.where((i + 1) % blur_every == 0, _blur(img), img)
            return (jnp.clip(img, 0.0, 1.0), k), None

        (img, _), _ = jax.lax.scan(step, (img, k), jnp.arange(steps))
        return img, start, activation(img, c)

    keys = jax.random.split(key, channels)
    images, start, end = jax.vmap(climb)(jnp.arange(channels), keys)
    return images, start, end


@partial(jax.jit, static_argnames=("arch",))
def saliency(params, bn_state, x: jax.Array, arch: cnn.CnnArch) -> jax.Array:
    """|∂ logit of the predicted class / ∂ pixel| for images x (n, H, W, C), summed over channels: (n, H, W)."""

    def top_logit(img):
        logits, _ = cnn.apply_cnn(params, img[None], arch, bn_state=bn_state)
        return logits[0, jnp.argmax(logits[0])]

    return jnp.abs(jax.vmap(jax.grad(top_logit))(x)).sum(-1)
