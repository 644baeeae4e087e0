"""Small CNNs as pure functions over plain pytrees: layer specs, geometry, init/apply, training.

An architecture is a static, hashable ``CnnArch`` (input shape (H, W, C), a tuple of layer specs, the
number of classes); the classifier head (flatten + dense to ``n_classes``) is implicit, so the layers
are the hidden part, as ``Arch.hidden`` is for the MLP. Layer kinds live in the ``LAYERS`` table.

params: one dict per layer, then the head — conv ``{"w": (k, k, C_in, F), "b": (F,)}``, dense
``{"w": (D_in, units), "b": (units,)}``, batch_norm ``{"gamma", "beta": (C,)}``, ``{}`` for layers without
parameters. bn_state: one dict per layer, ``{"mean", "var": (C,)}`` for batch_norm layers, ``{}`` otherwise.

Geometry decisions: images are NHWC; "same" padding gives ceil(in / stride) and puts the odd padding
pixel at the bottom/right (as TensorFlow and ``lax`` "SAME"); "valid" gives floor((in - k) / stride) + 1.
Pooling is always "valid" (a window never hangs over the edge; trailing rows that no window reaches are
dropped, as ConvNetJS and Keras). A dense layer after a spatial layer flattens it first (as ConvNetJS's
fully connected layer), so an explicit ``Flatten`` is optional.

The convolution is im2col + one matmul (``CONV_IMPLS["im2col"]``): inside a ``lax.scan`` over an epoch,
``lax.conv_general_dilated``'s backward pass gets slow layouts on XLA's CPU backend (bench/cnn.py
measures both; ``CONV_IMPLS["lax"]`` is kept as the reference and for the comparison).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, ClassVar, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from server.ml import augment
from server.ml.models import ACTIVATIONS, BN_EPS, BN_MOMENTUM, BnState, Params, dense
from server.ml.train import OPTIMIZERS, Batch, Hyper, Schedule, TrainState, finite, init_opt_state, scheduled

Shape = tuple[int, ...]  # (H, W, C) for images, (D,) after flatten/dense

# --------------------------------------------------------------------------- layer specs


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


@dataclass(frozen=True)
class Conv:
    type: ClassVar[str] = "conv"
    filters: int = 8  # output channels, 1-64
    kernel: int = 3  # square kernel side, 1-7
    stride: int = 1  # ≥ 1
    padding: str = "same"  # "same" | "valid"
    activation: str = "relu"  # a key of ACTIVATIONS

    def __post_init__(self) -> None:
        _check(1 <= self.filters <= 64, f"conv filters must be in [1, 64], got {self.filters}")
        _check(1 <= self.kernel <= 7, f"conv kernel must be in [1, 7], got {self.kernel}")
        _check(self.stride >= 1, f"conv stride must be ≥ 1, got {self.stride}")
        _check(self.padding in ("same", "valid"), f"conv padding must be 'same' or 'valid', got {self.padding!r}")
        _check(self.activation in ACTIVATIONS, f"unknown activation {self.activation!r}")


@dataclass(frozen=True)
class Pool:
    type: ClassVar[str] = "pool"
    kind: str = "max"  # "max" | "avg"
    size: int = 2  # square window side, ≥ 1
    stride: int | None = None  # ≥ 1; None = size (non-overlapping windows)

    def __post_init__(self) -> None:
        _check(self.kind in ("max", "avg"), f"pool kind must be 'max' or 'avg', got {self.kind!r}")
        _check(self.size >= 1, f"pool size must be ≥ 1, got {self.size}")
        _check(self.stride is None or self.stride >= 1, f"pool stride must be ≥ 1, got {self.stride}")

    @property
    def step(self) -> int:
        return self.size if self.stride is None else self.stride


@dataclass(frozen=True)
class Flatten:
    type: ClassVar[str] = "flatten"


@dataclass(frozen=True)
class Dense:
    type: ClassVar[str] = "dense"
    units: int = 32  # ≥ 1
    activation: str = "relu"  # a key of ACTIVATIONS

    def __post_init__(self) -> None:
        _check(self.units >= 1, f"dense units must be ≥ 1, got {self.units}")
        _check(self.activation in ACTIVATIONS, f"unknown activation {self.activation!r}")


@dataclass(frozen=True)
class Dropout:
    """Inverted dropout. Its rate is not part of the layer's identity (compare=False): compiled training reads
    the rates from the traced hyperparameters (``Hyper.dropout``, one per dropout layer), so changing a rate
    never recompiles; only whether any rate is above 0 does (``CnnTrainConfig.dropout``)."""

    type: ClassVar[str] = "dropout"
    rate: float = field(default=0.5, compare=False)  # probability of dropping a unit while training, [0, 1)

    def __post_init__(self) -> None:
        _check(0.0 <= self.rate < 1.0, f"dropout rate must be in [0, 1), got {self.rate}")


@dataclass(frozen=True)
class BatchNorm:
    type: ClassVar[str] = "batch_norm"


Layer = Conv | Pool | Flatten | Dense | Dropout | BatchNorm


@dataclass(frozen=True)
class CnnArch:
    """Static description of a CNN (hashable: a jit static argument and a compile-cache key)."""

    input_shape: tuple[int, int, int]  # (H, W, C)
    layers: tuple[Layer, ...]
    n_classes: int  # the implicit head: flatten + dense to n_classes logits


class GeometryError(ValueError):
    """A layer cannot be applied to the shape it receives."""


# ---------------------------------------------------------------------------- geometry


def conv_padding(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int, int]:
    """(out, pad_lo, pad_hi) along one axis; out ≤ 0 means the kernel does not fit."""
    if padding == "same":
        out = -(-size // stride)  # ceil
        total = max((out - 1) * stride + kernel - size, 0)
        return out, total // 2, total - total // 2
    return (size - kernel) // stride + 1 if size >= kernel else 0, 0, 0


def _spatial(i: int, layer: Layer, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise GeometryError(
            f"layer {i} ({layer.type}) needs an image (H, W, C) but gets {shape}: "
            "it comes after a flatten or dense layer"
        )
    return shape


def _conv_shape(i: int, layer: Conv, shape: Shape) -> Shape:
    h, w, _ = _spatial(i, layer, shape)
    (ho, *_), (wo, *_) = (conv_padding(s, layer.kernel, layer.stride, layer.padding) for s in (h, w))
    if ho < 1 or wo < 1:
        raise GeometryError(
            f"layer {i} (conv): kernel {layer.kernel}×{layer.kernel} with 'valid' padding is larger than "
            f"its input {shape}"
        )
    return ho, wo, layer.filters


def _pool_shape(i: int, layer: Pool, shape: Shape) -> Shape:
    h, w, c = _spatial(i, layer, shape)
    if layer.size > min(h, w):
        raise GeometryError(f"layer {i} (pool): window {layer.size}×{layer.size} is larger than its input {shape}")
    return (h - layer.size) // layer.step + 1, (w - layer.size) // layer.step + 1, c


def _flat(shape: Shape) -> Shape:
    return (math.prod(shape),)


# ------------------------------------------------------------------------- convolution


def _windows(x: jax.Array, k: int, stride: int, out: tuple[int, int]) -> list[jax.Array]:
    """The k·k shifted, strided views of a (padded) x (B, H, W, C), each (B, H_out, W_out, C), in (i, j) order."""
    ho, wo = out
    return [
        x[:, i : i + (ho - 1) * stride + 1 : stride, j : j + (wo - 1) * stride + 1 : stride, :]
        for i in range(k)
        for j in range(k)
    ]


Pads = tuple[tuple[int, int], tuple[int, int]]  # (lo, hi) along H, then along W


def _pad_hw(x: jax.Array, pads: Pads) -> jax.Array:
    return jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0))) if any(sum(p) for p in pads) else x


def conv_im2col(x: jax.Array, w: jax.Array, stride: int, pads: Pads, out: tuple[int, int]) -> jax.Array:
    """x (B, H, W, C) * w (k, k, C, F) → (B, H_out, W_out, F): patches (B, H_out, W_out, k·k·C), one matmul."""
    k, _, c, f = w.shape
    patches = jnp.concatenate(_windows(_pad_hw(x, pads), k, stride, out), axis=-1)  # (B, Ho, Wo, k·k·C)
    # w's row-major (i, j, c) order is the order the windows were concatenated in.
    return (patches.reshape(-1, k * k * c) @ w.reshape(k * k * c, f)).reshape(*patches.shape[:3], f)


def conv_lax(x: jax.Array, w: jax.Array, stride: int, pads: Pads, out: tuple[int, int]) -> jax.Array:
    """The same convolution through XLA's own convolution (NHWC / HWIO)."""
    return jax.lax.conv_general_dilated(x, w, (stride, stride), pads, dimension_numbers=("NHWC", "HWIO", "NHWC"))


