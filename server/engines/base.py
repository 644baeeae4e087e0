"""The engine interface: what turns an ExperimentSpec into numbers, for one kind of network.

An engine is stateless (the sessions keep every state); ``server.engines.engine_for`` picks one from a spec,
and nothing above the engines asks which kind of network a spec describes. The helpers below are shared by
the MLP and CNN engines: the one divergence policy, metrics without NaN, a frame's diagnosis in words.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jax
import numpy as np

from server.config import Settings
from server.engines import diagnosis
from server.ml import health
from server.ml.probes import Config
from server.ml.train import Hyper, Schedule, TrainState
from server.spec import ExperimentSpec

METRICS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")
FIT_METRICS = ("train_r2", "test_r2", "train_rmse", "test_rmse")  # regression only


@dataclass(frozen=True)
class Advance:
    """What one training advance did."""

    state: TrainState
    epochs: int  # completed epochs whose weights are finite
    diverged: bool
    # the metrics recorded on the way, made by the training program itself (MLP): rows of
    # train.RECORD_COLUMNS, epochs counted from the advance's start; None when the engine records none
    records: np.ndarray | None = None
    points: np.ndarray | None = None  # the weights, flattened, of each record (a trajectory point), or None


class Data(Protocol):
    """A spec's data as the engines keep it (``mlp.Data``, ``cnn.ImageData``): what every engine has."""

    x_train: jax.Array
    y_train: jax.Array
    x_test: jax.Array
    y_test: jax.Array
    labels_train: np.ndarray
    labels_test: np.ndarray

    @property
    def steps_per_epoch(self) -> int: ...

    @property
    def program_key(self) -> Hashable: ...  # what compiled training code depends on besides the config


View = Callable[..., dict[str, Any]]


class Engine(Protocol):
    """One kind of network (MLP, CNN): from a spec to data, state, training, metrics, frames, views, predictions."""

    name: str  # "mlp" | "cnn": the key of the tables by name above the engines (pages, panels)
    input_field: str  # what POST .../predict takes: "inputs" (points) or "images"
    fix_keys: tuple[str, ...]  # the spec keys a diagnosis's fixes may use
    views: Mapping[str, View]  # the engine's own views by name: fn(cfg, state, data, **params) -> dict

    def check_limits(self, spec: ExperimentSpec, settings: Settings) -> None: ...
    def config_for(self, spec: ExperimentSpec) -> Config: ...
    def hyper_for(self, spec: ExperimentSpec) -> Hyper: ...
    def build_data(self, spec: ExperimentSpec, data_dir: Path, download: bool) -> Any: ...
    def data_key(self, spec: ExperimentSpec) -> Hashable: ...
    def init_train_state(self, spec: ExperimentSpec, cfg: Any) -> TrainState: ...
    def carry_over(
        self, old_spec: ExperimentSpec, old_cfg: Any, old: TrainState, spec: ExperimentSpec, cfg: Any
    ) -> tuple[TrainState, dict[str, Any]]: ...
    def advance(
        self, cfg: Any, state: TrainState, data: Any, h: Hyper, epochs: int, start: int = 0, every: int | None = None
    ) -> Advance: ...

    # several sessions of one network on one dataset at once (a class): one compiled call where the engine can
    # (``cohorts``), each answer as ``advance`` gives it, or None for one that diverged (replayed alone)
    cohorts: bool

    def advance_many(
        self, cfg: Any, states: Sequence[TrainState], data: Any, hs: Sequence[Hyper], epochs: int, starts: Sequence[int]
    ) -> list[Advance | None]: ...
    def frame_arrays_many(
        self, cfg: Any, states: Sequence[TrainState], data: Any, hs: Sequence[Hyper]
    ) -> list[dict[str, Any]]: ...
    def warm_many(self, cfg: Any, state: TrainState, data: Any, h: Hyper, size: int) -> None: ...
    def warm(self, cfg: Any, state: TrainState, data: Any, h: Hyper) -> None: ...
    def metrics(self, cfg: Any, state: TrainState, data: Any, problem: str) -> dict[str, float | None]: ...
    def frame_arrays(self, cfg: Any, state: TrainState, data: Any, h: Hyper) -> dict[str, Any]: ...
    def frame(
        self, spec: ExperimentSpec, cfg: Any, state: TrainState, data: Any, arrays: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]: ...
    def view_set(self, cfg: Any, data: Any) -> tuple[jax.Array, jax.Array]: ...
    def predict(self, cfg: Any, state: TrainState, spec: ExperimentSpec, inputs: np.ndarray) -> np.ndarray: ...
    def notes_for(self, spec: ExperimentSpec) -> list[str]: ...
    def architecture(self, spec: ExperimentSpec, cfg: Any, state: TrainState, data: Any) -> dict[str, Any]: ...
    def data_public(self, spec: ExperimentSpec, data: Any) -> dict[str, Any]: ...
    def weight_inputs(self, spec: ExperimentSpec) -> list[str]: ...
    def activation_patch(self, spec: ExperimentSpec, activation: str) -> dict[str, Any]: ...
    def thumbnail(self, spec: ExperimentSpec, cfg: Any, state: TrainState) -> np.ndarray: ...
    # sweeps (server.ml.sweep): a group's data and block size; each configuration's small decision map or None
    def sweep_data(self, cfg: Any, data: Any) -> tuple[Any, int]: ...
    def sweep_maps(self, cfg: Any, states: TrainState, data: list[Any], shared: bool) -> np.ndarray | None: ...


