"""From an ExperimentSpec with ``network.kind = "cnn"`` to the numeric objects of server/ml/cnn.py.

The same functions, by the same names, as ``server/experiment.py`` (the MLP's), so ``server/sessions.py``
drives either through ``engine_for(spec)``: data, static config, first weights, a training advance that
handles divergence, metrics, frames, predictions, live-edit carry-over. Pure functions, no session state.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from server.experiment import Advance, finite_or_none
from server.ml import cnn, cnn_views, images
from server.ml.health import gradient_health
from server.ml.inspect import quantize
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
    shapes = jax.eval_shape(lambda: cnn.init_cnn.__wrapped__(jax.random.PRNGKey(0), arch))
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(shapes))


def config_for(spec: ExperimentSpec) -> cnn.CnnTrainConfig:
    t = spec.training
    arch = arch_for(spec)
    has_dropout = any(layer.type == "dropout" and layer.rate > 0 for layer in arch.layers)
    a = spec.dataset.augment
    return cnn.CnnTrainConfig(
        arch=arch,
        optimizer=t.optimizer,
        regularization=t.regularization,
        dropout=has_dropout,
        augment=(a.shift, a.rotate, a.erase),
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


def advance(cfg: cnn.CnnTrainConfig, state: TrainState, data: ImageData, h: Hyper, epochs: int) -> Advance:
    """Train ``epochs`` epochs in one compiled call; on divergence, the last state whose weights and
    losses are finite (replayed: training is deterministic), and how many epochs led to it."""
    done, new, ok = cnn.train_cnn_epochs(cfg, state, data.batches, h, jnp.int32(epochs), data.padded)
    done, ok = int(done), bool(ok)
    if ok:
        return Advance(new, done, False)
    best = state
    if done > 1:
        _, s, fine = cnn.train_cnn_epochs(cfg, state, data.batches, h, jnp.int32(done - 1), data.padded)
        best = s if bool(fine) else state
        done = done - 1 if bool(fine) else 0
    else:
        done = 0
    return Advance(best, done, True)


def warm(cfg: cnn.CnnTrainConfig, state: TrainState, data: ImageData, h: Hyper) -> None:
    """Compile the training program for these shapes by training zero epochs."""
    jax.block_until_ready(cnn.train_cnn_epochs(cfg, state, data.batches, h, jnp.int32(0), data.padded))


EVAL_CHUNK = 256  # images per compiled evaluation call: one program per architecture, whatever the data size


def _cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Softmax cross-entropy of each row against its class index, (n,)."""
    return jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, y[:, None], -1)[:, 0]


@partial(jax.jit, static_argnames=("cfg",))
def _eval_chunk(cfg: cnn.CnnTrainConfig, params, bn_state, x, y, mask):
    """Sum of cross-entropy and of correct answers over the real rows of a chunk, and its logits."""
    logits, _ = cnn.apply_cnn(params, x, cfg.arch, bn_state=bn_state, conv=cfg.conv)
    per = _cross_entropy(logits, y)
    right = (jnp.argmax(logits, -1) == y).astype(jnp.float32)
    return jnp.sum(per * mask), jnp.sum(right * mask), logits


def _chunks(x: jax.Array, y: jax.Array):
    """(x, y, mask) chunks of EVAL_CHUNK rows, the last one padded."""
    n = int(x.shape[0])
    for start in range(0, n, EVAL_CHUNK):
        xc, yc = x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
        real = int(xc.shape[0])
        if real < EVAL_CHUNK:
            pad = EVAL_CHUNK - real
            xc = jnp.pad(xc, ((0, pad), (0, 0), (0, 0), (0, 0)))
            yc = jnp.pad(yc, (0, pad))
        yield xc, yc, (jnp.arange(EVAL_CHUNK) < real).astype(jnp.float32), real


def _evaluate(cfg: cnn.CnnTrainConfig, state: TrainState, x: jax.Array, y: jax.Array, logits: bool = False):
    """(mean loss, accuracy[, logits (n, K)]) over all of x, one compiled chunk program at a time."""
    loss = right = 0.0
    outs = []
    for xc, yc, mask, real in _chunks(x, y):
        l, r, lg = _eval_chunk(cfg, state.params, state.bn_state, xc, yc, mask)
        loss, right = loss + l, right + r
        if logits:
            outs.append(lg[:real])
    n = max(int(x.shape[0]), 1)
    result = (loss / n, right / n)
    return (*result, jnp.concatenate(outs)) if logits else result