ConvFn = Callable[[jax.Array, jax.Array, int, Pads, tuple[int, int]], jax.Array]
CONV_IMPLS: dict[str, ConvFn] = {"im2col": conv_im2col, "lax": conv_lax}


def conv2d(x: jax.Array, w: jax.Array, stride: int = 1, padding: str = "same", impl: str = "im2col") -> jax.Array:
    """x (B, H, W, C) convolved (cross-correlated) with w (k, k, C, F) → (B, H_out, W_out, F)."""
    k = w.shape[0]
    (ho, *ph), (wo, *pw) = (conv_padding(s, k, stride, padding) for s in x.shape[1:3])
    (h_lo, h_hi), (w_lo, w_hi) = ph, pw
    return CONV_IMPLS[impl](x, w, stride, ((h_lo, h_hi), (w_lo, w_hi)), (ho, wo))


def pool2d(x: jax.Array, kind: str, size: int, stride: int) -> jax.Array:
    """Max or average over size×size windows, 'valid': (B, H, W, C) → (B, H_out, W_out, C)."""
    h, w = x.shape[1:3]
    ho, wo = (h - size) // stride + 1, (w - size) // stride + 1
    if stride == size:  # non-overlapping windows: crop what no window reaches, then one reshape-reduce
        x = x[:, : ho * size, : wo * size, :].reshape(x.shape[0], ho, size, wo, size, x.shape[3])
        return x.max(axis=(2, 4)) if kind == "max" else x.mean(axis=(2, 4))
    views = _windows(x, size, stride, (ho, wo))
    if kind == "max":
        return jnp.stack(views).max(axis=0)
    return cast(jax.Array, sum(views)) / (size * size)  # size ≥ 1: at least one window


