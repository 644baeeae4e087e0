"""The CNN engine: from an ExperimentSpec with ``network.kind = "cnn"`` to the numeric objects of server/ml.

The same functions as the MLP engine (server/engines/mlp.py), bound as an ``Engine`` by ``CNN``: data,
static config, first weights, a training advance that handles divergence, metrics, frames, predictions,
live-edit carry-over, and the CNN's own views (activation maximization, saliency, the convolution walk,
a drawing's feature maps). Pure functions, no session state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from server.config import Settings
from server.engines.base import (
    THUMBNAIL,
    Advance,
    View,
    advance_with,
    diverging_rgb,
    frame_diagnosis,
    sanitize,
    schedule_for,
    weight_arrays,
)
from server.engines.cnn_views import (
    activation_maximization,
    checked_images,
    convolution_walkthrough,
    feature_maps,
    map_arrays,
    saliency_maps,
)
from server.errors import Invalid
from server.ml import cnn, cnn_frames, images, sweep
from server.ml.models import OUTPUTS, count_params
from server.ml.probes import gradient_health
from server.ml.train import Hyper, TrainState, hyper, init_opt_state
from server.spec import ExperimentSpec, cnn_layers

N_EXAMPLES = 8  # test images whose feature maps frames carry (the page picks one)
# Gradient health, slices and Hessians use the first training images, as many as fit this many pixels
# (28×28: 64 images; 8×8 digits: 512): a forward and backward pass over every image would take too long.
VIEW_PIXELS = 64 * 28 * 28
VIEW_IMAGES = (32, 512)


@dataclass(frozen=True)
class ImageData:
    """A spec's images: host copies for drawing, device arrays for training, evaluation and frames."""

    images_train: np.ndarray  # (n_train, H, W, C) in [0, 1]
    labels_train: np.ndarray  # (n_train,) int32
    images_test: np.ndarray
    labels_test: np.ndarray
    x_train: jax.Array
    y_train: jax.Array
    x_test: jax.Array
    y_test: jax.Array
    batches: tuple[jax.Array, jax.Array, jax.Array]  # x (S, B, H, W, C), y (S, B), mask (S, B): one epoch
    padded: bool
    class_names: tuple[str, ...]

    @property
    def steps_per_epoch(self) -> int:
        return int(self.batches[0].shape[0])

    @property
    def program_key(self) -> tuple[Any, ...]:
        """What the compiled training and frame programs depend on besides the config."""
        return (self.batches[0].shape, self.padded, self.x_test.shape)


def batch_size(spec: ExperimentSpec, n_train: int) -> int:
    return max(1, min(spec.training.batch_size, n_train))


def build_data(spec: ExperimentSpec, data_dir: Path = images.DEFAULT_DATA_DIR, download: bool = True) -> ImageData:
    """Generate (or load: IDX sets from data_dir) the images, split them, batch the training part."""
    d = spec.dataset
    x, y = images.generate_images(
        d.name, d.n, d.noise / 100.0, d.seed, size=d.image_size, data_dir=data_dir, download=download
    )
    x_tr, y_tr, x_te, y_te = images.split_images(x, y, d.train_percent, d.seed)
    b = batch_size(spec, len(x_tr))
    return ImageData(
        images_train=x_tr,
        labels_train=y_tr,
        images_test=x_te,
        labels_test=y_te,
        x_train=jnp.asarray(x_tr),
        y_train=jnp.asarray(y_tr),
        x_test=jnp.asarray(x_te),
        y_test=jnp.asarray(y_te),
        batches=cnn.image_batches(x_tr, y_tr, b),
        padded=len(x_tr) % b != 0,
        class_names=images.IMAGE_DATASETS[d.name].class_names,
    )


def arch_for(spec: ExperimentSpec) -> cnn.CnnArch:
    return cnn.CnnArch(spec.image_shape, cnn_layers(spec), spec.n_classes)


def parameter_count(spec: ExperimentSpec) -> int:
    """Weights and biases of the spec's CNN, from its shapes (nothing is allocated)."""
    arch = arch_for(spec)
    shapes = jax.eval_shape(partial(cnn.init_cnn, arch=arch), jax.random.PRNGKey(0))
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(shapes))


def config_for(spec: ExperimentSpec) -> cnn.CnnTrainConfig:
    t = spec.training
    arch = arch_for(spec)
    has_dropout = any(isinstance(layer, cnn.Dropout) and layer.rate > 0 for layer in arch.layers)
    a = spec.dataset.augment
    return cnn.CnnTrainConfig(
        arch=arch,
        optimizer=t.optimizer,
        regularization=t.regularization,
        dropout=has_dropout,
        augment=(a.shift, a.rotate, a.erase),
        schedule=schedule_for(spec),
    )


