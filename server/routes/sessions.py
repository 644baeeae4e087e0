"""REST API for live sessions: /api/v1/sessions (names are a contract for users' scripts)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Body, Query, Response

from server.deps import ManagerDep, OwnedSessionDep, SessionDep
from server.frames import encode_json
from server.schemas import (
    ExportPublic,
    HistoryPublic,
    InterpolationIn,
    PredictIn,
    PredictPublic,
    RaceIn,
    SessionCreated,
    SessionPatched,
    SessionPublic,
    TrainIn,
    WeightsIn,
    WeightsPublic,
)
from server.sessions import Invalid
from server.spec import ExperimentSpec

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])

PATCH_EXAMPLE = {"training": {"learning_rate": 0.1}, "network": {"hidden": [{"units": 6, "activation": "relu"}]}}


@router.post("", status_code=201, response_model=SessionCreated)
async def create_session(manager: ManagerDep, spec: Annotated[ExperimentSpec | None, Body()] = None) -> dict[str, Any]:
    """Start a session (paused, epoch 0). Every spec field is optional; defaults = TF Playground's."""
    s = await manager.create(spec or ExperimentSpec())
    return {**manager.public(s), "token": s.token}


@router.get("/{session_id}", response_model=SessionPublic)
async def read_session(s: SessionDep, manager: ManagerDep) -> dict[str, Any]:
    """The session's spec, status, epoch and metrics."""
    return manager.public(s)


@router.patch("/{session_id}", response_model=SessionPatched)
async def patch_session(
    s: OwnedSessionDep,
    manager: ManagerDep,
    patch: Annotated[dict[str, Any], Body(openapi_examples={"live edit": {"value": PATCH_EXAMPLE}})],
) -> dict[str, Any]:
    """Live edit with a partial spec (objects merge; lists such as network.hidden are replaced whole).
    Never resets: weights that still fit are kept, the answer says what was kept."""
    report = await manager.patch(s, patch)
    return {**manager.public(s), "changes": report}


@router.delete("/{session_id}", status_code=204)
async def delete_session(s: OwnedSessionDep, manager: ManagerDep) -> Response:
    await manager.delete(s)
    return Response(status_code=204)


@router.post("/{session_id}/train", response_model=SessionPublic)
async def train_session(s: OwnedSessionDep, manager: ManagerDep, body: TrainIn) -> dict[str, Any]:
    """Train ``epochs`` epochs now and answer when done."""
    await manager.train(s, body.epochs)
    return manager.public(s)


@router.post("/{session_id}/play", response_model=SessionPublic)
async def play_session(s: OwnedSessionDep, manager: ManagerDep) -> dict[str, Any]:
    """Train continuously in the background (frames go to websocket watchers) until pause."""
    await manager.play(s)
    return manager.public(s)


@router.post("/{session_id}/pause", response_model=SessionPublic)
async def pause_session(s: OwnedSessionDep, manager: ManagerDep) -> dict[str, Any]:
    await manager.pause(s)
    return manager.public(s)


@router.post("/{session_id}/step", response_model=SessionPublic)
async def step_session(s: OwnedSessionDep, manager: ManagerDep) -> dict[str, Any]:
    """Pause and train exactly one epoch."""
    await manager.step(s)
    return manager.public(s)


@router.post("/{session_id}/reset", response_model=SessionPublic)
async def reset_session(s: OwnedSessionDep, manager: ManagerDep) -> dict[str, Any]:
    """Fresh weights from the spec's seed, epoch 0, history cleared; the spec and data stay."""
    await manager.reset(s)
    return manager.public(s)


@router.get("/{session_id}/history", response_model=HistoryPublic)
async def session_history(s: SessionDep, manager: ManagerDep) -> dict[str, Any]:
    """Loss and accuracy over training, one record per chunk (thinned evenly on long runs)."""
    return manager.history(s)


@router.get("/{session_id}/data")
async def session_data(s: SessionDep, manager: ManagerDep) -> dict[str, Any]:
    """The training and test points ([x1, x2] and label) the session learns from."""
    return manager.data(s)