# ---------------------------------------------------------------------------- the table

LayerOut = tuple[jax.Array, dict[str, jax.Array]]  # a layer's output and its new running statistics ({} if none)


class _Ctx(NamedTuple):
    train: bool
    key: jax.Array | None  # this layer's own key (dropout), or None
    bn: dict[str, jax.Array]  # this layer's running statistics ({} unless batch_norm)
    mask: jax.Array | None  # (batch,) real rows of a padded batch
    conv: str  # a key of CONV_IMPLS
    rate: jax.Array | float  # this dropout layer's rate (traced while training)


def _he_or_xavier(key: jax.Array, shape: Shape, fan_in: int, fan_out: int, activation: str) -> jax.Array:
    """He normal for the ReLU family (it keeps the activations' variance), Glorot uniform otherwise."""
    # Drawn flat, then reshaped: XLA's CPU compiler takes seconds over the random bits of a 4-D shape
    # such as (3, 3, 8, 16) and a fraction of a second over the same 1,152 numbers in one row.
    n = math.prod(shape)
    if activation in ("relu", "leaky_relu", "elu", "gelu", "swish", "softplus"):
        return (jax.random.normal(key, (n,), jnp.float32) * math.sqrt(2.0 / fan_in)).reshape(shape)
    lim = math.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, (n,), jnp.float32, -lim, lim).reshape(shape)


def _init_conv(key: jax.Array, layer: Conv, shape: Shape) -> dict[str, jax.Array]:
    k, c, f = layer.kernel, shape[-1], layer.filters
    w = _he_or_xavier(key, (k, k, c, f), k * k * c, k * k * f, layer.activation)
    return {"w": w, "b": jnp.zeros((f,), jnp.float32)}


