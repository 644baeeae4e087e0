"""What a class is told and asked (REST bodies of /api/v1/classes): opening a class, joining one, and a
challenge — a goal built from a metric, a comparison and a value, limits on the spec, and a time.

A challenge is met by a student's session whose spec keeps within the limits and whose metric compares
true against the value before the time is up (``Challenge.check``). "Test loss < 0.1 with at most 8
neurons on the spiral" is ``{"metric": "test_loss", "comparison": "<", "value": 0.1, "max_neurons": 8,
"dataset": "spiral", "minutes": 10}``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from server.spec import ExperimentSpec, value_at

MAX_NAME = 40  # a student's name, as typed
Metric = Literal["test_loss", "train_loss", "test_accuracy", "train_accuracy"]
Comparison = Literal["<", "<=", ">", ">="]
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
WORDS = {"test_loss": "test loss", "train_loss": "training loss", "test_accuracy": "test accuracy"} | {
    "train_accuracy": "training accuracy"
}


DEFAULT_FIELDS = ExperimentSpec().model_dump(mode="json")  # the paths a challenge may keep
# how a goal says the data it keeps (other fields: "path = value")
KEPT_WORDS = {"dataset.n": "{} points", "dataset.noise": "noise {}", "dataset.train_percent": "{} % training"} | {
    "dataset.seed": "data seed {}"
}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _shown(v: Any) -> str:
    return f"{v:g}" if _number(v) else str(v)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ClassOpen(_Strict):
    session_id: str = Field(max_length=64, description="the presenter's session (its token in Authorization)")
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""


StudentName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME)]


class ClassJoin(_Strict):
    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
    name: StudentName = Field(description=f"what the class sees: 1-{MAX_NAME} characters")


class ClassMode(_Strict):
    mode: Literal["following", "released"]


class Spotlight(_Strict):
    student_id: str | None = Field(
        None, max_length=32, description="whose session the class sees; null: the presenter's"
    )


class Panel(_Strict):
    panel: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")] = Field(
        description="the panel the presenter shows (e.g. landscape, network); followers open it too"
    )


class Challenge(_Strict):
    metric: Metric
    comparison: Comparison
    value: float = Field(ge=0, le=1e6)
    max_neurons: int | None = Field(
        None, ge=0, le=10_000, description="hidden neurons at most (CNN: filters and units)"
    )
    max_layers: int | None = Field(None, ge=0, le=20, description="hidden layers at most")
    dataset: str | None = Field(None, max_length=32, description="the dataset the goal must be met on")
    keep: dict[str, Any] = Field(
        default_factory=dict,
        max_length=16,
        description="any spec field a student's session must keep at this value, by its dotted path: "
        '{"dataset.noise": 30, "dataset.train_percent": 50} (no lowering the noise to win)',
    )
    minutes: float = Field(10.0, gt=0, le=24 * 60, description="time to meet it, from when it is set")

    @field_validator("keep")
    @classmethod
    def _spec_fields(cls, keep: dict[str, Any]) -> dict[str, Any]:
        fields = DEFAULT_FIELDS
        for path, value in keep.items():
            try:
                have = value_at(fields, path)
            except KeyError:
                raise ValueError(f"unknown field '{path}': a dotted path of the spec, e.g. dataset.noise") from None
            if isinstance(have, dict):
                raise ValueError(f"'{path}' is a group of fields: keep one of its fields, e.g. {path}.<name>")
            if isinstance(value, (dict, list)) and not isinstance(have, list):
                raise ValueError(f"'{path}' holds one value, not {type(value).__name__}")
        return keep

    def describe(self) -> str:
        """The goal in words: "test loss < 0.1 with at most 8 neurons on spiral"."""
        words = f"{WORDS[self.metric]} {self.comparison} {self.value:g}"
        if self.max_neurons is not None:
            words += f" with at most {self.max_neurons} neurons"
        if self.max_layers is not None:
            words += f"{' and' if self.max_neurons is not None else ' with'} at most {self.max_layers} hidden layers"
        if self.dataset is not None:
            words += f" on {self.dataset}"
        if self.keep:
            kept = (KEPT_WORDS.get(path, path + " = {}").format(_shown(v)) for path, v in self.keep.items())
            words += f" ({', '.join(kept)})"
        return words

    def broken_limits(self, spec: ExperimentSpec) -> list[str]:
        """The limits a spec breaks, in words (none: it may compete)."""
        broken = []
        if self.max_neurons is not None and spec.network.neurons > self.max_neurons:
            broken.append(f"{spec.network.neurons} neurons (at most {self.max_neurons})")
        if self.max_layers is not None and spec.network.depth > self.max_layers:
            broken.append(f"{spec.network.depth} hidden layers (at most {self.max_layers})")
        if self.dataset is not None and spec.dataset.name != self.dataset:
            broken.append(f"dataset {spec.dataset.name} (the goal is on {self.dataset})")
        fields = spec.model_dump(mode="json") if self.keep else {}
        for path, want in self.keep.items():
            have = value_at(fields, path)
            same = math.isclose(have, want, rel_tol=1e-9) if _number(have) and _number(want) else have == want
            if not same:
                broken.append(f"{path} {_shown(have)} (kept at {_shown(want)})")
        return broken

    def met(self, spec: ExperimentSpec, metrics: Mapping[str, float | None]) -> bool:
        value = metrics.get(self.metric)
        return value is not None and not self.broken_limits(spec) and COMPARE[self.comparison](value, self.value)

    def better(self, a: float, b: float) -> bool:
        """Whether metric value ``a`` beats ``b`` (lower losses, higher accuracies)."""
        return a < b if self.comparison in ("<", "<=") else a > b