@router.get("/{session_id}/weights", response_model=WeightsPublic)
async def get_weights(s: SessionDep, manager: ManagerDep) -> dict[str, Any]:
    """Every layer's weights w (inputs × units) and biases b, input side first."""
    return manager.weights(s)


@router.put("/{session_id}/weights", response_model=WeightsPublic)
async def put_weights(s: OwnedSessionDep, manager: ManagerDep, body: WeightsIn) -> dict[str, Any]:
    """Replace all weights (same shapes as GET); training continues from them."""
    await manager.set_weights(s, _layers(body))
    return manager.weights(s)


@router.post("/{session_id}/predict", response_model=PredictPublic)
async def predict(s: SessionDep, manager: ManagerDep, body: PredictIn) -> dict[str, Any]:
    """The network's answer for points of the input plane (MLP) or for images (CNN)."""
    field = s.engine.input_field
    given = getattr(body, field)
    if given is None:
        raise Invalid(f"this session's network takes '{field}'", (field,))
    try:
        values = np.asarray(given, np.float32)
    except ValueError:  # ragged rows
        raise Invalid("every image needs the same number of rows and columns", (field,)) from None
    out = await manager.predict(s, values)
    maps = None
    if body.feature_maps:
        out_maps = await manager.view(s, "feature_maps", spec=s.spec, images=values)
        maps = encode_json({}, out_maps["feature_maps"], "list")
    if s.spec.problem == "regression":
        return {"outputs": out.tolist(), "classes": None, "feature_maps": maps}
    classes = out.argmax(axis=1) if out.ndim == 2 else (out >= 0).astype(int)
    return {"outputs": out.tolist(), "classes": classes.tolist(), "feature_maps": maps}


@router.get("/{session_id}/frame")
async def get_frame(
    s: SessionDep,
    manager: ManagerDep,
    encoding: Annotated[Literal["base64", "list"], Query(description="how arrays are written")] = "base64",
) -> dict[str, Any]:
    """The current frame as JSON (fields in docs/frames.md): output map, neuron maps, weights, gradient
    norms, losses."""
    header, arrays = await manager.frame(s)
    return encode_json(header, arrays, encoding)


@router.get("/{session_id}/actmax")
async def get_actmax(
    s: SessionDep,
    manager: ManagerDep,
    layer: Annotated[int, Query(ge=0, le=63, description="index of a CNN layer (0 = the first)")] = 0,
    steps: Annotated[int, Query(ge=1, le=200, description="gradient-ascent steps")] = 20,
    encoding: Annotated[Literal["base64", "list"], Query(description="how arrays are written")] = "base64",
) -> dict[str, Any]:
    """CNN: for every filter of a layer, the input image that excites it most (activation maximization:
    gradient ascent on the input with jitter, L2 and blur). ``images`` (filters, C, H, W) bytes 0..255;
    ``start``/``end``: each filter's mean activation on its image before and after the climb."""
    out = await manager.view(s, "actmax", layer=layer, steps=steps)
    arrays = {k: out.pop(k) for k in ("images", "start", "end")}
    return encode_json(out, arrays, encoding)


@router.get("/{session_id}/convolution")
async def get_convolution(
    s: SessionDep,
    manager: ManagerDep,
    layer: Annotated[int, Query(ge=0, le=63, description="index of a conv layer (0 = the first)")] = 0,
    filter: Annotated[  # noqa: A002
        int | None, Query(ge=0, le=63, description="which of the layer's filters (default: the most excited)")
    ] = None,
    example: Annotated[int, Query(ge=0, description="test-image index")] = 0,
    row: Annotated[int | None, Query(ge=0, description="top output row of the region (default: strongest)")] = None,
    col: Annotated[int | None, Query(ge=0, description="left output column of the region")] = None,
) -> dict[str, Any]:
    """CNN: how a convolution works, on this network's numbers — one filter sliding over a small patch of
    a test image (or of the previous layer's maps): ``patch`` (C, P, P) with ``padding_cells``, ``weights``
    (C, k, k), ``bias``, ``products`` (n, n, C, k, k), ``sums`` (n, n) = Σ products + bias, ``outputs``
    after the activation (equal to ``feature_map``, the layer's real output there), and ``pool``: the
    pooling layer after it over those outputs (windows, winners), or null."""
    return await manager.view(s, "convolution", layer=layer, filter_=filter, example=example, row=row, col=col)


