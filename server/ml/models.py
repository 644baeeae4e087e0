"""MLP layers, the activation table, init/apply as pure functions over plain pytrees.

params: list of layer dicts ``{"w": (in, out), "b": (out,)}`` (hidden layers first, output last); with
batch norm each hidden layer also has ``"gamma", "beta": (out,)`` and a separate ``bn_state`` list of
``{"mean", "var"}`` running statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

Params = list[dict[str, jax.Array]]  # one dict of arrays per layer ("w", "b", ...), the output layer last
BnState = list[dict[str, jax.Array]]  # running batch-norm statistics per layer ({"mean", "var"})


@dataclass(frozen=True)
class Activation:
    """One entry of the activation table."""

    fn: Callable[[jax.Array], jax.Array]
    formula: str
    zero_gradient: bool = False  # derivative is 0 almost everywhere: backprop cannot train through it
    range: tuple[float, float] = (-math.inf, math.inf)


def _piecewise_linear(z: jax.Array) -> jax.Array:
    # 0 below -1/2, z + 1/2 between, 1 above: the lecture's "piece-wise linear" unit.
    return jnp.clip(z + 0.5, 0.0, 1.0)


def _heaviside(z: jax.Array) -> jax.Array:
    # 0.5 at exactly 0, as in the lecture's table; jnp.heaviside's second argument is the value at 0.
    return jnp.heaviside(z, 0.5).astype(z.dtype)


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda z: z, "φ(z) = z"),
    "step": Activation(_heaviside, "φ(z) = 0 if z < 0, ½ if z = 0, 1 if z > 0", True, (0.0, 1.0)),
    "sign": Activation(jnp.sign, "φ(z) = −1 if z < 0, 0 if z = 0, 1 if z > 0", True, (-1.0, 1.0)),
    "piecewise_linear": Activation(
        _piecewise_linear, "φ(z) = 0 if z ≤ −½, z + ½ if −½ < z < ½, 1 if z ≥ ½", False, (0.0, 1.0)
    ),
    "sigmoid": Activation(jax.nn.sigmoid, "φ(z) = 1 / (1 + e^(−z))", False, (0.0, 1.0)),
    "tanh": Activation(jnp.tanh, "φ(z) = (e^z − e^(−z)) / (e^z + e^(−z))", False, (-1.0, 1.0)),
    "relu": Activation(jax.nn.relu, "φ(z) = max(0, z)", False, (0.0, math.inf)),
    "leaky_relu": Activation(lambda z: jnp.where(z >= 0, z, 0.01 * z), "φ(z) = max(0.01 z, z)"),
    "elu": Activation(jax.nn.elu, "φ(z) = z if z > 0, e^z − 1 otherwise", False, (-1.0, math.inf)),
    "softplus": Activation(jax.nn.softplus, "φ(z) = ln(1 + e^z)", False, (0.0, math.inf)),
    "gaussian": Activation(lambda z: jnp.exp(-z * z), "φ(z) = e^(−z²)", False, (0.0, 1.0)),
    "gelu": Activation(lambda z: jax.nn.gelu(z, approximate=False), "φ(z) = z · Φ(z)", False, (-0.17, math.inf)),
    "swish": Activation(jax.nn.swish, "φ(z) = z · sigmoid(z)", False, (-0.28, math.inf)),
}

# What the output unit does, chosen from the problem and the loss (see output_kind).
OUTPUTS = {
    "tanh": "tanh output in [−1, 1], squared error against ±1 labels (TF Playground's choice)",
    "sigmoid": "sigmoid output p = P(blue), binary cross-entropy",
    "softmax": "softmax over the classes, cross-entropy (or squared error against one-hot)",
    "linear": "linear output, squared error (regression)",
    "sign": "sign of the weighted sum: Rosenblatt's perceptron",
}

INITS = ("xavier", "he", "normal", "zeros", "tfplayground")
TFP_BIAS = 0.1  # TF Playground: weights uniform in ±0.5, every bias 0.1


@dataclass(frozen=True)
class Arch:
    """Static description of an MLP: everything that changes compiled code's shape or structure."""

    n_inputs: int
    hidden: tuple[tuple[int, str], ...]  # (units, activation name) per hidden layer
    output: str  # a key of OUTPUTS
    n_outputs: int
    batch_norm: bool = False

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.n_inputs, *(u for u, _ in self.hidden), self.n_outputs)


def output_kind(problem: str, loss: str, n_classes: int, algorithm: str = "backprop") -> tuple[str, int]:
    """The output unit and how many outputs, from the problem, the loss and the number of classes."""
    if problem == "regression":
        return "linear", 1
    if algorithm == "perceptron":
        return "sign", 1
    if n_classes > 2:
        return "softmax", n_classes
    return ("sigmoid", 1) if loss == "cross_entropy" else ("tanh", 1)