def _init_dense(key: jax.Array, layer: Dense, shape: Shape) -> dict[str, jax.Array]:
    d = math.prod(shape)
    return {"w": _he_or_xavier(key, (d, layer.units), d, layer.units, layer.activation), "b": jnp.zeros((layer.units,))}


def _init_bn(key: jax.Array, layer: BatchNorm, shape: Shape) -> dict[str, jax.Array]:
    return {"gamma": jnp.ones((shape[-1],), jnp.float32), "beta": jnp.zeros((shape[-1],), jnp.float32)}


def _apply_conv(layer: Conv, p: dict[str, jax.Array], x: jax.Array, ctx: _Ctx) -> LayerOut:
    z = conv2d(x, p["w"], layer.stride, layer.padding, ctx.conv) + p["b"]
    return ACTIVATIONS[layer.activation].fn(z), {}


def _apply_pool(layer: Pool, p: dict[str, jax.Array], x: jax.Array, ctx: _Ctx) -> LayerOut:
    return pool2d(x, layer.kind, layer.size, layer.step), {}


def _apply_flatten(layer: Flatten, p: dict[str, jax.Array], x: jax.Array, ctx: _Ctx) -> LayerOut:
    return x.reshape(x.shape[0], -1), {}


def _apply_dense(layer: Dense, p: dict[str, jax.Array], x: jax.Array, ctx: _Ctx) -> LayerOut:
    return ACTIVATIONS[layer.activation].fn(dense(x.reshape(x.shape[0], -1), p["w"]) + p["b"]), {}


def _apply_dropout(layer: Dropout, p: dict[str, jax.Array], x: jax.Array, ctx: _Ctx) -> LayerOut:
    if not ctx.train or ctx.key is None:
        return x, {}
    # inverted dropout: keep with probability 1 - rate, rescale so the expectation is unchanged
    keep = jax.random.uniform(ctx.key, x.shape) >= ctx.rate
    return jnp.where(keep, x / (1.0 - ctx.rate), 0.0), {}


def _apply_bn(layer: BatchNorm, p: dict[str, jax.Array], x: jax.Array, ctx: _Ctx) -> LayerOut:
    """Per channel (last axis), over the batch and every position; masked rows of a padded batch ignored."""
    if not ctx.train:
        mean, var = ctx.bn["mean"], ctx.bn["var"]
        return (x - mean) * jax.lax.rsqrt(var + BN_EPS) * p["gamma"] + p["beta"], ctx.bn
    axes = tuple(range(x.ndim - 1))
    m = jnp.ones((x.shape[0],), x.dtype) if ctx.mask is None else ctx.mask
    m = m.reshape(-1, *(1,) * (x.ndim - 1))  # (batch, 1, ..., 1)
    count = jnp.maximum(m.sum() * math.prod(x.shape[1:-1]), 1.0)
    mean = (x * m).sum(axes) / count
    var = (((x - mean) ** 2) * m).sum(axes) / count
    new = {k: BN_MOMENTUM * ctx.bn[k] + (1 - BN_MOMENTUM) * v for k, v in (("mean", mean), ("var", var))}
    return (x - mean) * jax.lax.rsqrt(var + BN_EPS) * p["gamma"] + p["beta"], new


@dataclass(frozen=True)
class LayerKind:
    """One entry of the layer table: its spec class, output shape, parameters and forward pass."""

    spec: type
    shape: Callable[[int, Any, Shape], Shape]  # (layer index, spec, input shape) → output shape
    # (key, spec, input shape) → params; None = no params
    init: Callable[[jax.Array, Any, Shape], dict[str, jax.Array]] | None
    apply: Callable[[Any, dict[str, jax.Array], jax.Array, _Ctx], LayerOut]  # → (output, new bn stats)
    description: str