@router.get("/{session_id}/saliency")
async def get_saliency(
    s: SessionDep,
    manager: ManagerDep,
    examples: Annotated[list[int], Query(max_length=64, description="test-image indices")] = [0],  # noqa: B006
    encoding: Annotated[Literal["base64", "list"], Query(description="how arrays are written")] = "base64",
) -> dict[str, Any]:
    """CNN: which pixels the predicted class depends on — |∂ logit / ∂ pixel| of each chosen test image,
    scaled to 0..255 per image: ``maps`` (n, H, W)."""
    out = await manager.view(s, "saliency", examples=examples)
    maps = out.pop("maps")
    return encode_json(out, {"maps": maps}, encoding)


@router.get("/{session_id}/landscape")
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


@router.get("/{session_id}/interpolation")
async def get_interpolation(
    s: SessionDep,
    manager: ManagerDep,
    steps: Annotated[int, Query(ge=3, le=201, description="points along the line")] = 51,
) -> dict[str, Any]:
    """The training loss along the straight line from the initial weights (t = 0) to the current ones
    (t = 1), a quarter beyond each end."""
    return await manager.interpolation(s, steps)


@router.post("/{session_id}/interpolation")
async def post_interpolation(s: SessionDep, manager: ManagerDep, body: InterpolationIn) -> dict[str, Any]:
    """The training loss along the straight line between two weight sets — saved from GET .../weights at two
    moments, or from two runs of the same architecture — t = 0 at ``start``, 1 at ``end`` (either left out:
    the initial / current weights), a quarter beyond each end. The session is not changed."""
    start = None if body.start is None else _layers(body.start)
    end = None if body.end is None else _layers(body.end)
    return await manager.interpolation(s, body.steps, start, end)


def _layers(weights: WeightsIn) -> list[dict[str, Any]]:
    """A weights body's layers as plain dicts of the leaves given (as GET .../weights shows them)."""
    return [layer.model_dump(exclude_none=True) for layer in weights.layers]


@router.get("/{session_id}/gradients")
async def get_gradients(s: SessionDep, manager: ManagerDep) -> dict[str, Any]:
    """Per-layer gradient health on the training set (a CNN's: its first training images): gradient and
    weight norms, update/weight ratio, dead ReLU and saturated shares, NaN/Inf counts; and a plain-words
    ``diagnosis`` with fixes (spec patches)."""
    return await manager.gradients(s)


@router.get("/{session_id}/sharpness")
async def get_sharpness(
    s: SessionDep,
    manager: ManagerDep,
    iters: Annotated[int, Query(ge=1, le=200, description="power iterations")] = 20,
) -> dict[str, Any]:
    """The Hessian's top eigenvalue of the training loss (power iteration on Hessian-vector products)
    against gradient descent's stability line 2 / learning rate; ``history`` holds every value computed."""
    return await manager.sharpness(s, iters)


@router.post("/{session_id}/race")
async def post_race(s: SessionDep, manager: ManagerDep, body: RaceIn) -> dict[str, Any]:
    """An optimizer race — copies of this network from its current weights, on the same batches, each
    trained with its own optimizer / learning rate; their paths on one shared plane (PCA of all their
    movement, centred on their mean final weights unless ``center`` names a run: then ``notes`` warns), the
    loss over that plane and each run's loss curve. The session itself is not changed."""
    runs = [run.model_dump(exclude_none=True) for run in body.runs]
    return await manager.race(s, runs, body.epochs, body.resolution, body.center)


@router.get("/{session_id}/export", response_model=ExportPublic)
async def export_session(s: SessionDep, manager: ManagerDep) -> dict[str, Any]:
    """Spec and weights together: everything needed to reproduce this network."""
    return {"spec": s.spec, "epoch": s.epoch, "weights": manager.weights(s)["layers"]}
