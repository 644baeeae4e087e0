"""The spec's field metadata for the page's forms: each input's bounds and default are read from the
ExperimentSpec (pydantic), so the page can never disagree with the API."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import annotated_types
from markupsafe import Markup
from pydantic import BaseModel

from server.spec import DropoutLayerSpec, ExperimentSpec

MODELS: dict[str, type[BaseModel]] = {"spec": ExperimentSpec, "dropout": DropoutLayerSpec}


@dataclass(frozen=True)
class FieldInfo:
    minimum: float | None
    maximum: float | None
    default: Any

    def attrs(self) -> Markup:
        """``min="…" max="…"`` for an <input>."""
        parts = [f'{k}="{_exact(v)}"' for k, v in (("min", self.minimum), ("max", self.maximum)) if v is not None]
        return Markup(" ".join(parts))

    def span(self) -> str:
        """The range in words for a label or title: ``"0–0.999"``, ``"1–1,000,000"``, ``"at least 1"``."""
        lo, hi = (None if v is None else _readable(v) for v in (self.minimum, self.maximum))
        if lo is not None and hi is not None:
            return f"{lo}–{hi}"
        return f"at least {lo}" if lo is not None else f"at most {hi}"


def _exact(v: float) -> str:
    """A bound as an HTML attribute, exact (2147483647, not 2.14748e+09)."""
    return str(int(v)) if v.is_integer() else f"{v:g}"


def _readable(v: float) -> str:
    """A bound for people: thousands separated, small numbers without an exponent."""
    if v.is_integer():
        return f"{int(v):,}"
    return f"{v:.10f}".rstrip("0") if abs(v) < 1e-4 else f"{v:g}"


@functools.cache
def spec_field(path: str, model: str = "spec") -> FieldInfo:
    """``"training.batch_size"`` → its bounds (ge/gt, le/lt) and default, from the model's metadata."""
    cls: type[BaseModel] = MODELS[model]
    *parents, name = path.split(".")
    for part in parents:
        annotation = cls.model_fields[part].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel), path
        cls = annotation
    info = cls.model_fields[name]
    lo = hi = None
    for m in info.metadata:
        bound: Any  # the spec's bounds are numbers; annotated_types types them as anything comparable
        if isinstance(m, annotated_types.Ge | annotated_types.Gt):
            bound = m.ge if isinstance(m, annotated_types.Ge) else m.gt
            lo = float(bound)
        if isinstance(m, annotated_types.Le | annotated_types.Lt):
            bound = m.le if isinstance(m, annotated_types.Le) else m.lt
            hi = float(bound)
    return FieldInfo(lo, hi, info.get_default(call_default_factory=True))