def hyper_for(spec: ExperimentSpec) -> Hyper:
    """The traced hyperparameters; ``dropout`` holds every dropout layer's rate, in order (changing one
    never recompiles)."""
    t = spec.training
    rates = [layer.rate for layer in spec.network.layers if layer.type == "dropout"]
    return hyper(t.learning_rate, t.momentum, t.regularization_rate, rates)


def init_train_state(spec: ExperimentSpec, cfg: cnn.CnnTrainConfig) -> TrainState:
    """First weights and optimizer state, determined by spec.seed."""
    k_init, k_run = jax.random.split(jax.random.PRNGKey(spec.seed))
    return cnn.init_cnn_state(cfg, cnn.init_cnn(k_init, cfg.arch), k_run)


def carry_over(
    old_spec: ExperimentSpec,
    old_cfg: cnn.CnnTrainConfig,
    old: TrainState,
    spec: ExperimentSpec,
    cfg: cnn.CnnTrainConfig,
) -> tuple[TrainState, dict[str, Any]]:
    """The training state after a live edit: layer i keeps old layer i's numbers where both are the same
    kind (the overlapping block of each array: an added filter or unit is new, the others are kept), the
    head keeps the old head's; optimizer state kept when nothing changed shape."""
    if old_cfg.arch == cfg.arch:
        params = old.params
        n = sum(int(np.prod(v.shape)) for v in jax.tree_util.tree_leaves(params))
        layers_report: list[dict[str, Any]] = []
        report: dict[str, Any] = {"kept": n, "initialized": 0}
    else:
        fresh = init_train_state(spec, cfg).params
        old_kinds = [layer.type for layer in old_cfg.arch.layers] + ["head"]
        new_kinds = [layer.type for layer in cfg.arch.layers] + ["head"]
        params, layers_report = [], []
        for i, layer in enumerate(fresh):
            j = len(old_kinds) - 1 if new_kinds[i] == "head" else i
            src = old.params[j] if j < len(old_kinds) and old_kinds[j] == new_kinds[i] else {}
            out, kept, size = dict(layer), 0, 0
            for name, value in layer.items():
                size += int(np.prod(value.shape))
                if name in src and src[name].ndim == value.ndim:
                    block = tuple(slice(0, min(a, b)) for a, b in zip(value.shape, src[name].shape, strict=True))
                    out[name] = value.at[block].set(src[name][block])
                    kept += int(np.prod([s.stop for s in block]))
            params.append(out)
            if size:
                layers_report.append({"layer": i, "shape": list(layer.get("w", next(iter(layer.values()))).shape)})
                layers_report[-1] |= {"kept": kept, "initialized": size - kept}
        report = {
            "kept": sum(r["kept"] for r in layers_report),
            "initialized": sum(r["initialized"] for r in layers_report),
        }
    report["layers"] = layers_report
    keep_opt = old_cfg.arch == cfg.arch and old_cfg.optimizer == cfg.optimizer
    state = TrainState(params, old.opt_state if keep_opt else init_opt_state(cfg, params), old.bn_state, old.key)
    if old_cfg.arch != cfg.arch:
        state = state._replace(bn_state=cnn.init_cnn_bn_state(cfg.arch))
    report["optimizer_state"] = "kept" if keep_opt else "reinitialized"
    return state, report


def advance(
    cfg: cnn.CnnTrainConfig,
    state: TrainState,
    data: ImageData,
    h: Hyper,
    epochs: int,
    start: int = 0,
    every: int | None = None,
) -> Advance:
    """Train ``epochs`` epochs in one compiled call; on divergence, the last healthy state (``advance_with``).
    ``start``: the epochs trained so far (where the learning-rate schedule is). A CNN's epoch is long next
    to a look at its metrics, so its program records none (``every`` is not used)."""

    def train(k: int) -> tuple[int, TrainState, bool, None]:
        if k == 0:
            return 0, state, True, None
        done, new, ok = cnn.train_cnn_epochs(cfg, state, data.batches, h, np.int32(k), data.padded, np.int32(start))
        return int(done), new, bool(ok), None

    return advance_with(train, state, epochs)


