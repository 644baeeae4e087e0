"""ExperimentSpec: THE description of an experiment (REST bodies, page forms, saved work, share links).

Defaults reproduce TensorFlow Playground's first screen. Every numeric field has a range; anything out of
range, of the wrong type, or an unknown name is a validation error that names the field.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from server.ml import cnn
from server.ml.datasets import DATASETS, FEATURES
from server.ml.images import IMAGE_DATASETS
from server.ml.models import ACTIVATIONS, INITS
from server.ml.train import OPTIMIZERS

if TYPE_CHECKING:
    # The names are Literals built from the registries at run time (pydantic validates against them); a static
    # checker cannot evaluate those, so to it each name is a plain str.
    ActivationName = str
    DatasetName = str
    FeatureName = str
    OptimizerName = str
    InitName = str
else:
    ActivationName = Literal[tuple(ACTIVATIONS)]
    DatasetName = Literal[(*DATASETS, *IMAGE_DATASETS, "custom")]
    FeatureName = Literal[tuple(FEATURES)]
    OptimizerName = Literal[tuple(OPTIMIZERS)]
    InitName = Literal[INITS]

MAX_HIDDEN_LAYERS = 10
MAX_UNITS = 64
MAX_CNN_LAYERS = 16


Coordinate = Annotated[float, Field(ge=-6, le=6, description="inside the plotted square [-6, 6]")]
Point = tuple[Coordinate, Coordinate, float]  # x1, x2, label (class index 0/1/2, or a regression target)


def _error(loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """A validation error located at a field, for rules that span several fields."""
    detail = InitErrorDetails(type=PydanticCustomError("spec_rule", message), loc=loc, input=value)
    return ValidationError.from_exception_data("ExperimentSpec", [detail])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class AugmentSpec(_Strict):
    """Random variants of the training images, fresh every epoch (image datasets only; the test set is
    never augmented)."""

    shift: int = Field(0, ge=0, le=4, description="move each image by up to this many pixels along each axis")
    rotate: float = Field(0.0, ge=0, le=45, description="turn each image by up to this many degrees either way")
    erase: float = Field(0.0, ge=0, le=1, description="probability of blanking one random rectangle of an image")

    @property
    def active(self) -> bool:
        return self.shift > 0 or self.rotate > 0 or self.erase > 0


class DatasetSpec(_Strict):
    name: DatasetName = "circle"  # see GET /api/v1/datasets
    n: int = Field(500, ge=10, le=5000, description="number of points (train + test)")
    noise: float = Field(0.0, ge=0, le=50, description="noise in percent, as TF Playground's slider (0-50)")
    train_percent: float = Field(50.0, ge=10, le=90, description="share of the points used for training")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the data generator")
    points: list[Point] | None = Field(
        None, max_length=5000, description="your own data [x1, x2, label] when name is 'custom' (e.g. from a CSV)"
    )
    split: list[Literal["train", "test"]] | None = Field(
        None,
        max_length=5000,
        description="'custom' data: each point's part, in the order of points (kept as given: no shuffle); null ="
        " shuffled, then split by train_percent",
    )
    added: list[Point] = Field(
        default_factory=list, max_length=1000, description="points added by hand [x1, x2, label]: training set"
    )
    image_size: Literal[16, 28] | None = Field(
        None, description="side of generated images (shapes, bars): 16 or 28; null = 16. digits are 8×8"
    )
    augment: AugmentSpec = Field(
        default_factory=AugmentSpec, description="image sets: random shifts, turns and erasing while training"
    )


class LayerSpec(_Strict):
    units: int = Field(ge=1, le=MAX_UNITS, description="neurons in this layer (1-64)")
    activation: ActivationName = "tanh"  # see GET /api/v1/activations


class ConvLayerSpec(_Strict):
    type: Literal["conv"]
    filters: int = Field(8, ge=1, le=64, description="output channels (1-64)")
    kernel: int = Field(3, ge=1, le=7, description="square kernel side (1-7)")
    stride: int = Field(1, ge=1, le=4)
    padding: Literal["same", "valid"] = "same"
    activation: ActivationName = "relu"


class PoolLayerSpec(_Strict):
    type: Literal["pool"]
    kind: Literal["max", "avg"] = "max"
    size: int = Field(2, ge=1, le=8, description="square window side")
    stride: int | None = Field(None, ge=1, le=8, description="null = the window size (no overlap)")


class FlattenLayerSpec(_Strict):
    type: Literal["flatten"]


class DenseLayerSpec(_Strict):
    type: Literal["dense"]
    units: int = Field(32, ge=1, le=256)
    activation: ActivationName = "relu"


class DropoutLayerSpec(_Strict):
    type: Literal["dropout"]
    rate: float = Field(0.5, ge=0, le=0.9)


class BatchNormLayerSpec(_Strict):
    type: Literal["batch_norm"]


CnnLayerSpec = Annotated[
    ConvLayerSpec | PoolLayerSpec | FlattenLayerSpec | DenseLayerSpec | DropoutLayerSpec | BatchNormLayerSpec,
    Field(discriminator="type"),
]


def _default_cnn_layers() -> list[Any]:
    """A small convnet that fits every image set (8×8 digits too): conv, pool, conv, pool."""
    return [
        ConvLayerSpec(type="conv", filters=8, kernel=3),
        PoolLayerSpec(type="pool"),
        ConvLayerSpec(type="conv", filters=16, kernel=3),
        PoolLayerSpec(type="pool"),
    ]


class NetworkSpec(_Strict):
    kind: Literal["mlp", "cnn"] = "mlp"
    hidden: list[LayerSpec] = Field(
        default_factory=lambda: [LayerSpec(units=4), LayerSpec(units=2)],
        max_length=MAX_HIDDEN_LAYERS,
        description="MLP: hidden layers, input side first (0-10 layers)",
    )
    layers: list[CnnLayerSpec] = Field(
        default_factory=_default_cnn_layers,
        max_length=MAX_CNN_LAYERS,
        description="CNN: layers from the image up (conv, pool, flatten, dense, dropout, batch_norm); a softmax"
        " dense head over the classes follows them",
    )
    # xavier | he | normal (small, σ = 0.01) | zeros | tfplayground (w uniform in ±0.5, b = 0.1), applied at reset
    # (MLP; CNN layers use He/Xavier)
    init: InitName = "xavier"

    @property
    def neurons(self) -> int:
        """Hidden neurons: an MLP's hidden units; a CNN's filters and dense units (a challenge's limit)."""
        if self.kind == "mlp":
            return sum(layer.units for layer in self.hidden)
        return sum(getattr(layer, "filters", 0) + getattr(layer, "units", 0) for layer in self.layers)

    @property
    def depth(self) -> int:
        """Hidden layers with weights: an MLP's hidden layers; a CNN's conv and dense layers."""
        if self.kind == "mlp":
            return len(self.hidden)
        return sum(layer.type in ("conv", "dense") for layer in self.layers)


class ScheduleSpec(_Strict):
    """How the learning rate changes over the epochs (optax schedules; the rate changes once per epoch).

    The rate of epoch e is ``learning_rate`` times the schedule's factor at e: after ``warmup_epochs`` of
    linear warm-up from 0, constant; or multiplied by ``factor`` every ``every`` epochs (step); or smoothly by
    ``factor`` per ``every`` epochs down to ``floor`` (exponential); or along a half cosine from 1 to ``floor``
    over ``epochs`` epochs (cosine)."""

    kind: Literal["constant", "step", "exponential", "cosine"] = "constant"
    warmup_epochs: int = Field(0, ge=0, le=100_000, description="epochs of linear warm-up from 0 to the rate")
    every: int = Field(
        100, ge=1, le=1_000_000, description="step: epochs between drops; exponential: epochs per factor"
    )
    factor: float = Field(0.5, gt=0, lt=1, description="step, exponential: the rate is multiplied by this")
    epochs: int = Field(1000, ge=1, le=10_000_000, description="cosine: epochs from the full rate down to the floor")
    floor: float = Field(0.0, ge=0, le=1, description="exponential, cosine: the lowest rate, as a fraction of the rate")


class TrainingSpec(_Strict):
    algorithm: Literal["backprop", "perceptron"] = "backprop"
    loss: Literal["mse", "cross_entropy"] = "mse"
    optimizer: OptimizerName = "sgd"  # see GET /api/v1/optimizers
    learning_rate: float = Field(0.03, ge=1e-6, le=10)
    momentum: float = Field(0.9, ge=0, le=0.999, description="used by the momentum and nesterov optimizers")
    batch_size: int = Field(10, ge=1, le=500)
    regularization: Literal["none", "l1", "l2"] = "none"
    regularization_rate: float = Field(0.0, ge=0, le=10)
    dropout: float = Field(0.0, ge=0, le=0.9, description="probability of dropping a hidden unit")
    batch_norm: bool = False
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)