def _init_weights(key: jax.Array, shapes: Sequence[tuple[int, int]], init: str) -> list[jax.Array]:
    """Every layer's weight matrix, from one draw of random numbers (one random-bits kernel to compile, not
    one per layer: XLA's CPU compiler takes a while over each)."""
    if init not in INITS:
        raise KeyError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    sizes = [a * b for a, b in shapes]
    total = sum(sizes)
    if init == "zeros":  # the symmetry lesson: every neuron of a layer stays identical
        return [jnp.zeros(shape, jnp.float32) for shape in shapes]
    if init in ("xavier", "tfplayground"):  # uniform: U(−1, 1) scaled per layer
        draw = jax.random.uniform(key, (total,), jnp.float32, -1.0, 1.0)
    else:
        draw = jax.random.normal(key, (total,), jnp.float32)
    out, offset = [], 0
    for (fan_in, fan_out), n in zip(shapes, sizes, strict=True):
        scale = {
            "xavier": math.sqrt(6.0 / (fan_in + fan_out)),
            "he": math.sqrt(2.0 / fan_in),
            "normal": 0.01,  # small normal: deep sigmoid nets with it show vanishing gradients
            "tfplayground": 0.5,
        }[init]
        out.append((draw[offset : offset + n] * scale).reshape(fan_in, fan_out))
        offset += n
    return out


@partial(jax.jit, static_argnames=("arch", "init"))
def init_mlp(key: jax.Array, arch: Arch, init: str = "xavier") -> Params:
    """Fresh parameters for ``arch``: one ``{"w", "b"}`` dict per layer (+ gamma/beta with batch norm)."""
    sizes = arch.sizes
    weights = _init_weights(key, list(zip(sizes[:-1], sizes[1:], strict=True)), init)
    params: Params = []
    for i, (w, fan_out) in enumerate(zip(weights, sizes[1:], strict=True)):
        layer = {"w": w, "b": jnp.full((fan_out,), TFP_BIAS if init == "tfplayground" else 0.0, jnp.float32)}
        if arch.batch_norm and i < len(arch.hidden):
            layer["gamma"] = jnp.ones((fan_out,), jnp.float32)
            layer["beta"] = jnp.zeros((fan_out,), jnp.float32)
        params.append(layer)
    return params


def init_bn_state(arch: Arch) -> BnState:
    """Running batch-norm statistics per hidden layer (empty list without batch norm)."""
    if not arch.batch_norm:
        return []
    return [{"mean": jnp.zeros((u,), jnp.float32), "var": jnp.ones((u,), jnp.float32)} for u, _ in arch.hidden]


def dense(x: jax.Array, w: jax.Array) -> jax.Array:
    """x @ w, written as a broadcast multiply-sum for the tiny matrices of a playground MLP.

    XLA on the CPU calls a BLAS routine per ``dot``; for (batch, ≤64) × (≤64, ≤64) that call costs more
    than the arithmetic, while a multiply-sum fuses with its neighbours (bench: ~6× more epochs/s).
    """
    if w.shape[0] * w.shape[1] <= 4096 and x.ndim == 2 and x.shape[0] <= 64:
        return (x[:, :, None] * w[None, :, :]).sum(axis=1)
    if x.ndim == 2 and w.shape[0] <= 8 and x.shape[0] >= 4096:
        # the 100×100 output grid through a narrow layer: a sum of rank-1 products fuses into one
        # loop, ~25 % faster than the library call for (10⁴, ≤8) × (≤8, ≤64)
        return cast(jax.Array, sum(x[:, k, None] * w[k][None, :] for k in range(w.shape[0])))  # w has rows
    return x @ w


BN_EPS = 1e-5
BN_MOMENTUM = 0.9


