"""Answers of the views and the catalog (the session's own shapes are in server/schemas.py): what /docs shows.

Arrays of frames and CNN views travel as ``EncodedArray`` (docs/frames.md): base64 of the little-endian
bytes, or nested lists with ``?encoding=list``. Numbers that are not finite are null ("off scale").
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.schemas import Metrics

Number = float | None  # null where not finite


class EncodedArray(BaseModel):
    dtype: str = Field(description="numpy dtype: uint8, int32, float32")
    shape: list[int]
    encoding: Literal["base64", "list"]
    data: Any = Field(description="base64 of the little-endian bytes (C order), or nested lists")


class Finding(BaseModel):
    layer: int = Field(description="index into the params (layers numbered from 1 in the message)")
    kind: Literal["exploding", "vanishing", "dead_relu", "saturated"]
    message: str


class FindingWithFixes(Finding):
    fixes: list[dict[str, Any]] = Field(description="alternative spec patches, e.g. {'activation': 'relu'}")


class FramePublic(BaseModel):
    """A frame (docs/frames.md): these fields, the kind's header fields, and one EncodedArray per array
    (MLP: output, neurons, grad_norms, w{i}, b{i}, ...; CNN: examples, maps{i}, confusion, ...)."""

    model_config = ConfigDict(extra="allow")
    type: Literal["frame"]
    id: str
    epoch: int
    step: int
    status: Literal["paused", "running", "diverged"]
    spec_version: int
    metrics: Metrics
    kind: Literal["mlp", "cnn"]
    diagnosis: list[Finding]


class Examples(BaseModel):
    points: list[list[float]] | None = Field(None, description="MLP: [x1, x2] of each example")
    labels: list[int] | list[float] = Field(description="class index, or the value for regression")


class DataPublic(BaseModel):
    spec_version: int
    problem: Literal["classification", "regression"]
    classes: int
    class_names: list[str] | None = Field(None, description="CNN: the image set's class names")
    image_shape: list[int] | None = Field(None, description="CNN: (H, W, C)")
    train: Examples
    test: Examples


class ActmaxPublic(BaseModel):
    epoch: int
    spec_version: int
    layer: int
    steps: int
    images: EncodedArray = Field(description="(filters, C, H, W) bytes 0..255: what each filter wants to see")
    start: EncodedArray = Field(description="(filters,) mean activation on its image before the climb")
    end: EncodedArray = Field(description="(filters,) ... and after")


class SaliencyPublic(BaseModel):
    epoch: int
    spec_version: int
    examples: list[int]
    maps: EncodedArray = Field(description="(n, H, W) |∂ logit / ∂ pixel| scaled to 0..255 per image")


class PoolPublic(BaseModel):
    model_config = ConfigDict(extra="allow")
    kind: Literal["max", "avg"]
    size: int
    stride: int
    windows: list[dict[str, Any]]


class ConvolutionPublic(BaseModel):
    """One filter sliding over a patch of a test image: every product, sum and output (GET .../convolution)."""

    model_config = ConfigDict(extra="allow")
    epoch: int
    spec_version: int
    example: int
    label: int
    image: list[list[float]]
    layer: int
    filter: int
    kernel: int
    stride: int
    padding: Literal["same", "valid"]
    activation: str
    row: int
    col: int
    map_shape: list[int]
    input: list[list[list[float]]]
    pads: list[int]
    patch_origin: list[int]
    patch: list[list[list[float]]]
    padding_cells: list[list[bool]]
    weights: list[list[list[float]]]
    bias: float
    products: list[list[list[list[list[float]]]]]
    sums: list[list[float]]
    outputs: list[list[float]]
    feature_map: list[list[float]]
    pool: PoolPublic | None


class TrajectoryPublic(BaseModel):
    epochs: list[int]
    alpha: list[Number]
    beta: list[Number]
    true_loss: list[Number]
    plane_loss: list[Number] = Field(description="the slice's loss at each point's projection")
    off_plane: list[Number] = Field(description="each point's distance off the plane")


class LandscapePublic(BaseModel):
    epoch: int
    spec_version: int
    directions: Literal["random", "pca", "init"]
    resolution: int
    span: float
    coordinates: list[Number]
    loss: list[list[Number]] = Field(description="rows β from −span up, columns α; null = off scale")
    loss_min: Number
    loss_max: Number
    off_scale: int
    center_loss: Number
    explained_variance: list[Number] | None
    examples: int = Field(description="training examples the loss is evaluated on")
    trajectory: TrajectoryPublic


class InterpolationPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    epoch: int
    from_: Literal["initial", "given"] = Field(alias="from")
    to: Literal["current", "given"]
    from_epoch: int | None
    t: list[Number]
    loss: list[Number]
    examples: int


class LayerHealth(BaseModel):
    layer: int
    units: int
    activation: str | None
    grad_norm: Number
    weight_norm: Number
    update_ratio: Number
    dead_fraction: Number
    saturated_fraction: Number
    nonfinite_grads: int
    nonfinite_params: int


class GradientsPublic(BaseModel):
    epoch: int
    spec_version: int
    layers: list[LayerHealth]
    diagnosis: list[FindingWithFixes]
    examples: int


class SharpnessPoint(BaseModel):
    epoch: int
    top_eigenvalue: Number


class SharpnessPublic(BaseModel):
    epoch: int
    top_eigenvalue: Number
    stability_threshold: float = Field(description="2 / learning rate")
    iters: int
    examples: int
    history: list[SharpnessPoint]


class RaceCurve(BaseModel):
    epoch: list[int]
    train_loss: list[Number]


class RaceRunPublic(BaseModel):
    optimizer: str
    learning_rate: float
    momentum: float | None = None
    label: str
    alpha: list[Number]
    beta: list[Number]
    true_loss: list[Number]
    plane_loss: list[Number]
    off_plane: list[Number]
    curve: RaceCurve


class RacePublic(BaseModel):
    from_epoch: int
    epochs: int
    resolution: int
    span: float
    coordinates: list[Number]
    loss: list[list[Number]]
    explained_variance: list[Number]
    centred_on: Literal["mean"] | int
    runs: list[RaceRunPublic]
    notes: list[str]


# ------------------------------------------------------------------------------------------ catalog


class Health(BaseModel):
    status: Literal["ok"]


class DatasetInfo(BaseModel):
    name: str
    problem: Literal["classification", "regression"]
    classes: int
    description: str


class FeatureInfo(BaseModel):
    name: str
    label: str


class DatasetsPublic(BaseModel):
    datasets: list[DatasetInfo]
    features: list[FeatureInfo]


class ActivationInfo(BaseModel):
    name: str
    formula: str
    range: list[float | None] = Field(description="[low, high]; null = unbounded")
    zero_gradient: bool


class ActivationsPublic(BaseModel):
    activations: list[ActivationInfo]
    outputs: dict[str, str]
    inits: list[str]


class OptimizerInfo(BaseModel):
    name: str
    uses: list[str] = Field(description="the spec's hyperparameters it reads")
    description: str


class OptimizersPublic(BaseModel):
    optimizers: list[OptimizerInfo]


class PresetInfo(BaseModel):
    name: str
    title: str
    description: str
    spec: dict[str, Any] = Field(description="a partial ExperimentSpec: POST it to /api/v1/sessions")


class PresetsPublic(BaseModel):
    presets: list[PresetInfo]