LAYERS: dict[str, LayerKind] = {
    "conv": LayerKind(Conv, _conv_shape, _init_conv, _apply_conv, "2-D convolution + bias + activation"),
    "pool": LayerKind(Pool, _pool_shape, None, _apply_pool, "max or average pooling ('valid' windows)"),
    "flatten": LayerKind(Flatten, lambda i, l, s: _flat(s), None, _apply_flatten, "image → vector (H·W·C)"),
    "dense": LayerKind(
        Dense, lambda i, l, s: (l.units,), _init_dense, _apply_dense, "fully connected (flattens an image first)"
    ),
    "dropout": LayerKind(Dropout, lambda i, l, s: s, None, _apply_dropout, "inverted dropout while training"),
    "batch_norm": LayerKind(
        BatchNorm, lambda i, l, s: s, _init_bn, _apply_bn, "batch normalization per channel (γ, β learned)"
    ),
}


def layer_from_dict(d: dict[str, Any]) -> Layer:
    """``{"type": "conv", "filters": 8, ...}`` → a layer spec (ValueError for an unknown type or field)."""
    d = dict(d)
    kind = d.pop("type", None)
    if kind not in LAYERS:
        raise ValueError(f"unknown layer type {kind!r}; choose one of {', '.join(LAYERS)}")
    return LAYERS[kind].spec(**d)


def layer_to_dict(layer: Layer) -> dict[str, Any]:
    """A layer spec → a plain dict with its ``"type"`` (what travels and is stored)."""
    return {"type": layer.type, **asdict(layer)}


def output_shapes(input_shape: Sequence[int], layers: Sequence[Layer]) -> list[Shape]:
    """Every layer's output shape (without the batch axis); GeometryError naming the first impossible layer."""
    shape: Shape = tuple(input_shape)
    shapes = []
    for i, layer in enumerate(layers):
        shape = LAYERS[layer.type].shape(i, layer, shape)
        shapes.append(shape)
    return shapes


def check_arch(arch: CnnArch) -> list[Shape]:
    """output_shapes of the arch, also checking the input shape and the number of classes."""
    if len(arch.input_shape) != 3 or min(arch.input_shape) < 1:
        raise GeometryError(f"input shape must be (H, W, C) with positive sides, got {arch.input_shape}")
    if arch.n_classes < 2:
        raise ValueError(f"n_classes must be ≥ 2, got {arch.n_classes}")
    return output_shapes(arch.input_shape, arch.layers)


# --------------------------------------------------------------------------- init/apply


@partial(jax.jit, static_argnames=("arch",))
def init_cnn(key: jax.Array, arch: CnnArch) -> Params:
    """Fresh parameters: one dict per layer (``{}`` without parameters), then the head ``{"w", "b"}``."""
    shapes = check_arch(arch)
    ins = [tuple(arch.input_shape), *shapes[:-1]] if shapes else []
    keys = jax.random.split(key, len(arch.layers) + 1)
    params: Params = []
    for k, layer, shape in zip(keys[:-1], arch.layers, ins, strict=True):
        init = LAYERS[layer.type].init
        params.append({} if init is None else init(k, layer, shape))
    last = shapes[-1] if shapes else tuple(arch.input_shape)
    params.append(_init_dense(keys[-1], Dense(arch.n_classes, "linear"), last))
    return params


def init_cnn_bn_state(arch: CnnArch) -> BnState:
    """Running statistics: ``{"mean": 0, "var": 1}`` (C,) per batch_norm layer, ``{}`` for the others."""
    shapes = check_arch(arch)
    ins = [tuple(arch.input_shape), *shapes[:-1]] if shapes else []
    return [
        {"mean": jnp.zeros((s[-1],), jnp.float32), "var": jnp.ones((s[-1],), jnp.float32)}
        if layer.type == "batch_norm"
        else {}
        for layer, s in zip(arch.layers, ins, strict=True)
    ]


