"""What can be chosen: datasets, activations, optimizers, presets; and the health check."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter

from server.ml.datasets import DATASETS, FEATURE_LABELS
from server.ml.models import ACTIVATIONS, INITS, OUTPUTS
from server.ml.train import OPTIMIZERS
from server.presets import PRESETS
from server.view_schemas import ActivationsPublic, DatasetsPublic, Health, OptimizersPublic, PresetsPublic

router = APIRouter(prefix="/api/v1", tags=["catalog"])
health = APIRouter(tags=["health"])


@health.get("/healthz", response_model=Health)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/datasets", response_model=DatasetsPublic)
async def list_datasets() -> dict[str, Any]:
    """Every dataset with its problem type and number of classes, and the input features."""
    return {
        "datasets": [
            {"name": d.name, "problem": d.problem, "classes": d.n_classes, "description": d.description}
            for d in DATASETS.values()
        ],
        "features": [{"name": k, "label": v} for k, v in FEATURE_LABELS.items()],
    }


@router.get("/activations", response_model=ActivationsPublic)
async def list_activations() -> dict[str, Any]:
    """Every activation with its formula, range, and whether its gradient is zero almost everywhere."""
    return {
        "activations": [
            {
                "name": name,
                "formula": a.formula,
                "range": [None if math.isinf(v) else v for v in a.range],
                "zero_gradient": a.zero_gradient,
            }
            for name, a in ACTIVATIONS.items()
        ],
        "outputs": OUTPUTS,
        "inits": list(INITS),
    }


@router.get("/optimizers", response_model=OptimizersPublic)
async def list_optimizers() -> dict[str, Any]:
    """Every optimizer and which hyperparameters it reads."""
    return {
        "optimizers": [{"name": n, "uses": list(o.uses), "description": o.description} for n, o in OPTIMIZERS.items()]
    }


@router.get("/presets", response_model=PresetsPublic)
async def list_presets() -> dict[str, Any]:
    """Ready-made experiments for the lecture topics; POST a preset's spec to /api/v1/sessions."""
    return {"presets": [{"name": k, **v} for k, v in PRESETS.items()]}
