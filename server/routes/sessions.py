"""REST API for live sessions: /api/v1/sessions (names are a contract for users' scripts)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Body, Query, Response

from server.csvdata import to_csv
from server.deps import ManagerDep, OwnedSessionDep, SessionDep
from server.frames import encode_json
from server.schemas import (
    ExportPublic,
    HistoryPublic,
    PredictIn,
    PredictPublic,
    SessionCreated,
    SessionPatched,
    SessionPublic,
    TrainIn,
    WeightsIn,
    WeightsPublic,
)
from server.sessions import Invalid
from server.spec import ExperimentSpec
from server.view_schemas import DataPublic, FramePublic

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
    """Train continuously in the background (frames go to websocket watchers) until pause: a session played
    over REST keeps running unwatched (one played from a page pauses when nobody has watched it a while)."""
    await manager.play(s, watched=False)
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
    """Loss and accuracy over training: a record per frame while playing, every 1 % of a train call's
    epochs (thinned evenly on long runs)."""
    return manager.history(s)


@router.get("/{session_id}/data", response_model=DataPublic, response_model_exclude_unset=True)
async def session_data(s: SessionDep, manager: ManagerDep) -> dict[str, Any]:
    """The training and test points ([x1, x2] and label) the session learns from."""
    return manager.data(s)


@router.get(
    "/{session_id}/data.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "x1,x2,label,split: one line per point"}},
)
async def session_data_csv(s: SessionDep, manager: ManagerDep) -> Response:
    """The points as CSV with a split column (training points first): uploading the file gives back exactly
    this data, in this order."""
    data = manager.data(s)
    if "points" not in data["train"]:
        raise Invalid("a CNN learns from images: only the 2-D datasets download as CSV", ("session_id",))
    parts = [(data[p]["points"], data[p]["labels"]) for p in ("train", "test")]
    name = f"neuroglass-{s.spec.dataset.name}-{s.id}.csv"
    return Response(
        to_csv(*parts), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/{session_id}/weights", response_model=WeightsPublic)
async def get_weights(s: SessionDep, manager: ManagerDep) -> dict[str, Any]:
    """Every layer's weights w (inputs × units) and biases b, input side first."""
    return manager.weights(s)


@router.put("/{session_id}/weights", response_model=WeightsPublic)
async def put_weights(s: OwnedSessionDep, manager: ManagerDep, body: WeightsIn) -> dict[str, Any]:
    """Replace all weights (same shapes as GET); training continues from them."""
    await manager.set_weights(s, layers_of(body))
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


@router.get("/{session_id}/frame", response_model=FramePublic)
async def get_frame(
    s: SessionDep,
    manager: ManagerDep,
    encoding: Annotated[Literal["base64", "list"], Query(description="how arrays are written")] = "base64",
) -> dict[str, Any]:
    """The current frame as JSON (fields in docs/frames.md): output map, neuron maps, weights, gradient
    norms, losses."""
    header, arrays = await manager.frame(s)
    return encode_json(header, arrays, encoding)


def layers_of(weights: WeightsIn) -> list[dict[str, Any]]:
    """A weights body's layers as plain dicts of the leaves given (as GET .../weights shows them)."""
    return [layer.model_dump(exclude_none=True) for layer in weights.layers]


@router.get(
    "/{session_id}/export",
    response_model=ExportPublic,
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "description": "format=json: spec and weights; format=safetensors: one file to open again",
        }
    },
)
async def export_session(
    s: SessionDep,
    manager: ManagerDep,
    format: Annotated[Literal["json", "safetensors"], Query(description="json, or one safetensors file")] = "json",
) -> Any:
    """Spec and weights together: everything needed to reproduce this network. ``format=safetensors``: one
    file — the weights, optimizer and batch-norm state as tensors, the spec, history and architecture as
    its metadata — that POST /api/v1/sessions/import (or the page's "open a file") continues from."""
    if format == "safetensors":
        blob = await manager.saved.file(s)
        name = f"neuroglass-{s.engine.name}-epoch{s.epoch}.safetensors"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return Response(blob, media_type="application/octet-stream", headers=headers)
    return {"spec": s.spec, "epoch": s.epoch, "weights": manager.weights(s)["layers"]}
