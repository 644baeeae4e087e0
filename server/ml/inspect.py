"""Frames: what a network has learned, computed in one jitted call.

A frame holds the output over a fine grid of the input square, every hidden neuron's response over a
coarser grid, train/test loss and accuracy, and the gradient health of each layer. Maps are quantized to one
byte per cell on the device (values in [-1, 1] → 0..255, 0 ↔ 127.5), so little crosses to the host.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from server.ml.models import BnState, Params, apply_mlp, output_value
from server.ml.probes import measure_health
from server.ml.train import Hyper, TrainConfig, TrainState, correct, per_example_loss

OUTPUT_RESOLUTION = 100  # cells per side of the decision map
NEURON_RESOLUTION = 25  # cells per side of each neuron's map


def quantize(v: jax.Array, lo: float = -1.0, hi: float = 1.0) -> jax.Array:
    """Values in [lo, hi] (clipped) → uint8 0..255."""
    return jnp.round((jnp.clip(v, lo, hi) - lo) * (255.0 / (hi - lo))).astype(jnp.uint8)


def dequantize(q: jax.Array, lo: float = -1.0, hi: float = 1.0) -> jax.Array:
    """The inverse of quantize, up to half a step ((hi - lo) / 510)."""
    return lo + q.astype(jnp.float32) * ((hi - lo) / 255.0)


def _data_loss(
    params: Params, bn_state: BnState, x: jax.Array, y: jax.Array, cfg: TrainConfig
) -> tuple[jax.Array, jax.Array]:
    logits, _ = apply_mlp(params, x, cfg.arch, bn_state=bn_state)
    return per_example_loss(logits, y, cfg.arch.output, cfg.loss).mean(), logits


@partial(jax.jit, static_argnames=("cfg",))
def compute_frame(
    cfg: TrainConfig,
    state: TrainState,
    h: Hyper,
    x_train: jax.Array,
    y_train: jax.Array,
    x_test: jax.Array,
    y_test: jax.Array,
    grid_out: jax.Array,
    grid_neurons: jax.Array,
) -> dict[str, Any]:
    """One frame's arrays.

    grid_out: (G², F) featurized cell centres of the output map; grid_neurons: (g², F) for neuron maps.
    Returns a dict: output uint8 (G, G) — or (K, G, G) class probabilities for softmax —, neurons uint8
    (units, g, g) for every hidden neuron in layer order, losses/accuracies (scalars), health: gradient
    health on the training set (``probes.measure_health``, the one definition), whose ``grad_norm`` per
    layer is the frame's ``grad_norms``.
    """
    arch, params, bn_state = cfg.arch, state.params, state.bn_state
    g_out = round(grid_out.shape[0] ** 0.5)
    g_n = round(grid_neurons.shape[0] ** 0.5)

    logits, _ = apply_mlp(params, grid_out, arch, bn_state=bn_state)
    out = output_value(logits, arch.output)
    if arch.output == "softmax":
        output = quantize(out.T.reshape(-1, g_out, g_out), 0.0, 1.0)  # (K, G, G) probabilities
    else:
        output = quantize(out.reshape(g_out, g_out))  # ±1 scale; regression clipped to it like TF

    _, extras = apply_mlp(params, grid_neurons, arch, bn_state=bn_state, with_activations=True)
    acts = extras["activations"]
    if acts:
        neurons = quantize(jnp.concatenate(acts, axis=1).T.reshape(-1, g_n, g_n))  # (units, g, g)
    else:
        neurons = jnp.zeros((0, g_n, g_n), jnp.uint8)

    train_loss, train_logits = _data_loss(params, bn_state, x_train, y_train, cfg)
    test_loss, test_logits = _data_loss(params, bn_state, x_test, y_test, cfg)
    health = measure_health(cfg, state, x_train, y_train, h)
    fit = {} if arch.output == "linear" else {"confusion": confusion(test_logits, y_test, arch.output, arch.n_outputs)}
    return fit | {
        "health": health,
        "output": output,
        "neurons": neurons,
        "train_loss": train_loss,
        "test_loss": test_loss,
        "train_accuracy": correct(train_logits, y_train, arch.output).mean(),
        "test_accuracy": correct(test_logits, y_test, arch.output).mean(),
        "grad_norms": health["grad_norm"],
    }


def confusion(logits: jax.Array, y: jax.Array, output: str, n_outputs: int) -> jax.Array:
    """Counts int32 (classes, classes) of a classifier on (logits, y): row = true class, column = predicted
    (two classes: y is ±1 and the class is the sign of the logit, as ``train.correct``)."""
    if output == "softmax":
        n, true, predicted = n_outputs, y.astype(jnp.int32), jnp.argmax(logits, axis=-1)
    else:
        n, true, predicted = 2, (y > 0).astype(jnp.int32), (logits[:, 0] >= 0).astype(jnp.int32)
    return jnp.zeros((n, n), jnp.int32).at[true, predicted].add(1)


@partial(jax.jit, static_argnames=("cfg",))
def predict(cfg: TrainConfig, params: Params, bn_state: BnState, x: jax.Array) -> jax.Array:
    """What the output unit says for featurized inputs x (n, F): (n,) on the ±1 scale / values, or
    (n, K) class probabilities."""
    logits, _ = apply_mlp(params, x, cfg.arch, bn_state=bn_state)
    return output_value(logits, cfg.arch.output)