def apply_cnn(
    params: Sequence[dict[str, jax.Array]],
    x: jax.Array,
    arch: CnnArch,
    *,
    bn_state: Sequence[dict[str, jax.Array]] | None = None,
    train: bool = False,
    key: jax.Array | None = None,
    mask: jax.Array | None = None,
    with_activations: bool = False,
    conv: str = "im2col",
    dropout_rates: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, Any]]:
    """Forward pass. x: (batch, H, W, C) → logits (batch, n_classes).

    Returns ``(logits, extras)`` as ``apply_mlp``: extras has ``"activations"`` (each layer's output, when
    asked: the feature maps) and ``"bn_state"`` (updated when training). Dropout acts only when training
    with a ``key``, at ``dropout_rates[j]`` for the j-th dropout layer (traced; a scalar: the same rate for
    all) or else at the layer's own rate; ``mask`` (batch,) marks the real rows of a padded batch for batch statistics.
    """
    bn_state = init_cnn_bn_state(arch) if bn_state is None else bn_state
    h, activations, new_bn = x, [], []
    j = 0  # dropout layers seen
    for i, layer in enumerate(arch.layers):
        sub = None if key is None else jax.random.fold_in(key, i)
        rate: jax.Array | float = 0.0
        if isinstance(layer, Dropout):
            if dropout_rates is None:
                rate = layer.rate
            else:  # one traced rate for all (a scalar) or one per dropout layer
                rate = dropout_rates if jnp.ndim(dropout_rates) == 0 else dropout_rates[j]
            j += 1
        ctx = _Ctx(train, sub, bn_state[i], mask, conv, rate)
        h, bn = LAYERS[layer.type].apply(layer, params[i], h, ctx)
        new_bn.append(bn)
        if with_activations:
            activations.append(h)
    head = params[-1]
    logits = dense(h.reshape(h.shape[0], -1), head["w"]) + head["b"]
    return logits, {"activations": activations, "bn_state": new_bn if train else list(bn_state)}


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class CnnTrainConfig:
    """Static part of CNN training: one compiled program per distinct value."""

    arch: CnnArch
    optimizer: str = "sgd"  # a key of server.ml.train.OPTIMIZERS
    regularization: str = "none"  # "none" | "l1" | "l2" (on conv and dense weights, not biases)
    dropout: bool = False  # whether the arch's dropout layers act while training (their rates are in the arch)
    conv: str = "im2col"  # a key of CONV_IMPLS
    unroll: int = 1  # inner-scan unrolling
    augment: tuple[int, float, float] = (0, 0.0, 0.0)  # (shift px, rotate degrees, erase probability) per epoch
    schedule: Schedule = Schedule()  # the learning rate's factor over the epochs

    # What the views (server.ml.probes) need of a model (train.TrainConfig has the same).
    slice_cells: ClassVar[int] = 1  # grid cells per vmapped step: im2col's patches over the images are big already
    path_losses: ClassVar[int | None] = 24  # a path's true and slice losses at this many points (evenly, the last too)

    def data_loss(self, bn_state: BnState, x: jax.Array, y: jax.Array) -> Callable[[Any], jax.Array]:
        return cnn_data_loss(self.arch, x, y, bn_state, self.conv)

    def objective(
        self,
        params: Params,
        bn_state: BnState,
        x: jax.Array,
        y: jax.Array,
        mask: jax.Array | None,
        h: Hyper,
        key: jax.Array | None = None,
    ) -> tuple[jax.Array, tuple[jax.Array, BnState]]:
        return cnn_objective(params, bn_state, x, y, mask, h, self, key)

    def activations(self, params: Params, bn_state: BnState, x: jax.Array) -> list[jax.Array]:
        """Each layer's activations on x (running batch-norm statistics, no dropout)."""
        return apply_cnn(params, x, self.arch, bn_state=bn_state, with_activations=True, conv=self.conv)[1][
            "activations"
        ]

    def activation_names(self) -> list[str | None]:
        """Each layer's activation (None for pool, flatten, dropout, batch norm); the softmax head left out."""
        return [getattr(layer, "activation", None) for layer in self.arch.layers]

    @property
    def output_name(self) -> str:
        return "softmax"


def init_cnn_state(cfg: CnnTrainConfig, params: Params, key: jax.Array) -> TrainState:
    """A training state around given parameters (train.TrainState: params, opt_state, bn_state, key)."""
    return TrainState(params, init_opt_state(cfg, params), init_cnn_bn_state(cfg.arch), key)


