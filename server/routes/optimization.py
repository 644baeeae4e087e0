"""REST API: inside the optimization, for any session (/api/v1/sessions/{id}/landscape, interpolation,
gradients, sharpness, race)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from server.deps import ManagerDep, SessionDep
from server.routes.sessions import layers_of
from server.schemas import InterpolationIn, RaceIn
from server.view_schemas import GradientsPublic, InterpolationPublic, LandscapePublic, RacePublic, SharpnessPublic

router = APIRouter(prefix="/api/v1/sessions", tags=["optimization"])


@router.get("/{session_id}/landscape", response_model=LandscapePublic)
async def get_landscape(
    s: SessionDep,
    manager: ManagerDep,
    directions: Annotated[
        Literal["random", "pca", "init"],
        Query(
            description="two filter-normalized random directions, the trajectory's top-2 PCA directions, "
            "or initial → current weights plus one random direction"
        ),
    ] = "random",
    resolution: Annotated[int, Query(ge=11, le=101, description="cells per side")] = 51,
    span: Annotated[
        float | None, Query(gt=0, le=100, description="α, β from −span to span (default: per directions)")
    ] = None,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1, description="seed of the random directions")] = 0,
) -> dict[str, Any]:
    """The training loss on a plane through the current weights (``loss`` rows β, columns α; null = off
    scale), with the recorded trajectory projected on it — its true loss, the slice's loss at the
    projection, and its distance off the plane — and, for PCA directions, their explained variance."""
    return await manager.landscape(s, directions, resolution, span, seed)


@router.get("/{session_id}/interpolation", response_model=InterpolationPublic, response_model_by_alias=True)
async def get_interpolation(
    s: SessionDep,
    manager: ManagerDep,
    steps: Annotated[int, Query(ge=3, le=201, description="points along the line")] = 51,
) -> dict[str, Any]:
    """The training loss along the straight line from the initial weights (t = 0) to the current ones
    (t = 1), a quarter beyond each end."""
    return await manager.interpolation(s, steps)


@router.post("/{session_id}/interpolation", response_model=InterpolationPublic, response_model_by_alias=True)
async def post_interpolation(s: SessionDep, manager: ManagerDep, body: InterpolationIn) -> dict[str, Any]:
    """The training loss along the straight line between two weight sets — saved from GET .../weights at two
    moments, or from two runs of the same architecture — t = 0 at ``start``, 1 at ``end`` (either left out:
    the initial / current weights), a quarter beyond each end. The session is not changed."""
    start = None if body.start is None else layers_of(body.start)
    end = None if body.end is None else layers_of(body.end)
    return await manager.interpolation(s, body.steps, start, end)


@router.get("/{session_id}/gradients", response_model=GradientsPublic)
async def get_gradients(s: SessionDep, manager: ManagerDep) -> dict[str, Any]:
    """Per-layer gradient health on the training set (a CNN's: its first training images): gradient and
    weight norms, update/weight ratio, dead ReLU and saturated shares, NaN/Inf counts; and a plain-words
    ``diagnosis`` with fixes (spec patches)."""
    return await manager.gradients(s)


@router.get("/{session_id}/sharpness", response_model=SharpnessPublic)
async def get_sharpness(
    s: SessionDep,
    manager: ManagerDep,
    iters: Annotated[int, Query(ge=1, le=200, description="power iterations")] = 20,
) -> dict[str, Any]:
    """The Hessian's top eigenvalue of the training loss (power iteration on Hessian-vector products)
    against gradient descent's stability line 2 / learning rate; ``history`` holds every value computed."""
    return await manager.sharpness(s, iters)


@router.post("/{session_id}/race", response_model=RacePublic)
async def post_race(s: SessionDep, manager: ManagerDep, body: RaceIn) -> dict[str, Any]:
    """An optimizer race — copies of this network from its current weights, on the same batches, each
    trained with its own optimizer / learning rate; their paths on one shared plane (PCA of all their
    movement, centred on their mean final weights unless ``center`` names a run: then ``notes`` warns), the
    loss over that plane and each run's loss curve. The session itself is not changed."""
    runs = [run.model_dump(exclude_none=True) for run in body.runs]
    return await manager.race(s, runs, body.epochs, body.resolution, body.center)