def warm(cfg: cnn.CnnTrainConfig, state: TrainState, data: ImageData, h: Hyper) -> None:
    """Compile the training program for these shapes by training zero epochs."""
    jax.block_until_ready(cnn.train_cnn_epochs(cfg, state, data.batches, h, np.int32(0), data.padded, np.int32(0)))  # type: ignore[no-untyped-call]


def metrics(cfg: cnn.CnnTrainConfig, state: TrainState, data: ImageData, problem: str) -> dict[str, float | None]:
    tr = cnn_frames.evaluate(cfg, state.params, state.bn_state, data.x_train, data.y_train)
    te = cnn_frames.evaluate(cfg, state.params, state.bn_state, data.x_test, data.y_test)
    (tr_loss, tr_acc), (te_loss, te_acc) = jax.device_get((tr, te))
    values = {"train_loss": tr_loss, "test_loss": te_loss, "train_accuracy": tr_acc, "test_accuracy": te_acc}
    return sanitize(values, problem)


def view_set(cfg: cnn.CnnTrainConfig, data: ImageData) -> tuple[jax.Array, jax.Array]:
    """The training images the optimization views and frames' gradient health evaluate on."""
    lo, hi = VIEW_IMAGES
    n = min(hi, max(lo, VIEW_PIXELS // int(np.prod(data.x_train.shape[1:]))))
    return data.x_train[:n], data.y_train[:n]


def frame_arrays(cfg: cnn.CnnTrainConfig, state: TrainState, data: ImageData, h: Hyper) -> dict[str, Any]:
    """Losses, accuracies, the test confusion matrix, feature maps and class probabilities of the examples,
    gradient health on the view set, the most confidently misclassified test images."""
    p, bn = state.params, state.bn_state
    tr_loss, tr_acc = cnn_frames.evaluate(cfg, p, bn, data.x_train, data.y_train)
    te_loss, te_acc, logits = cnn_frames.evaluate(cfg, p, bn, data.x_test, data.y_test, logits=True)
    out = cnn_frames.views(cfg, p, bn, data.x_test[:N_EXAMPLES])
    out |= {"train_loss": tr_loss, "test_loss": te_loss, "train_accuracy": tr_acc, "test_accuracy": te_acc}
    out["confusion"] = cnn.confusion_matrix(logits, data.y_test, cfg.arch.n_classes)
    out["health"] = gradient_health(cfg, state, *view_set(cfg, data), h)
    # The most confidently misclassified test images: wrong answers, surest first.
    probs = jax.nn.softmax(logits, axis=-1)
    predicted, confidence = jnp.argmax(probs, -1), jnp.max(probs, -1)
    order = jnp.argsort(jnp.where(predicted != data.y_test, -confidence, jnp.inf))[:N_EXAMPLES]
    wrong = np.asarray(predicted[order] != data.y_test[order])
    order = np.asarray(order)[wrong]
    out["wrong_index"] = order.astype(np.int32)
    out["wrong_images"] = np.round(data.images_test[order] * 255.0).astype(np.uint8).transpose(0, 3, 1, 2)
    out["wrong_predicted"] = np.asarray(predicted)[order].astype(np.int32)
    out["wrong_confidence"] = np.asarray(confidence)[order].astype(np.float32)
    arrays: dict[str, Any] = jax.device_get(out)
    return arrays


def layer_shapes(cfg: cnn.CnnTrainConfig) -> list[dict[str, Any]]:
    """Each layer with its output shape."""
    shapes = cnn.check_arch(cfg.arch)
    return [
        {**cnn.layer_to_dict(layer), "output_shape": list(shape)}
        for layer, shape in zip(cfg.arch.layers, shapes, strict=True)
    ]


_HEALTH_ARRAYS = {
    "grad_norms": "grad_norm",
    "dead_fraction": "dead_fraction",
    "saturated_fraction": "saturated_fraction",
}


def frame(
    spec: ExperimentSpec, cfg: cnn.CnnTrainConfig, state: TrainState, data: ImageData, arrays: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The CNN part of a frame (docs/frames.md): its header fields, and its arrays — feature maps and their
    ranges per layer, the confusion matrix, the examples' class probabilities, the mistakes, gradient health
    and every weight (conv filters are w{i}: (k, k, C_in, F))."""
    header = {
        "kind": "cnn",
        "input_shape": list(cfg.arch.input_shape),
        "layers": layer_shapes(cfg),
        "class_names": list(data.class_names),
        "example_labels": data.labels_test[:N_EXAMPLES].tolist(),
        "map_scale": "per map: 0 ↔ the map's minimum, 255 ↔ its maximum (map_ranges{i} gives them)",
        "diagnosis": frame_diagnosis(CNN, spec, cfg, arrays["health"]),
    }
    out: dict[str, np.ndarray] = {
        "examples": np.asarray(arrays["examples"], np.uint8),  # (examples, C, H, W) the input images, 0..255
        "confusion": np.asarray(arrays["confusion"], np.int32),
        # the most confidently misclassified test images (at most 8): index, pixels, answer, its probability
        "wrong_index": arrays["wrong_index"],
        "wrong_images": arrays["wrong_images"],
        "wrong_predicted": arrays["wrong_predicted"],
        "wrong_confidence": arrays["wrong_confidence"],
        "example_probs": np.asarray(arrays["example_probs"], np.float32),
    }
    # gradient health of each layer with weights (conv, dense, the head) on the view images
    health = arrays["health"]
    out["grad_layers"] = np.asarray(health["layer"], np.int32)
    out |= {k: np.asarray(health[v], np.float32) for k, v in _HEALTH_ARRAYS.items()}
    out |= map_arrays(arrays)
    return header, out | weight_arrays(jax.device_get(state.params))


def predict_images(cfg: cnn.CnnTrainConfig, state: TrainState, spec: ExperimentSpec, x: np.ndarray) -> np.ndarray:
    """Class probabilities (n, n_classes) for images (n, H, W[, C]) in [0, 1]."""
    x = checked_images(spec, x)
    logits = cnn.predict_cnn(cfg, state.params, state.bn_state, jnp.asarray(x, jnp.float32))
    return np.asarray(jax.nn.softmax(logits, axis=-1))


def notes_for(spec: ExperimentSpec) -> list[str]:
    notes = []
    for i, layer in enumerate(spec.network.layers):
        activation = getattr(layer, "activation", None)
        if activation in ("step", "sign"):
            notes.append(f"layer {i + 1} uses '{activation}', whose derivative is 0 almost everywhere")
    return notes


# ------------------------------------------------------------------------------------ the session's view of it


def check_limits(spec: ExperimentSpec, settings: Settings) -> None:
    """Memory per session: the images, and the network's size."""
    h, w, c = spec.image_shape
    pixels = spec.dataset.n * h * w * c
    if pixels > settings.max_image_pixels:
        most = settings.max_image_pixels // (h * w * c)
        raise Invalid(f"at most {most} images of {h}×{w} on this server", ("dataset", "n"))
    params = parameter_count(spec)
    if params > settings.max_cnn_parameters:
        limit = settings.max_cnn_parameters
        raise Invalid(
            f"this network has {params:,} parameters; this server allows {limit:,}: use fewer filters or"
            " units, or pool before the dense layers",
            ("network", "layers"),
        )


def data_key(spec: ExperimentSpec) -> tuple[Any, ...]:
    """What the images depend on (augmentation happens inside training: the data stay)."""
    return (spec.dataset.model_copy(update={"augment": None}), spec.problem, spec.training.batch_size)


def architecture(spec: ExperimentSpec, cfg: cnn.CnnTrainConfig, state: TrainState, data: ImageData) -> dict[str, Any]:
    """The ``architecture`` of a session's public state: each layer with its output shape."""
    return {
        "inputs": ["×".join(map(str, spec.image_shape)) + " image"],
        "hidden": [],
        "layers": layer_shapes(cfg),
        "output": {"kind": "softmax", "units": spec.n_classes, "description": OUTPUTS["softmax"]},
        "parameters": count_params(state.params),
        "steps_per_epoch": data.steps_per_epoch,
        "n_train": int(data.x_train.shape[0]),
        "n_test": int(data.x_test.shape[0]),
    }


def data_public(spec: ExperimentSpec, data: ImageData) -> dict[str, Any]:
    """The labels and class names (the pixels travel in frames and the export)."""
    return {
        "problem": spec.problem,
        "classes": spec.n_classes,
        "class_names": list(data.class_names),
        "image_shape": list(spec.image_shape),
        "train": {"labels": data.labels_train.tolist()},
        "test": {"labels": data.labels_test.tolist()},
    }


def activation_patch(spec: ExperimentSpec, activation: str) -> dict[str, Any]:
    """A partial spec giving every conv and dense layer ``activation`` (a diagnosis's fix)."""
    layers = [layer.model_dump() for layer in spec.network.layers]
    for layer in layers:
        if "activation" in layer:
            layer["activation"] = activation
    return {"network": {"layers": layers}}


def thumbnail(spec: ExperimentSpec, cfg: cnn.CnnTrainConfig, state: TrainState) -> np.ndarray:
    """The first conv layer's filters (up to 16, their first input channel), each scaled to its own largest
    weight, tiled THUMBNAIL pixels a side in the page's diverging colours (a saved experiment's picture)."""
    first = next((i for i, layer in enumerate(cfg.arch.layers) if isinstance(layer, cnn.Conv)), None)
    picture = np.full((THUMBNAIL, THUMBNAIL, 3), 255, np.uint8)
    if first is None:
        return picture
    w = np.asarray(state.params[first]["w"])[:, :, 0, :16]  # (k, k, F)
    side = math.ceil(math.sqrt(w.shape[-1]))
    cell = THUMBNAIL // side
    for f in range(w.shape[-1]):
        scale = float(np.abs(w[..., f]).max()) or 1.0
        tile = diverging_rgb(w[..., f] / scale)
        reps = max(1, (cell - 2) // w.shape[0])
        tile = np.repeat(np.repeat(tile, reps, axis=0), reps, axis=1)
        r, c = divmod(f, side)
        y, x = r * cell + 1, c * cell + 1
        picture[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    return picture


def sweep_data(cfg: cnn.CnnTrainConfig, data: ImageData) -> tuple[sweep.GroupData, int]:
    """What a sweep's group trains on, and configurations per vmapped block (by the size of its convolutions)."""
    block = sweep.cnn_block_size(cfg.arch, int(data.batches[0].shape[1]))
    return sweep.cnn_group_data(data.batches, (data.x_train, data.y_train), (data.x_test, data.y_test)), block


def advance_many(
    cfg: cnn.CnnTrainConfig,
    states: Sequence[TrainState],
    data: ImageData,
    hs: Sequence[Hyper],
    epochs: int,
    starts: Sequence[int],
) -> list[Advance | None]:
    """One after another: a CNN's step is big enough to fill the machine alone (``cohorts`` is off)."""
    out: list[Advance | None] = []
    for state, h, start in zip(states, hs, starts, strict=True):
        result = advance(cfg, state, data, h, epochs, start)
        out.append(None if result.diverged else result)
    return out


def frame_arrays_many(
    cfg: cnn.CnnTrainConfig, states: Sequence[TrainState], data: ImageData, hs: Sequence[Hyper]
) -> list[dict[str, Any]]:
    return [frame_arrays(cfg, state, data, h) for state, h in zip(states, hs, strict=True)]


def warm_many(cfg: cnn.CnnTrainConfig, state: TrainState, data: ImageData, h: Hyper, size: int) -> None:
    warm(cfg, state, data, h)  # one by one: the single session's program


class CnnEngine:
    """The CNN engine (``base.Engine``)."""

    name = "cnn"
    input_field = "images"
    fix_keys: tuple[str, ...] = ("activation", "learning_rate")  # no init choice or MLP-style batch-norm switch
    views: Mapping[str, View] = {
        "actmax": activation_maximization,
        "saliency": saliency_maps,
        "convolution": convolution_walkthrough,
        "feature_maps": feature_maps,
    }

    check_limits = staticmethod(check_limits)
    config_for = staticmethod(config_for)
    hyper_for = staticmethod(hyper_for)
    build_data = staticmethod(build_data)
    data_key = staticmethod(data_key)
    init_train_state = staticmethod(init_train_state)
    carry_over = staticmethod(carry_over)
    advance = staticmethod(advance)
    cohorts = False  # no cohorts: advance_many and frame_arrays_many run the sessions one by one
    advance_many = staticmethod(advance_many)
    frame_arrays_many = staticmethod(frame_arrays_many)
    warm_many = staticmethod(warm_many)
    warm = staticmethod(warm)
    metrics = staticmethod(metrics)
    frame_arrays = staticmethod(frame_arrays)
    frame = staticmethod(frame)
    view_set = staticmethod(view_set)
    predict = staticmethod(predict_images)
    notes_for = staticmethod(notes_for)
    architecture = staticmethod(architecture)
    data_public = staticmethod(data_public)
    activation_patch = staticmethod(activation_patch)
    thumbnail = staticmethod(thumbnail)
    sweep_data = staticmethod(sweep_data)

    @staticmethod
    def sweep_maps(cfg: Any, states: TrainState, data: list[ImageData], shared: bool) -> np.ndarray | None:
        return None  # an image classifier has no decision map over the plane

    @staticmethod
    def weight_inputs(spec: ExperimentSpec) -> list[str]:
        return ["image"]


CNN = CnnEngine()