def image_batches(x: np.ndarray, y: np.ndarray, batch_size: int) -> Batch:
    """One epoch as whole batches: x (S, B, H, W, C), y int32 (S, B), mask (S, B), padded with masked rows."""
    n, b = len(x), max(1, min(batch_size, len(x)))
    steps = max(1, math.ceil(n / b))
    pad = steps * b - n
    xs = np.concatenate([x, np.zeros((pad, *x.shape[1:]), np.float32)]).reshape(steps, b, *x.shape[1:])
    ys = np.concatenate([y, np.zeros((pad,), np.int32)]).astype(np.int32).reshape(steps, b)
    mask = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)]).reshape(steps, b)
    return jnp.asarray(xs, jnp.float32), jnp.asarray(ys), jnp.asarray(mask)


def cnn_penalty(params: Params, kind: str, rate: jax.Array) -> jax.Array:
    """L1 / L2 penalty on every weight tensor (not biases, not γ/β): L2 = rate · ½ Σw², as the MLP's."""
    ws = [layer["w"] for layer in params if "w" in layer]
    if kind == "none" or not ws:
        return jnp.zeros((), jnp.float32)
    if kind == "l1":
        return rate * sum(jnp.abs(w).sum() for w in ws)
    return rate * 0.5 * sum((w * w).sum() for w in ws)


def _masked_mean(per: jax.Array, mask: jax.Array | None) -> jax.Array:
    return per.mean() if mask is None else jnp.sum(per * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def cnn_objective(
    params: Params,
    bn_state: BnState,
    x: jax.Array,
    y: jax.Array,
    mask: jax.Array | None,
    h: Hyper,
    cfg: CnnTrainConfig,
    key: jax.Array | None = None,
) -> tuple[jax.Array, tuple[jax.Array, BnState]]:
    """Mean softmax cross-entropy over the real rows plus the penalty; aux: (data loss, new bn_state)."""
    logits, extras = apply_cnn(
        params, x, cfg.arch, bn_state=bn_state, train=True, key=key, mask=mask, conv=cfg.conv, dropout_rates=h.dropout
    )
    data_loss = _masked_mean(optax.softmax_cross_entropy_with_integer_labels(logits, y), mask)
    return data_loss + cnn_penalty(params, cfg.regularization, h.reg_rate), (data_loss, extras["bn_state"])


def cnn_step(
    state: TrainState, batch: Batch, h: Hyper, cfg: CnnTrainConfig, padded: bool = True
) -> tuple[TrainState, jax.Array]:
    """One mini-batch update → (new state, the batch's data loss before the update): a pure function."""
    mask: jax.Array | None
    x, y, mask = batch
    mask = mask if padded else None  # static: whole batches skip the masking arithmetic
    key, sub = jax.random.split(state.key) if cfg.dropout else (state.key, None)
    grads, (loss, bn_state) = jax.grad(cnn_objective, has_aux=True)(
        state.params, state.bn_state, x, y, mask, h, cfg, sub
    )
    updates, opt_state = OPTIMIZERS[cfg.optimizer].make(h).update(grads, state.opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), opt_state, bn_state, key), loss


def augmented(cfg: CnnTrainConfig, key: jax.Array, x: jax.Array) -> jax.Array:
    """One epoch's batches x (steps, batch, H, W, C) augmented as cfg.augment says (shift, rotate, erase)."""
    shift, rotate, erase = cfg.augment
    flat = x.reshape(-1, *x.shape[2:])
    return augment.augment(key, flat, shift, rotate, erase).reshape(x.shape)


def cnn_epoch(
    cfg: CnnTrainConfig, state: TrainState, batches: Batch, h: Hyper, padded: bool
) -> tuple[TrainState, jax.Array]:
    """One epoch over ``batches`` with this epoch's hyperparameters (augmented afresh when the config says
    so) → (state, each batch's loss): the body of ``train_cnn_epochs``, and what a sweep vmaps."""
    epoch = batches
    if any(cfg.augment):  # a fresh random variant of every training image, each epoch
        key, sub = jax.random.split(state.key)
        state = state._replace(key=key)
        epoch = (augmented(cfg, sub, batches[0]), *batches[1:])
    return jax.lax.scan(lambda s, b: cnn_step(s, b, h, cfg, padded), state, epoch, unroll=cfg.unroll)