class StopSpec(_Strict):
    """When a playing (or REST-trained) session stops by itself; all null = it never does. Test-loss
    conditions are checked at least every ``stop_check_epochs`` epochs (server.sessions.stopping)."""

    at_epoch: int | None = Field(None, ge=1, le=1_000_000_000, description="pause when the session reaches this epoch")
    test_loss_below: float | None = Field(None, gt=0, le=1000, description="pause when the test loss falls below this")
    patience: int | None = Field(
        None,
        ge=1,
        le=10_000_000,
        description="early stopping: pause when the test loss has not improved for this many epochs",
    )
    restore_best: bool = Field(False, description="with patience: go back to the weights of the best test loss")

    @property
    def watches_test_loss(self) -> bool:
        return self.test_loss_below is not None or self.patience is not None


class ExperimentSpec(_Strict):
    """A whole experiment: data, inputs, network, training, pace."""

    problem: Literal["classification", "regression"] = "classification"
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    features: list[FeatureName] = Field(default_factory=lambda: ["x1", "x2"], min_length=1, max_length=7)
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    speed: float | None = Field(
        None, gt=0, le=1_000_000, description="max epochs per second while playing; null = as fast as possible"
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the weight initialisation and dropout")
    stop: StopSpec = Field(default_factory=StopSpec)

    @field_validator("features")
    @classmethod
    def _unique_features(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("each feature may appear only once")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        if self.problem == "classification":
            for name in ("points", "added"):
                bad = [p[2] for p in getattr(self.dataset, name) or [] if p[2] not in (0, 1, 2)]
                if bad:
                    message = f"class labels are 0, 1 (or 2 for three classes); got {bad[0]:g}"
                    raise _error(("dataset", name), message, bad[0])
        checks = {"mlp": ExperimentSpec._check_mlp, "cnn": ExperimentSpec._check_cnn}  # by network kind
        return checks[self.network.kind](self)

    def _check_mlp(self) -> ExperimentSpec:
        """2-D points (generated, or the user's own) whose labels fit the problem and the dataset."""
        name = self.dataset.name
        if name in IMAGE_DATASETS:
            raise _error(("network", "kind"), f"'{name}' holds images: use network.kind 'cnn'", self.network.kind)
        if self.dataset.augment.active:
            raise _error(("dataset", "augment"), "augmentation is for the image datasets (a CNN)", None)
        labels = [p[2] for p in self.dataset.added]
        if self.dataset.name == "custom":
            if len(self.dataset.points or []) < 2:
                raise _error(("dataset", "points"), "a 'custom' dataset needs at least 2 points [x1, x2, label]", None)
            return self._check_split()._check_training()
        info = DATASETS[self.dataset.name]
        if labels and self.problem == "classification" and max(labels) >= info.n_classes:
            raise _error(
                ("dataset", "added"),
                f"'{info.name}' has {info.n_classes} classes (0-{info.n_classes - 1})",
                max(labels),
            )
        if info.problem != self.problem:
            raise _error(
                ("dataset", "name"),
                f"dataset '{self.dataset.name}' is a {info.problem} dataset but problem is '{self.problem}'",
                self.dataset.name,
            )
        return self._check_training()

    def _check_split(self) -> ExperimentSpec:
        split, points = self.dataset.split, self.dataset.points or []
        if split is None:
            return self
        if len(split) != len(points):
            message = f"split names the part of each point: {len(points)} points but {len(split)} parts"
            raise _error(("dataset", "split"), message, len(split))
        for part in ("train", "test"):
            if part not in split:
                raise _error(("dataset", "split"), f"no point is marked '{part}': mark at least one", part)
        return self

    def _check_cnn(self) -> ExperimentSpec:
        """Image data with a CNN, a classification problem, and layers whose geometry fits the images."""
        name = self.dataset.name
        if name not in IMAGE_DATASETS:
            images = ", ".join(IMAGE_DATASETS)
            raise _error(("dataset", "name"), f"a CNN learns from images: choose one of {images}", name)
        info = IMAGE_DATASETS[name]
        if self.problem != "classification":
            raise _error(("problem",), "the image sets are classification problems", self.problem)
        if self.dataset.n > info.max_n:
            raise _error(("dataset", "n"), f"'{name}' has at most {info.max_n} images", self.dataset.n)
        if self.dataset.image_size is not None and not info.sizes:
            side = info.shape[0]
            raise _error(("dataset", "image_size"), f"'{name}' images are {side}×{side}: leave image_size null", side)
        if self.training.algorithm != "backprop":
            raise _error(("training", "algorithm"), "a CNN trains by backpropagation", self.training.algorithm)
        if self.dataset.added or self.dataset.points or self.dataset.split:
            raise _error(("dataset", "added"), "points are for the 2-D datasets, not images", None)
        layers = cnn_layers(self)
        for i in range(len(layers)):  # the first layer whose input it cannot take
            try:
                cnn.output_shapes(self.image_shape, layers[: i + 1])
            except cnn.GeometryError as exc:
                raise _error(("network", "layers", i), str(exc), self.network.layers[i].type) from None
        return self

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the spec's images."""
        info = IMAGE_DATASETS[self.dataset.name]
        side = info.side(self.dataset.image_size)
        return side, side, info.shape[2]

    def _check_training(self) -> ExperimentSpec:
        if self.problem == "regression" and self.training.loss == "cross_entropy":
            raise _error(("training", "loss"), "cross_entropy needs a classification problem", "cross_entropy")
        if self.training.algorithm == "perceptron":
            if self.network.hidden:
                raise _error(
                    ("network", "hidden"),
                    "the perceptron rule trains a single layer: remove the hidden layers",
                    len(self.network.hidden),
                )
            if self.problem != "classification" or self.n_classes != 2:
                raise _error(
                    ("training", "algorithm"),
                    "the perceptron rule needs a two-class classification dataset",
                    "perceptron",
                )
        return self

    @property
    def n_classes(self) -> int:
        """2 or 3 for classification (a custom set has as many as its labels), 0 for regression."""
        if self.problem == "regression":
            return 0
        if self.dataset.name == "custom":
            return 3 if any(p[2] == 2 for p in self.dataset.points or []) else 2
        if self.dataset.name in IMAGE_DATASETS:
            return IMAGE_DATASETS[self.dataset.name].n_classes
        return DATASETS[self.dataset.name].n_classes


def cnn_layers(spec: ExperimentSpec) -> tuple[cnn.Layer, ...]:
    """The spec's CNN layers as the engine's layer specs."""
    return tuple(cnn.layer_from_dict(layer.model_dump(exclude_none=True)) for layer in spec.network.layers)


def merge_patch(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge of a partial spec: objects merge key by key, anything else (lists too) is replaced."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_patch(spec: ExperimentSpec, patch: dict[str, Any]) -> ExperimentSpec:
    """The spec after a partial update; raises ValidationError naming the offending field."""
    return ExperimentSpec.model_validate(merge_patch(spec.model_dump(), patch))


def value_at(fields: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (``training.learning_rate``) of a dumped spec (``spec.model_dump()``);
    KeyError naming the path where it names no field."""
    node: Any = fields
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node