Train = Callable[[int], tuple[int, TrainState, bool, Any]]  # epochs → (epochs run, state, all finite, records)


def advance_with(train: Train, state: TrainState, epochs: int) -> Advance:
    """Train ``epochs`` epochs in one compiled call (``train``). On divergence (non-finite weights or loss)
    the one policy of every engine: the last state whose weights and losses are finite, found by bisection
    over replays (training is deterministic, so any earlier epoch can be replayed; weights can stay finite
    for a few epochs after the loss has overflowed). Rare, off the hot path."""
    done, new, ok, records = train(epochs)
    rows, points = kept_records(records, done)
    if ok:
        return Advance(new, done, False, rows, points)
    lo, hi, best = 0, done - 1, state  # epoch lo is healthy (the start state was); look in (lo, hi]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        _, found, fine, _ = train(mid)
        if fine:
            lo, best = mid, found
        else:
            hi = mid - 1
    rows, points = kept_records(records, lo)
    return Advance(best, lo, True, rows, points)


def kept_records(records: Any, done: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A training program's records on the host — rows of train.RECORD_COLUMNS and, when it made them,
    the weights of each — keeping the used rows of the first ``done`` epochs."""
    if records is None:
        return None, None
    rows, points = records
    rows = np.asarray(rows, np.float64)
    keep = (rows[:, 0] >= 1) & (rows[:, 0] <= done)
    points = np.asarray(points)
    return rows[keep], points[keep] if len(points) else None


def schedule_for(spec: ExperimentSpec) -> Schedule:
    """The spec's learning-rate schedule as the training programs take it (static)."""
    return Schedule(**spec.training.schedule.model_dump())


def finite_or_none(v: float) -> float | None:
    return float(f"{v:.7g}") if np.isfinite(v) else None  # float32 precision, no noise digits


def sanitize(values: Mapping[str, Any], problem: str) -> dict[str, float | None]:
    """The metrics as JSON numbers (None where not finite; accuracies None for regression; R² and RMSE
    None for classification).

    A regression's loss is ½·mean squared error (TF Playground's), so RMSE = √(2·loss) and
    R² = 1 − 2·loss / var(y), with var(y) given as ``train_y_var`` / ``test_y_var`` among the values."""
    out = {k: None if values.get(k) is None else finite_or_none(float(values[k])) for k in METRICS}
    fit: dict[str, float | None] = dict.fromkeys(FIT_METRICS)
    if problem == "regression":
        out["train_accuracy"] = out["test_accuracy"] = None
        for part in ("train", "test"):
            loss, var = out[f"{part}_loss"], values.get(f"{part}_y_var")
            if loss is None:
                continue
            fit[f"{part}_rmse"] = finite_or_none(float(np.sqrt(2.0 * loss)))
            if var is not None and float(var) > 0:
                fit[f"{part}_r2"] = finite_or_none(1.0 - 2.0 * loss / float(var))
    return out | fit


def findings(engine: Engine, spec: ExperimentSpec, cfg: Any, numbers: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Gradient health in words with fixes (what GET .../gradients answers)."""
    found = health.diagnose(
        numbers, cfg.activation_names(), spec.network.init, spec.training.learning_rate, fix_keys=engine.fix_keys
    )
    return diagnosis.in_words(found)


def frame_diagnosis(engine: Engine, spec: ExperimentSpec, cfg: Any, numbers: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A frame's diagnosis in words (the fixes come with GET .../gradients)."""
    return [{k: d[k] for k in ("layer", "kind", "message")} for d in findings(engine, spec, cfg, numbers)]


def weight_arrays(params: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Every weight of a frame, ``{name}{layer}`` (w0, b0, ..., gamma1, ...) as float32."""
    return {f"{name}{i}": np.asarray(v, np.float32) for i, layer in enumerate(params) for name, v in layer.items()}


# The page's colours (static/js/colors.js), for pictures made on the server (thumbnails).
NEG, MID, POS = np.array([245, 147, 34.0]), np.array([232, 234, 235.0]), np.array([8, 119, 189.0])
CLASS_COLORS = np.stack([NEG, POS, np.array([123, 50, 148.0])])
THUMBNAIL = 96  # pixels a side


def diverging_rgb(v: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] (clipped) → rgb uint8 (..., 3): orange −1, light grey 0, blue +1."""
    t = np.clip(np.nan_to_num(np.asarray(v, np.float64)), -1.0, 1.0)[..., None]
    rgb: np.ndarray = np.where(t < 0, MID + (NEG - MID) * -t, MID + (POS - MID) * t)
    return np.round(rgb).astype(np.uint8)