@partial(jax.jit, static_argnames=("cfg", "padded"))
def train_cnn_epochs(
    cfg: CnnTrainConfig,
    state: TrainState,
    batches: Batch,
    h: Hyper,
    n_epochs: jax.Array,
    padded: bool = True,
    start: jax.Array | int = 0,
) -> tuple[jax.Array, TrainState, jax.Array]:
    """Run up to ``n_epochs`` epochs in one compiled call, as ``train.train_epochs``.

    batches: (x (steps, batch, H, W, C), y int32 (steps, batch), mask (steps, batch)) from image_batches;
    ``padded=False`` promises every row is real. Stops after the first epoch that leaves non-finite weights
    or a non-finite loss. Returns (epochs_run, state, finite). The loss check uses the losses the epoch's
    steps computed anyway (each batch's, before its update), so it costs no extra forward pass.
    """

    def cond(carry: tuple[jax.Array, TrainState, jax.Array]) -> jax.Array:
        i, _, ok = carry
        return (i < n_epochs) & ok

    def body(carry: tuple[jax.Array, TrainState, jax.Array]) -> tuple[jax.Array, TrainState, jax.Array]:
        i, st, _ = carry
        st, losses = cnn_epoch(cfg, st, batches, scheduled(h, cfg.schedule, start + i), padded)
        return i + 1, st, finite(st.params) & jnp.isfinite(losses.sum())

    return jax.lax.while_loop(cond, body, (jnp.int32(0), state, jnp.bool_(True)))


EVAL_CHUNK = 256  # images per forward pass when evaluating: bounds im2col's patch memory


@partial(jax.jit, static_argnames=("cfg",))
def predict_cnn(cfg: CnnTrainConfig, params: Params, bn_state: BnState, x: jax.Array) -> jax.Array:
    """Logits (n, n_classes) for x (n, H, W, C), in chunks of EVAL_CHUNK (no dropout, running statistics)."""
    n = x.shape[0]
    chunk = min(EVAL_CHUNK, max(n, 1))
    steps = -(-n // chunk)
    xs = jnp.pad(x, ((0, steps * chunk - n), (0, 0), (0, 0), (0, 0))).reshape(steps, chunk, *x.shape[1:])

    def forward(xc: jax.Array) -> jax.Array:
        return apply_cnn(params, xc, cfg.arch, bn_state=bn_state, conv=cfg.conv)[0]

    return jax.lax.map(forward, xs).reshape(steps * chunk, -1)[:n]


@partial(jax.jit, static_argnames=("cfg",))
def evaluate_cnn(
    cfg: CnnTrainConfig, params: Params, bn_state: BnState, x: jax.Array, y: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Mean cross-entropy and accuracy of ``params`` on (x, y)."""
    logits = predict_cnn(cfg, params, bn_state, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y.astype(jnp.int32)).mean()
    return loss, (jnp.argmax(logits, axis=-1) == y).mean()


def confusion_matrix(logits: jax.Array, y: jax.Array, n_classes: int) -> jax.Array:
    """Counts int32 (n_classes, n_classes): row = true class, column = predicted class."""
    predicted = jnp.argmax(logits, axis=-1)
    return jnp.zeros((n_classes, n_classes), jnp.int32).at[jnp.asarray(y, jnp.int32), predicted].add(1)


def cnn_data_loss(
    arch: CnnArch, x: jax.Array, y: jax.Array, bn_state: BnState | None = None, conv: str = "im2col"
) -> Callable[[Any], jax.Array]:
    """The mean softmax cross-entropy of a CNN on (x, y) (no dropout, running batch-norm statistics, no
    penalty) as a function of the params alone: ``cnn.evaluate_cnn``'s loss."""

    def loss_fn(params: Any) -> jax.Array:
        logits, _ = apply_cnn(params, x, arch, bn_state=bn_state, conv=conv)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y.astype(jnp.int32)).mean()

    return loss_fn
