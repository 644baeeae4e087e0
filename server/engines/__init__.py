"""The engines: one ``Engine`` interface (base.py), an MLP and a CNN implementation, and ``engine_for`` — the
one place that looks at the network kind of a spec."""

from __future__ import annotations

from server.engines.base import Advance, Engine
from server.engines.cnn import CNN
from server.engines.mlp import MLP
from server.spec import ExperimentSpec

ENGINES: dict[str, Engine] = {"mlp": MLP, "cnn": CNN}

__all__ = ["CNN", "ENGINES", "MLP", "Advance", "Engine", "engine_for"]


def engine_for(spec: ExperimentSpec) -> Engine:
    """The engine that turns this spec into numbers."""
    return ENGINES[spec.network.kind]
