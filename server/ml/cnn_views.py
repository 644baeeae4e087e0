"""What a CNN's units respond to: activation maximization and saliency, as pure jitted functions.

Activation maximization (the lecture's "what does this filter want to see?"): start from a grey image with
a little noise and climb the gradient of one filter's mean activation with respect to the input, with the
usual regularizers — random jitter (shift the image by a pixel or two each step, so the result does not
rely on exact pixel positions), an L2 penalty (keeps pixels moderate) and a light blur every few steps
(keeps high-frequency noise out). Every filter of a layer climbs at once (``vmap``), in one compiled call.

Saliency: the gradient of the predicted class's logit with respect to the input pixels, per example.

The convolution walkthrough: one filter sliding over a small patch of one image, each multiply-and-sum
spelled out on the network's real numbers, then the pooling after it — the lecture's worked example.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from server.ml import cnn
from server.ml.models import ACTIVATIONS, BnState, Params


def _layer_output(params: Params, x: jax.Array, arch: cnn.CnnArch, layer: int, bn_state: BnState) -> jax.Array:
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
    params: Params,
    bn_state: BnState,
    key: jax.Array,
    arch: cnn.CnnArch,
    layer: int,
    steps: int = 20,
    lr: float = 0.1,
    l2: float = 0.01,
    jitter: int = 1,
    blur_every: int = 4,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """For every channel (filter or unit) of layer ``layer``: an input image that makes its mean activation
    large. Returns (images (channels, H, W, C) in [0, 1], the mean activation of each channel on its own
    image at the start and at the end (channels,))."""
    shape = tuple(arch.input_shape)
    out = jax.eval_shape(lambda x: _layer_output(params, x, arch, layer, bn_state), jnp.zeros((1, *shape)))
    channels = out.shape[-1]

    def activation(img: jax.Array, c: jax.Array) -> jax.Array:  # img (H, W, C) → channel c's mean activation
        a = _layer_output(params, img[None], arch, layer, bn_state)[0]
        return jnp.mean(a[..., c]) if a.ndim == 3 else a[c]

    def climb(c: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        img = 0.5 + 0.01 * jax.random.normal(k, shape)
        start = activation(img, c)

        def step(carry: tuple[jax.Array, jax.Array], i: jax.Array) -> tuple[tuple[jax.Array, jax.Array], None]:
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
def saliency(params: Params, bn_state: BnState, x: jax.Array, arch: cnn.CnnArch) -> jax.Array:
    """|∂ logit of the predicted class / ∂ pixel| for images x (n, H, W, C), summed over channels: (n, H, W)."""

    def top_logit(img: jax.Array) -> jax.Array:
        logits, _ = cnn.apply_cnn(params, img[None], arch, bn_state=bn_state)
        return logits[0, jnp.argmax(logits[0])]

    return jnp.abs(jax.vmap(jax.grad(top_logit))(x)).sum(-1)


@partial(jax.jit, static_argnames=("arch",))
def _activations_of(params: Params, bn_state: BnState, image: jax.Array, arch: cnn.CnnArch) -> list[jax.Array]:
    """Every layer's output for one image (H, W, C), batch axis dropped."""
    _, extras = cnn.apply_cnn(params, image[None], arch, bn_state=bn_state, with_activations=True)
    return [a[0] for a in extras["activations"]]


def conv_walkthrough(
    params: Params,
    bn_state: BnState,
    arch: cnn.CnnArch,
    image: jax.Array,
    layer: int,
    filter_: int | None,
    row: int | None = None,
    col: int | None = None,
) -> dict[str, Any]:
    """The lecture's worked example on real numbers: filter ``filter_`` of conv layer ``layer`` sliding over
    a small patch of its input for one image, every multiply-and-sum spelled out, then the pooling layer
    after it (when there is one) over the results. ``filter_`` None: the filter responding most to the image.

    The region is ``n × n`` outputs of the conv layer with its top-left output at (row, col): n = pool size
    + pool stride (two pooled outputs a side) when a pool follows, else 4; clipped to the map. Without
    row/col, the region where the filter responds most strongly is chosen (aligned to the pooling grid).
    Returns plain lists: the layer's whole ``input`` (C, H, W) with its top/left ``pads``; ``patch``
    (C, P, P), the input values the region reads, with ``padding_cells`` (P, P) marking cells outside the
    input; ``weights`` (C, k, k) and ``bias``; ``products`` (n, n, C, k, k); ``sums`` (n, n) = Σ products
    + bias; ``outputs`` (n, n) after the activation, equal to the layer's real feature map there
    (``feature_map``); and ``pool`` (kind, size, stride, each window's cells and value) or None.
    """
    conv_layer = arch.layers[layer]
    if not isinstance(conv_layer, cnn.Conv):
        raise ValueError(f"layer {layer} is a {conv_layer.type} layer, not conv")
    acts = jax.device_get(_activations_of(params, bn_state, image, arch))
    x = np.asarray(image if layer == 0 else acts[layer - 1], np.float64)  # (H, W, C) the layer's input
    if filter_ is None:  # the filter this image excites most (a dead ReLU filter teaches little)
        filter_ = int(np.argmax(np.asarray(acts[layer]).sum(axis=(0, 1))))
    fmap = np.asarray(acts[layer][..., filter_], np.float64)  # (Ho, Wo)
    w = np.asarray(params[layer]["w"][..., filter_], np.float64)  # (k, k, C)
    b = float(params[layer]["b"][filter_])
    k, s = conv_layer.kernel, conv_layer.stride
    (ho, ph, _), (wo, pw, _) = (cnn.conv_padding(size, k, s, conv_layer.padding) for size in x.shape[:2])
    nxt = arch.layers[layer + 1] if layer + 1 < len(arch.layers) else None
    pool = nxt if isinstance(nxt, cnn.Pool) else None
    n = min(pool.size + pool.step if pool else 4, ho, wo)
    if row is None or col is None:
        row, col = _strongest_region(fmap, n, pool.step if pool else 1)
    row, col = min(max(row, 0), ho - n), min(max(col, 0), wo - n)
    sums = _worked_sums(x, w, b, conv_layer, (row * s - ph, col * s - pw), n)
    return {
        "layer": layer,
        "filter": filter_,
        "kernel": k,
        "stride": s,
        "padding": conv_layer.padding,
        "activation": conv_layer.activation,
        "row": row,
        "col": col,
        "map_shape": [ho, wo],
        "input": x.transpose(2, 0, 1).tolist(),
        "pads": [ph, pw],
        "weights": w.transpose(2, 0, 1).tolist(),
        "bias": b,
        **{key: v.tolist() if isinstance(v, np.ndarray) else v for key, v in sums.items()},
        "feature_map": fmap[row : row + n, col : col + n].tolist(),
        "pool": _pool_walk(pool, sums["outputs"]) if pool else None,
    }


