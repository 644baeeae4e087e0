"""Request and response bodies of the REST API (split by direction: ...In for requests, ...Public out)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from server.spec import ExperimentSpec, OptimizerName


class Metrics(BaseModel):
    train_loss: float | None = None
    test_loss: float | None = None
    train_accuracy: float | None = None  # null for regression
    test_accuracy: float | None = None
    train_r2: float | None = Field(None, description="regression: 1 − squared error / variance of the targets")
    test_r2: float | None = None
    train_rmse: float | None = Field(None, description="regression: root mean squared error")
    test_rmse: float | None = None


class OutputPublic(BaseModel):
    kind: str  # tanh | sigmoid | softmax | linear | sign
    units: int
    description: str


class LayerPublic(BaseModel):
    units: int
    activation: str


class ArchitecturePublic(BaseModel):
    inputs: list[str]
    hidden: list[LayerPublic]
    layers: list[dict[str, Any]] | None = Field(None, description="CNN: each layer with its output_shape")
    output: OutputPublic
    parameters: int
    steps_per_epoch: int
    n_train: int
    n_test: int


class SessionPublic(BaseModel):
    """A session's state: what GET answers and what every mutation answers with."""

    id: str
    spec: ExperimentSpec
    status: Literal["paused", "running", "diverged"]
    epoch: int
    step: int
    spec_version: int
    metrics: Metrics
    architecture: ArchitecturePublic
    notes: list[str] = Field(description="plain-words remarks, e.g. activations with zero gradient")
    learning_rate_now: float = Field(description="the learning rate of the next epoch (the schedule applied)")
    stopped: str | None = Field(None, description="why the session stopped by itself (a stop condition), if it did")


class SessionCreated(SessionPublic):
    token: str = Field(description="send as 'Authorization: Bearer <token>' to change the session")


class LayerChange(BaseModel):
    layer: int
    shape: list[int]
    kept: int
    initialized: int


class WeightsReport(BaseModel):
    kept: int
    initialized: int
    layers: list[LayerChange] | None = None


class ChangeReport(BaseModel):
    spec_version: int
    reset: bool
    data: Literal["kept", "regenerated"]
    weights: WeightsReport
    optimizer_state: Literal["kept", "reinitialized"]
    applies_at_reset: list[str]


class SessionPatched(SessionPublic):
    changes: ChangeReport


class TrainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epochs: int = Field(ge=1, description="epochs to train now (at most the server's max_train_epochs)")


class PredictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: list[tuple[float, float]] | None = Field(
        None, min_length=1, description="MLP sessions: points [x1, x2] in the input plane"
    )
    images: list[list[list[float]]] | None = Field(
        None, min_length=1, max_length=256, description="CNN sessions: grey images [row][column], pixels 0-1"
    )
    feature_maps: bool = Field(
        False, description="CNN sessions: also every layer's feature maps of each image (maps{i}, map_ranges{i})"
    )


class PredictPublic(BaseModel):
    outputs: list[Any] = Field(
        description="±1-scale output (classification), value (regression), or class probabilities"
    )
    classes: list[int] | None = Field(None, description="predicted class index per input (classification)")
    feature_maps: dict[str, Any] | None = Field(
        None,
        description="when asked: per spatial layer i, maps{i} (n, C, H, W) bytes 0-255, each map from its minimum "
        "to its maximum, and map_ranges{i} (n, C, 2) those values — as in a frame (docs/frames.md), list-encoded",
    )


class LayerWeights(BaseModel):
    """One layer's numbers: MLP w (in, out); CNN conv w (k, k, C_in, F), dense w (in, out); layers without
    parameters (pool, flatten, dropout) are empty."""

    model_config = ConfigDict(extra="forbid")
    w: list[list[float]] | list[list[list[list[float]]]] | None = None
    b: list[float] | None = None
    gamma: list[float] | None = None
    beta: list[float] | None = None


class WeightsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    layers: list[LayerWeights]


class WeightsPublic(BaseModel):
    epoch: int
    spec_version: int
    inputs: list[str]
    layers: list[LayerWeights]


class HistoryPublic(BaseModel):
    records: list[dict[str, Any]]


class ExportPublic(BaseModel):
    spec: ExperimentSpec
    epoch: int
    weights: list[LayerWeights]


class RaceRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    optimizer: OptimizerName = Field(description="one of GET /api/v1/optimizers")
    learning_rate: float = Field(gt=0, le=10)
    momentum: float | None = Field(None, ge=0, lt=1, description="for momentum / nesterov (default: the session's)")


class InterpolationIn(BaseModel):
    """Two weight sets (as GET .../weights gives them: e.g. saved from two moments or two runs) and the line
    between them; a missing end is the session's initial (start) or current (end) weights."""

    model_config = ConfigDict(extra="forbid")
    start: WeightsIn | None = Field(None, description="the weights at t = 0 (default: the initial weights)")
    end: WeightsIn | None = Field(None, description="the weights at t = 1 (default: the current weights)")
    steps: int = Field(51, ge=3, le=201, description="points along the line")


class RaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runs: list[RaceRun] = Field(min_length=2, max_length=6, description="the contestants, 2 to 6")
    epochs: int = Field(200, ge=1, le=5000, description="epochs each run trains")
    resolution: int = Field(41, ge=11, le=101, description="cells per side of the shared plane's slice")
    center: int | None = Field(
        None, ge=0, description="centre the plane on this run's final weights (default: the runs' mean)"
    )


