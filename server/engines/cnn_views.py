"""The CNN engine's own views (``CNN.views``): what each filter wants to see, which pixels an answer depends on,
one convolution worked through on the network's numbers, a drawing's feature maps; and the checks and
encodings they share with the engine's predictions and frames."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from server.errors import Invalid
from server.ml import cnn, cnn_frames, cnn_views
from server.ml.train import TrainState
from server.spec import ExperimentSpec

if TYPE_CHECKING:
    from server.engines.cnn import ImageData


def checked_images(spec: ExperimentSpec, x: np.ndarray) -> np.ndarray:
    """Images (n, H, W[, C]) checked against the spec's image shape → (n, H, W, C)."""
    shape = tuple(spec.image_shape)
    if x.ndim == 3 and shape[2] == 1:
        x = x[..., None]
    if x.shape[1:] != shape or not np.isfinite(x).all():
        want = "×".join(map(str, shape))
        raise Invalid(f"inputs are images of {want} pixels (values 0-1), got {list(x.shape[1:])}", ("images",))
    return x


def image_maps(cfg: cnn.CnnTrainConfig, state: TrainState, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every spatial layer's feature maps of images (n, H, W, C) in [0, 1], quantized as a frame's:
    ``maps{i}`` (n, C, H, W) bytes and ``map_ranges{i}`` (n, C, 2)."""
    views = cnn_frames.views(cfg, state.params, state.bn_state, jnp.asarray(x, jnp.float32))
    return map_arrays(jax.device_get(views))


def map_arrays(views: dict[str, Any]) -> dict[str, np.ndarray]:
    """``maps{i}`` / ``map_ranges{i}`` of every spatial layer, from ``cnn_frames.views`` (None: flat layers)."""
    out: dict[str, np.ndarray] = {}
    for i, (m, r) in enumerate(zip(views["maps"], views["map_ranges"], strict=True)):
        if m is not None:
            out[f"maps{i}"] = np.asarray(m, np.uint8)
            out[f"map_ranges{i}"] = np.asarray(r, np.float32)
    return out


# ------------------------------------------------------------------------------------ the CNN's own views
# Each: fn(cfg, state, data, **params) -> dict, on a snapshot; bad parameters are Invalid naming the field.


def activation_maximization(
    cfg: cnn.CnnTrainConfig, state: TrainState, data: ImageData, *, layer: int, steps: int, seed: int = 0
) -> dict[str, Any]:
    """For every channel of ``layer``: the input image that excites it most (gradient ascent on the input
    with jitter, L2 and blur), as bytes (channels, C, H, W), with the channel's mean activation before/after."""
    n = len(cfg.arch.layers)
    if not 0 <= layer < n:
        raise Invalid(f"layer must be from 0 to {n - 1}", ("layer",))
    images_, start, end = cnn_views.maximize(
        state.params, state.bn_state, jax.random.PRNGKey(seed), cfg.arch, layer, steps=steps
    )
    q = jnp.round(images_ * 255.0).astype(jnp.uint8).transpose(0, 3, 1, 2)
    q, start, end = jax.device_get((q, start, end))
    return {"layer": layer, "steps": steps, "images": np.asarray(q), "start": np.asarray(start), "end": np.asarray(end)}


def _test_index(data: ImageData, example: int, field: str) -> None:
    n = int(data.x_test.shape[0])
    if not 0 <= example < n:
        raise Invalid(f"{field} are test-image indices from 0 to {n - 1}; got {example}", (field,))


def saliency_maps(
    cfg: cnn.CnnTrainConfig, state: TrainState, data: ImageData, *, examples: list[int]
) -> dict[str, Any]:
    """|input gradient of the predicted class| of the chosen test images, each scaled to 0..255: (n, H, W)."""
    for e in examples:
        _test_index(data, e, "examples")
    x = data.x_test[jnp.asarray(examples)]
    s = cnn_views.saliency(state.params, state.bn_state, x, cfg.arch)
    top = jnp.max(s, axis=(1, 2), keepdims=True)
    maps = np.asarray(jax.device_get(jnp.round(255.0 * s / jnp.where(top > 0, top, 1.0)).astype(jnp.uint8)))
    return {"examples": examples, "maps": maps}


def convolution_walkthrough(
    cfg: cnn.CnnTrainConfig,
    state: TrainState,
    data: ImageData,
    *,
    layer: int,
    filter_: int | None,
    example: int,
    row: int | None,
    col: int | None,
) -> dict[str, Any]:
    """One filter of a conv layer sliding over a patch of a test image, every multiply-and-sum spelled out,
    and the pooling after it (cnn_views.conv_walkthrough), with the test image itself (H, W) in 0..1."""
    layers = cfg.arch.layers
    convs = [i for i, layer_ in enumerate(layers) if layer_.type == "conv"]
    if layer not in convs:
        raise Invalid(f"layer must be a conv layer: one of {convs}", ("layer",))
    conv = layers[layer]
    assert isinstance(conv, cnn.Conv)  # checked just above
    filters = conv.filters
    if filter_ is not None and not 0 <= filter_ < filters:
        raise Invalid(f"filter must be from 0 to {filters - 1}", ("filter",))
    n = int(data.x_test.shape[0])
    if not 0 <= example < n:
        raise Invalid(f"example is a test-image index from 0 to {n - 1}", ("example",))
    image = data.images_test[example]  # (H, W, C), grey: C = 1
    out = cnn_views.conv_walkthrough(
        state.params, state.bn_state, cfg.arch, jnp.asarray(image), layer, filter_, row, col
    )
    return {"example": example, "label": int(data.labels_test[example]), "image": image[..., 0].tolist(), **out}


def feature_maps(
    cfg: cnn.CnnTrainConfig, state: TrainState, data: ImageData, *, spec: ExperimentSpec, images: np.ndarray
) -> dict[str, Any]:
    """Every layer's feature maps of given images (a drawing), as a frame's maps{i} / map_ranges{i}."""
    return {"feature_maps": image_maps(cfg, state, checked_images(spec, images))}