def apply_mlp(
    params: Sequence[dict[str, jax.Array]],
    x: jax.Array,
    arch: Arch,
    *,
    bn_state: Sequence[dict[str, jax.Array]] | None = None,
    train: bool = False,
    dropout: jax.Array | float = 0.0,
    key: jax.Array | None = None,
    mask: jax.Array | None = None,
    with_activations: bool = False,
) -> tuple[jax.Array, dict[str, Any]]:
    """Forward pass. x: (batch, n_inputs) → logits (batch, n_outputs).

    Returns ``(logits, extras)`` where extras has ``"activations"`` (list of (batch, units) per hidden
    layer, when asked) and ``"bn_state"`` (updated running statistics when training with batch norm).
    ``mask`` (batch,) marks real rows of a padded batch so batch statistics ignore the padding.
    """
    h = x
    activations = []
    new_bn = []
    for i, (_, act) in enumerate(arch.hidden):
        p = params[i]
        z = dense(h, p["w"]) + p["b"]
        if arch.batch_norm:
            assert bn_state is not None, "a batch-norm MLP needs its bn_state"
            if train:
                m = jnp.ones((z.shape[0],), z.dtype) if mask is None else mask
                count = jnp.maximum(m.sum(), 1.0)
                mean = (z * m[:, None]).sum(0) / count
                var = (((z - mean) ** 2) * m[:, None]).sum(0) / count
                old = bn_state[i]
                new_bn.append(
                    {
                        "mean": BN_MOMENTUM * old["mean"] + (1 - BN_MOMENTUM) * mean,
                        "var": BN_MOMENTUM * old["var"] + (1 - BN_MOMENTUM) * var,
                    }
                )
            else:
                mean, var = bn_state[i]["mean"], bn_state[i]["var"]
            z = (z - mean) * jax.lax.rsqrt(var + BN_EPS) * p["gamma"] + p["beta"]
        h = ACTIVATIONS[act].fn(z)
        if train and key is not None:
            # inverted dropout: keep with probability 1 - rate, rescale so the expectation is unchanged
            key, sub = jax.random.split(key)
            keep = jax.random.uniform(sub, h.shape) >= dropout
            h = jnp.where(keep, h / (1.0 - dropout), 0.0)
        if with_activations:
            activations.append(h)
    out = params[-1]
    logits = dense(h, out["w"]) + out["b"]
    extras = {"activations": activations, "bn_state": new_bn if (train and arch.batch_norm) else bn_state}
    return logits, extras


def output_value(logits: jax.Array, output: str) -> jax.Array:
    """Logits (batch, n_outputs) → what the output unit shows: ±1 scale for binary, probabilities for
    softmax, the raw value for regression."""
    if output == "tanh":
        return jnp.tanh(logits[:, 0])
    if output == "sigmoid":
        return 2.0 * jax.nn.sigmoid(logits[:, 0]) - 1.0  # on the same ±1 scale as tanh for the maps
    if output == "sign":
        return jnp.where(logits[:, 0] >= 0, 1.0, -1.0)
    if output == "softmax":
        return jax.nn.softmax(logits, axis=-1)
    return logits[:, 0]


def count_params(params: Any) -> int:
    """Number of scalar parameters."""
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(params))  # math.prod: no array made


def transfer_params(
    old: Params, old_arch: Arch, fresh: Params, new_arch: Arch, input_rows: Sequence[int | None]
) -> tuple[Params, dict[str, Any]]:
    """Carry surviving weights from ``old`` into ``fresh`` (new-shape params), so edits never reset.

    Hidden layer i maps to old hidden layer i, the output layer to the old output layer; within a layer,
    neurons match by position (adding a neuron appends one, removing one drops the last). The first
    layer's input rows follow ``input_rows`` (new row → old row, or None for a new input feature).
    Returns (params, report) with per-layer counts of kept and freshly initialized numbers.
    """
    n_old, n_new = len(old_arch.hidden), len(new_arch.hidden)
    params: Params = []
    layers: list[dict[str, Any]] = []
    for i, layer in enumerate(fresh):
        j = n_old if i == n_new else (i if i < n_old else None)  # source layer in old, if any
        out, kept = dict(layer), 0
        if j is not None:
            src = old[j]
            if i == 0 and j == 0:  # both read the input features: rows follow the features by name
                pairs = [(r, o) for r, o in enumerate(input_rows) if o is not None and o < src["w"].shape[0]]
            elif i > 0 and j > 0:  # both read hidden units: rows follow the units by position
                pairs = [(r, r) for r in range(min(layer["w"].shape[0], src["w"].shape[0]))]
            else:  # one reads features, the other hidden units: those weights meant something else
                pairs = []
            cols = min(layer["w"].shape[1], src["w"].shape[1])
            if pairs and cols:
                new_rows = np.array([r for r, _ in pairs])
                old_rows = np.array([o for _, o in pairs])
                out["w"] = layer["w"].at[new_rows, :cols].set(src["w"][old_rows, :cols])
                kept += len(pairs) * cols
            for name in ("b", "gamma", "beta"):
                if name in layer and name in src:
                    out[name] = layer[name].at[:cols].set(src[name][:cols])
                    kept += cols
        size = sum(int(np.prod(v.shape)) for v in layer.values())
        params.append(out)
        layers.append({"layer": i, "shape": list(layer["w"].shape), "kept": kept, "initialized": size - kept})
    report = {
        "kept": sum(r["kept"] for r in layers),
        "initialized": sum(r["initialized"] for r in layers),
        "layers": layers,
    }
    return params, report