def _worked_sums(
    x: np.ndarray, w: np.ndarray, b: float, conv: cnn.Conv, origin: tuple[int, int], n: int
) -> dict[str, Any]:
    """The patch of input ``x`` (H, W, C) that n × n outputs of ``conv`` read from ``origin`` (input
    coordinates, negative in the padding), and every product, sum and activated output over it. Arrays are
    laid out channel-first for the page: patch (C, P, P), products (n, n, C, k, k)."""
    k, s = conv.kernel, conv.stride
    size = (n - 1) * s + k  # the patch the n × n outputs read
    top, left = origin
    ys, xs = np.arange(top, top + size), np.arange(left, left + size)
    inside = (ys[:, None] >= 0) & (ys[:, None] < x.shape[0]) & (xs[None, :] >= 0) & (xs[None, :] < x.shape[1])
    patch = np.zeros((size, size, x.shape[2]))
    patch[inside] = x[np.clip(ys, 0, x.shape[0] - 1)[:, None], np.clip(xs, 0, x.shape[1] - 1)[None, :]][inside]
    windows = np.stack(
        [np.stack([patch[i * s : i * s + k, j * s : j * s + k] for j in range(n)]) for i in range(n)]
    )  # (n, n, k, k, C)
    products = windows * w
    sums = products.sum(axis=(2, 3, 4)) + b
    outputs = np.asarray(ACTIVATIONS[conv.activation].fn(jnp.asarray(sums, jnp.float32)), np.float64)
    return {
        "patch_origin": [int(top), int(left)],
        "patch": patch.transpose(2, 0, 1),
        "padding_cells": ~inside,
        "products": products.transpose(0, 1, 4, 2, 3),
        "sums": sums,
        "outputs": outputs,
    }


def _strongest_region(fmap: np.ndarray, n: int, align: int) -> tuple[int, int]:
    """Top-left (row, col) of the n × n region of a map with the largest total response, on the pooling grid."""
    ho, wo = fmap.shape
    best, at = (-np.inf, 0.0), (0, 0)
    for r in range(0, ho - n + 1, align):
        for c in range(0, wo - n + 1, align):
            # ties (a filter silent everywhere) go to the region nearest the centre, where the picture is
            score = (
                round(float(fmap[r : r + n, c : c + n].sum()), 6),
                -abs(r + n / 2 - ho / 2) - abs(c + n / 2 - wo / 2),
            )
            if score > best:
                best, at = score, (r, c)
    return at


def _pool_walk(pool: cnn.Pool, outputs: np.ndarray) -> dict[str, Any]:
    """The pooling windows over the worked outputs: each window's cells [(i, j), ...] and its value (for max,
    also which cell won)."""
    n, t, z = outputs.shape[0], pool.step, pool.size
    windows = []
    for r in range(0, n - z + 1, t):
        for c in range(0, n - z + 1, t):
            cells = [(r + i, c + j) for i in range(z) for j in range(z)]
            values = [outputs[i, j] for i, j in cells]
            win = {"row": r, "col": c, "cells": cells}
            if pool.kind == "max":
                win |= {"value": float(max(values)), "winner": list(cells[int(np.argmax(values))])}
            else:
                win |= {"value": float(np.mean(values))}
            windows.append(win)
    return {"kind": pool.kind, "size": z, "stride": t, "windows": windows}
