"""SweepSpec: a base ExperimentSpec and the fields to vary (REST bodies of POST /api/v1/sweeps, the page's
sweeps form), and its expansion into configurations — each a whole, validated ExperimentSpec.

A field is named by its dotted path in the spec (``training.learning_rate``, ``dataset.noise``, ``seed``,
``network.hidden``). ``grid`` gives each field a list of values and takes every combination (the last field
varying fastest); ``random`` draws ``count`` points from ranges or lists (its own seed: the same request
gives the same points); with both, every grid point is combined with every draw. ``network.hidden`` takes a
list of architectures: each a list of layers, or of unit counts (``[8, 8]``: the base's activation).
Anything a spec would refuse is refused here with the path that made it (``grid.training.learning_rate``).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from server.errors import Invalid
from server.spec import ExperimentSpec, merge_patch, value_at

MAX_VALUES = 1000  # values per grid field
MAX_RECORDS = 1000  # history rows per configuration (epochs / record_every)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Range(_Strict):
    """A numeric range a random search draws from: uniform, or uniform in log space (``log``)."""

    low: float
    high: float
    log: bool = Field(False, description="draw uniformly in log space (learning rates, regularization rates)")
    integer: bool = Field(False, description="round each draw to a whole number (units, seeds, batch sizes)")

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low <= self.high:
            raise ValueError("low must be at most high")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class RandomSearch(_Strict):
    count: int = Field(ge=1, le=100_000, description="how many points to draw")
    space: dict[str, Range | list[Any]] = Field(description="dotted path → a range, or a list to choose from")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the draws")


class EarlyStop(_Strict):
    """Successive halving (ASHA's rule): at each rung — ``min_epochs``, then ``reduction_factor`` times
    more, and so on — a configuration goes on only if it is among the best 1 / ``reduction_factor`` of
    every configuration that has reached the rung so far, by ``metric``; the others stop there."""

    kind: Literal["asha"] = "asha"
    metric: Literal["test_loss", "train_loss"] = "test_loss"
    min_epochs: int = Field(ge=1, le=1_000_000, description="epochs before the first rung")
    reduction_factor: float = Field(3.0, ge=1.5, le=100, description="keep the best 1/this at each rung")

    def rungs(self, epochs: int) -> list[int]:
        """The epochs at which configurations are compared (each before the last epoch)."""
        out: list[int] = []
        r = float(self.min_epochs)
        while round(r) < epochs:
            if not out or round(r) > out[-1]:
                out.append(round(r))
            r *= self.reduction_factor
        return out


class SweepSpec(_Strict):
    """Many configurations of one experiment, trained together (``POST /api/v1/sweeps``)."""

    name: str = Field("", max_length=200, description="a name to find the sweep by")
    base: ExperimentSpec = Field(default_factory=ExperimentSpec)
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="dotted path → the values to try")
    random: RandomSearch | None = None
    epochs: int = Field(500, ge=1, le=1_000_000, description="epochs each configuration trains")
    record_every: int | None = Field(None, ge=1, description="epochs between history records; null: about 50 records")
    early_stop: EarlyStop | None = None

    @property
    def every(self) -> int:
        return self.record_every or max(1, math.ceil(self.epochs / 50))

    def total(self) -> int:
        """How many configurations the sweep has (before expanding it)."""
        n = math.prod(len(v) for v in self.grid.values()) if self.grid else 1
        return n * (self.random.count if self.random is not None else 1)


class Configuration(BaseModel):
    """One point of a sweep: its swept values (by the paths as given) and the whole spec."""

    params: dict[str, Any]
    spec: ExperimentSpec


def _fields(spec: ExperimentSpec) -> dict[str, Any]:
    return spec.model_dump()


def _check_path(path: str, base: dict[str, Any], where: str) -> None:
    """422 unless ``path`` names a field of the spec (a leaf, or network.hidden / features)."""
    try:
        node = value_at(base, path)
    except KeyError:
        raise Invalid(
            f"unknown field '{path}': a dotted path of the spec, e.g. training.learning_rate", (where, path)
        ) from None
    if isinstance(node, dict):
        raise Invalid(f"'{path}' is a group of fields: sweep one of its fields, e.g. {path}.<name>", (where, path))


def _patch(path: str, value: Any, base: ExperimentSpec) -> dict[str, Any]:
    """The partial spec that sets ``path`` to ``value`` (architectures given as unit counts expanded)."""
    if path == "network.hidden" and isinstance(value, list):
        activation = base.network.hidden[0].activation if base.network.hidden else "tanh"
        value = [{"units": v, "activation": activation} if isinstance(v, int) else v for v in value]
    out: dict[str, Any] = {}
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``merge_patch`` without copying what the patch leaves alone (validation only reads the result)."""
    out = dict(base)
    for key, value in patch.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _draw(space: dict[str, Range | list[Any]], count: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    draws: list[dict[str, Any]] = [{} for _ in range(count)]
    for path, dim in space.items():
        if isinstance(dim, list):
            picks = rng.integers(0, len(dim), count)
            values = [dim[int(i)] for i in picks]
        else:
            u = rng.uniform(0, 1, count)
            lo, hi = (math.log(dim.low), math.log(dim.high)) if dim.log else (dim.low, dim.high)
            raw = lo + u * (hi - lo)
            raw = np.exp(raw) if dim.log else raw
            values = [int(round(v)) if dim.integer else float(f"{v:.6g}") for v in raw]
        for d, v in zip(draws, values, strict=True):
            d[path] = v
    return draws


def _located(exc: ValidationError, params: dict[str, Any], where: dict[str, str]) -> Invalid:
    """A spec's validation error as a 422 at the swept path that caused it (or at ``base``)."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    for path in sorted(params, key=len, reverse=True):
        if loc == path or loc.startswith(path + "."):
            value = params[path]
            return Invalid(f"{path} = {value!r}: {err['msg']}", (where[path], path))
    return Invalid(f"with {params}: {loc}: {err['msg']}", ("base", *err["loc"]))


def expand(sweep: SweepSpec, limit: int) -> list[Configuration]:
    """Every configuration of the sweep, validated; Invalid (422) naming the path of what is wrong, or
    the count and the limit when there are more than ``limit``."""
    total = sweep.total()
    if total > limit:
        raise Invalid(f"this sweep has {total} configurations; this server runs at most {limit}", ("grid",))
    if math.ceil(sweep.epochs / sweep.every) > MAX_RECORDS:
        need = math.ceil(sweep.epochs / MAX_RECORDS)
        raise Invalid(f"at most {MAX_RECORDS} records per configuration: record_every ≥ {need}", ("record_every",))
    base = _fields(sweep.base)
    where: dict[str, str] = {}
    for path, values in sweep.grid.items():
        _check_path(path, base, "grid")
        if not values or len(values) > MAX_VALUES:
            raise Invalid(f"'{path}' needs 1 to {MAX_VALUES} values", ("grid", path))
        where[path] = "grid"
    space = sweep.random.space if sweep.random is not None else {}
    for path in space:
        _check_path(path, base, "random")
        if path in where:
            raise Invalid(f"'{path}' is in both grid and random: give it in one of them", ("random", path))
        where[path] = "random"
    points = [dict(zip(sweep.grid, combo, strict=True)) for combo in itertools.product(*sweep.grid.values())]
    draws = _draw(space, sweep.random.count, sweep.random.seed) if sweep.random is not None else [{}]
    out = []
    for point in points:
        for draw in draws:
            params = point | draw
            patch: dict[str, Any] = {}
            for path, value in params.items():
                patch = merge_patch(patch, _patch(path, value, sweep.base))
            try:
                spec = ExperimentSpec.model_validate(_merged(base, patch))
            except ValidationError as exc:
                raise _located(exc, params, where) from None
            out.append(Configuration(params=params, spec=spec))
    return out