# ------------------------------------------------------------------------------------------ saved work


class ExperimentIn(BaseModel):
    """Save a live session (send the session's token as a bearer token)."""

    model_config = ConfigDict(extra="forbid")
    session_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200, description="shown in the list; searched by q")
    description: str = Field("", max_length=5000)

    @field_validator("name")
    @classmethod
    def _named(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a name needs at least one character that is not a space")
        return v.strip()


class ExperimentChange(BaseModel):
    """Rename or describe a saved experiment (send its owner_token as a bearer token)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)

    @field_validator("name")
    @classmethod
    def _named(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("a name needs at least one character that is not a space")
        return None if v is None else v.strip()


class ExperimentPublic(BaseModel):
    id: str
    slug: str = Field(description="its share link is /e/{slug}")
    name: str
    description: str
    kind: Literal["mlp", "cnn"]
    spec: dict[str, Any] = Field(description="the ExperimentSpec it was saved with")
    epoch: int
    metrics: dict[str, float | None]
    parent_id: str | None = Field(description="the saved experiment it was forked from, if any")
    created_at: datetime
    updated_at: datetime
    thumbnail_url: str
    share_url: str


class ExperimentCreated(ExperimentPublic):
    owner_token: str = Field(description="send as 'Authorization: Bearer <owner_token>' to rename or delete it")


class ExperimentList(BaseModel):
    items: list[ExperimentPublic]
    total: int = Field(description="how many match q")
    limit: int
    offset: int


class CheckpointPublic(BaseModel):
    epoch: int
    step: int
    spec_version: int
    metrics: Metrics


class CheckpointsPublic(BaseModel):
    epoch: int = Field(description="the session's epoch now")
    limit: int = Field(description="at most this many are kept (thinned evenly over the run)")
    checkpoints: list[CheckpointPublic]


class LessonText(BaseModel):
    todo: str = Field(description="what to do")
    watch: str = Field(description="what to watch")
    question: str = Field(description="one question to answer")
    why: str = Field(description="the explanation the page hides behind 'show why'")


class LessonVariant(BaseModel):
    label: str = Field(description="the button's words")
    patch: dict[str, Any] = Field(description="partial spec merged into the lesson's spec")
    reset: bool = Field(description="fresh weights after applying it")


class LessonPublic(BaseModel):
    slug: str = Field(description="its page: /lessons/{slug}")
    title: str
    topic: str = Field(description="the lecture topic it comes from")
    kind: Literal["mlp", "cnn"]
    status: Literal["ready", "coming"] = Field(description="'coming': listed, not yet openable")
    spec: dict[str, Any] = Field(description="partial ExperimentSpec: defaults fill the rest")
    text: LessonText
    panels: list[str] = Field(description="the panels the page outlines")
    variants: list[LessonVariant]
    sweep: dict[str, Any] | None = Field(None, description="a SweepSpec the lesson runs (POST it to /api/v1/sweeps)")


class LessonList(BaseModel):
    lessons: list[LessonPublic] = Field(description="in the lectures' order")


# ----------------------------------------------------------------------------------------------- sweeps


class SweepFinal(BaseModel):
    train_loss: float | None
    test_loss: float | None
    train_accuracy: float | None
    test_accuracy: float | None


class SweepRecordRow(BaseModel):
    epoch: float
    train_loss: float | None
    test_loss: float | None
    train_accuracy: float | None
    test_accuracy: float | None


class SweepConfigurationPublic(BaseModel):
    index: int
    params: dict[str, Any] = Field(description="the swept values, by their dotted paths as given")
    status: Literal["queued", "running", "done", "diverged", "stopped", "cancelled"]
    group: int = Field(description="the compiled program (architecture group) it trains in")
    epochs: int = Field(description="epochs trained with finite weights and losses")
    final: SweepFinal | None
    history: list[SweepRecordRow] | None = None


class SweepProgress(BaseModel):
    done: int = Field(description="configuration·epochs trained (stopped and diverged ones count whole)")
    total: int
    fraction: float
    eta_seconds: float | None
    configurations: dict[str, int] = Field(description="how many configurations are in each status")
    groups_running: int = Field(0, description="architecture groups training now (several at once on Ray)")
    groups_done: int = Field(0, description="architecture groups finished")


class SweepPublic(BaseModel):
    id: str
    name: str
    status: Literal["queued", "running", "done", "cancelled", "failed", "interrupted"]
    error: str | None
    total: int = Field(description="configurations")
    epochs: int
    record_every: int
    groups: int
    progress: SweepProgress
    swept: list[str]
    request: dict[str, Any]
    configurations: list[SweepConfigurationPublic]


class SweepCreated(BaseModel):
    id: str
    token: str = Field(description="send as 'Authorization: Bearer <token>' to cancel or delete the sweep")
    total: int
    status: str
    progress: SweepProgress
    url: str
    stream: str


class SweepMaps(BaseModel):
    resolution: int = Field(description="cells per side; bytes row by row, the top row first")
    kind: Literal["values", "classes"] = Field(
        description="values: a byte 0-255 is the output on the ±1 scale; classes: the most probable class"
    )
    items: dict[str, str] = Field(description="configuration index → base64 bytes")


class SweepListItem(BaseModel):
    id: str
    name: str
    status: str
    total: int = Field(description="configurations")
    epochs: int
    created_at: datetime | None
    updated_at: datetime | None
    url: str


class SweepList(BaseModel):
    items: list[SweepListItem]
    total: int
    limit: int
    offset: int
