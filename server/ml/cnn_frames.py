"""What a CNN frame shows, compiled: losses and accuracies over a whole image set in fixed-size chunks (one
program per architecture, whatever the data size), every layer's feature maps of a few images quantized per
map, and the examples' class probabilities (server/ml/inspect.py is the MLP's counterpart)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any, Literal, overload

import jax
import jax.numpy as jnp
import optax

from server.ml.cnn import CnnTrainConfig, apply_cnn
from server.ml.inspect import quantize
from server.ml.models import BnState, Params

EVAL_CHUNK = 256  # images per compiled evaluation call


def cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Softmax cross-entropy of each row against its class index, (n,)."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, y.astype(jnp.int32))


@partial(jax.jit, static_argnames=("cfg",))
def eval_chunk(
    cfg: CnnTrainConfig, params: Params, bn_state: BnState, x: jax.Array, y: jax.Array, mask: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Sum of cross-entropy and of correct answers over the real rows of a chunk, and its logits."""
    logits, _ = apply_cnn(params, x, cfg.arch, bn_state=bn_state, conv=cfg.conv)
    right = (jnp.argmax(logits, -1) == y).astype(jnp.float32)
    return jnp.sum(cross_entropy(logits, y) * mask), jnp.sum(right * mask), logits


def _chunks(x: jax.Array, y: jax.Array) -> Iterator[tuple[jax.Array, jax.Array, jax.Array, int]]:
    """(x, y, mask, real rows) chunks of EVAL_CHUNK rows, the last one padded."""
    n = int(x.shape[0])
    for start in range(0, n, EVAL_CHUNK):
        xc, yc = x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
        real = int(xc.shape[0])
        if real < EVAL_CHUNK:
            pad = EVAL_CHUNK - real
            xc = jnp.pad(xc, ((0, pad), (0, 0), (0, 0), (0, 0)))
            yc = jnp.pad(yc, (0, pad))
        yield xc, yc, (jnp.arange(EVAL_CHUNK) < real).astype(jnp.float32), real


Metric = jax.Array | float  # a scalar (0.0 for an empty set)


@overload
def evaluate(
    cfg: CnnTrainConfig, params: Params, bn_state: BnState, x: jax.Array, y: jax.Array, logits: Literal[False] = False
) -> tuple[Metric, Metric]: ...


@overload
def evaluate(
    cfg: CnnTrainConfig, params: Params, bn_state: BnState, x: jax.Array, y: jax.Array, logits: Literal[True]
) -> tuple[Metric, Metric, jax.Array]: ...


def evaluate(
    cfg: CnnTrainConfig, params: Params, bn_state: BnState, x: jax.Array, y: jax.Array, logits: bool = False
) -> tuple[Metric, Metric] | tuple[Metric, Metric, jax.Array]:
    """(mean loss, accuracy[, logits (n, K)]) over all of x, one compiled chunk program at a time."""
    loss: Metric = 0.0
    right: Metric = 0.0
    outs = []
    for xc, yc, mask, real in _chunks(x, y):
        l, r, lg = eval_chunk(cfg, params, bn_state, xc, yc, mask)
        loss, right = loss + l, right + r
        if logits:
            outs.append(lg[:real])
    n = max(int(x.shape[0]), 1)
    result = (loss / n, right / n)
    return (*result, jnp.concatenate(outs)) if logits else result


@partial(jax.jit, static_argnames=("cfg",))
def views(cfg: CnnTrainConfig, params: Params, bn_state: BnState, examples: jax.Array) -> dict[str, Any]:
    """Every layer's feature maps of the example images quantized per map (uint8 + each map's range), and
    the examples' class probabilities."""
    logits, extras = apply_cnn(params, examples, cfg.arch, bn_state=bn_state, with_activations=True, conv=cfg.conv)
    maps: list[jax.Array | None] = []
    ranges: list[jax.Array | None] = []
    for a in extras["activations"]:
        if a.ndim == 4:  # (examples, H, W, C) → (examples, C, H, W) uint8, range per map
            lo, hi = a.min(axis=(1, 2)), a.max(axis=(1, 2))  # (examples, C)
            scale = jnp.where(hi > lo, hi - lo, 1.0)
            q = quantize((a - lo[:, None, None, :]) / scale[:, None, None, :] * 2.0 - 1.0)
            maps.append(q.transpose(0, 3, 1, 2))
            ranges.append(jnp.stack([lo, hi], -1))
        else:
            maps.append(None)
            ranges.append(None)
    return {
        "examples": jnp.round(jnp.clip(examples, 0.0, 1.0) * 255.0).astype(jnp.uint8).transpose(0, 3, 1, 2),
        "maps": maps,
        "map_ranges": ranges,
        "example_probs": jax.nn.softmax(logits, axis=-1),
    }