def metrics(cfg: cnn.CnnTrainConfig, state: TrainState, data: ImageData, problem: str) -> dict[str, float | None]:
    tr, te = _evaluate(cfg, state, data.x_train, data.y_train), _evaluate(cfg, state, data.x_test, data.y_test)
    (tr_loss, tr_acc), (te_loss, te_acc) = jax.device_get((tr, te))
    values = {"train_loss": tr_loss, "test_loss": te_loss, "train_accuracy": tr_acc, "test_accuracy": te_acc}
    return {k: finite_or_none(float(v)) for k, v in values.items()}


@partial(jax.jit, static_argnames=("cfg",))
def _views(cfg: cnn.CnnTrainConfig, params, bn_state, examples):
    """Every layer's feature maps of the example images quantized per map (uint8 + each map's range), and
    the examples' class probabilities."""
    logits, extras = cnn.apply_cnn(params, examples, cfg.arch, bn_state=bn_state, with_activations=True, conv=cfg.conv)
    maps, ranges = [], []
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


def view_set(data: ImageData) -> tuple[jax.Array, jax.Array]:
    """The training images the optimization views and frames' gradient health evaluate on."""
    lo, hi = VIEW_IMAGES
    n = min(hi, max(lo, VIEW_PIXELS // int(np.prod(data.x_train.shape[1:]))))
    return data.x_train[:n], data.y_train[:n]


def activation_names(arch: cnn.CnnArch) -> list[str | None]:
    """Each layer's activation (None for pool, flatten, dropout, batch norm); the softmax head left out."""
    return [getattr(layer, "activation", None) for layer in arch.layers]


@partial(jax.jit, static_argnames=("cfg",))
def _health(cfg: cnn.CnnTrainConfig, params, bn_state, x, y):
    """Gradient health of the data loss on (x, y): per layer with weights (``health.gradient_health``)."""

    def loss(p):
        logits, extras = cnn.apply_cnn(p, x, cfg.arch, bn_state=bn_state, with_activations=True, conv=cfg.conv)
        return _cross_entropy(logits, y).mean(), extras["activations"]

    grads, acts = jax.grad(loss, has_aux=True)(params)
    return gradient_health(grads, params, None, acts, activation_names(cfg.arch))


def frame_arrays(cfg: cnn.CnnTrainConfig, state: TrainState, data: ImageData) -> dict[str, Any]:
    """Losses, accuracies, the test confusion matrix, feature maps and class probabilities of the examples."""
    tr_loss, tr_acc = _evaluate(cfg, state, data.x_train, data.y_train)
    te_loss, te_acc, logits = _evaluate(cfg, state, data.x_test, data.y_test, logits=True)
    out = _views(cfg, state.params, state.bn_state, data.x_test[:N_EXAMPLES])
    out |= {"train_loss": tr_loss, "test_loss": te_loss, "train_accuracy": tr_acc, "test_accuracy": te_acc}
    out["confusion"] = cnn.confusion_matrix(logits, data.y_test, cfg.arch.n_classes)
    out["health"] = _health(cfg, state.params, state.bn_state, *view_set(data))
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
    return jax.device_get(out)


def frame_header(cfg: cnn.CnnTrainConfig, data: ImageData) -> dict[str, Any]:
    """The kind-specific part of a frame's header."""
    shapes = cnn.check_arch(cfg.arch)
    return {
        "kind": "cnn",
        "input_shape": list(cfg.arch.input_shape),
        "layers": [
            {**cnn.layer_to_dict(layer), "output_shape": list(shape)}
            for layer, shape in zip(cfg.arch.layers, shapes, strict=True)
        ],
        "class_names": list(data.class_names),
        "example_labels": data.labels_test[:N_EXAMPLES].tolist(),
        "map_scale": "per map: 0 ↔ the map's minimum, 255 ↔ its maximum (map_ranges{i} gives them)",
    }


_HEALTH_ARRAYS = {
    "grad_norms": "grad_norm",
    "dead_fraction": "dead_fraction",
    "saturated_fraction": "saturated_fraction",
}


def frame_payload(arrays: dict[str, Any], params: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The arrays a frame sends: feature maps and their ranges per layer, the confusion matrix, the
    examples' class probabilities, and every weight (conv filters are w{i}: (k, k, C_in, F))."""
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
    for i, layer in enumerate(params):
        for name, value in layer.items():
            out[f"{name}{i}"] = np.asarray(value, np.float32)
    return out


def predict_images(cfg: cnn.CnnTrainConfig, state: TrainState, spec: ExperimentSpec, x: np.ndarray) -> np.ndarray:
    """Class probabilities (n, n_classes) for images (n, H, W, C) in [0, 1]."""
    logits = cnn.predict_cnn(cfg, state.params, state.bn_state, jnp.asarray(x, jnp.float32))
    return np.asarray(jax.nn.softmax(logits, axis=-1))


def image_maps(cfg: cnn.CnnTrainConfig, state: TrainState, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every spatial layer's feature maps of images (n, H, W, C) in [0, 1], quantized as a frame's:
    ``maps{i}`` (n, C, H, W) bytes and ``map_ranges{i}`` (n, C, 2)."""
    return map_arrays(jax.device_get(_views(cfg, state.params, state.bn_state, jnp.asarray(x, jnp.float32))))


def map_arrays(views: dict[str, Any]) -> dict[str, np.ndarray]:
    """``maps{i}`` / ``map_ranges{i}`` of every spatial layer, from ``_views``' lists (None for flat layers)."""
    out: dict[str, np.ndarray] = {}
    for i, (m, r) in enumerate(zip(views["maps"], views["map_ranges"], strict=True)):
        if m is not None:
            out[f"maps{i}"] = np.asarray(m, np.uint8)
            out[f"map_ranges{i}"] = np.asarray(r, np.float32)
    return out


def architecture(cfg: cnn.CnnTrainConfig, data: ImageData) -> dict[str, Any]:
    """The CNN part of a session's public state: each layer with its output shape."""
    return frame_header(cfg, data)["layers"]


def notes_for(spec: ExperimentSpec) -> list[str]:
    notes = []
    for i, layer in enumerate(spec.network.layers):
        if getattr(layer, "activation", None) in ("step", "sign"):
            notes.append(f"layer {i + 1} uses '{layer.activation}', whose derivative is 0 almost everywhere")
    return notes


def activation_maximization(
    cfg: cnn.CnnTrainConfig, state: TrainState, layer: int, steps: int, seed: int = 0
) -> dict[str, Any]:
    """For every channel of ``layer``: the input image that excites it most (gradient ascent on the input
    with jitter, L2 and blur), as bytes (channels, C, H, W), with the channel's mean activation before/after."""
    images_, start, end = cnn_views.maximize(
        state.params, state.bn_state, jax.random.PRNGKey(seed), cfg.arch, layer, steps=steps
    )
    q = jnp.round(images_ * 255.0).astype(jnp.uint8).transpose(0, 3, 1, 2)
    q, start, end = jax.device_get((q, start, end))
    return {"images": np.asarray(q), "start": np.asarray(start), "end": np.asarray(end)}


def saliency_maps(cfg: cnn.CnnTrainConfig, state: TrainState, data: ImageData, examples: list[int]) -> np.ndarray:
    """|input gradient of the predicted class| of the chosen test images, each scaled to 0..255: (n, H, W)."""
    x = data.x_test[jnp.asarray(examples)]
    s = cnn_views.saliency(state.params, state.bn_state, x, cfg.arch)
    top = jnp.max(s, axis=(1, 2), keepdims=True)
    return np.asarray(jax.device_get(jnp.round(255.0 * s / jnp.where(top > 0, top, 1.0)).astype(jnp.uint8)))


def convolution_walkthrough(
    cfg: cnn.CnnTrainConfig,
    state: TrainState,
    data: ImageData,
    layer: int,
    filter_: int | None,
    example: int,
    row: int | None,
    col: int | None,
) -> dict[str, Any]:
    """One filter of a conv layer sliding over a patch of a test image, every multiply-and-sum spelled out,
    and the pooling after it (cnn_views.conv_walkthrough), with the test image itself (H, W) in 0..1."""
    image = data.images_test[example]  # (H, W, C), grey: C = 1
    out = cnn_views.conv_walkthrough(
        state.params, state.bn_state, cfg.arch, jnp.asarray(image), layer, filter_, row, col
    )
    return {"example": example, "label": int(data.labels_test[example]), "image": image[..., 0].tolist(), **out}
