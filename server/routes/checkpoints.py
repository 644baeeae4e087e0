"""REST API for time travel: a session's checkpoints, the frame of one, and continuing from one."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from server.deps import ManagerDep, OwnedSessionDep, SessionDep
from server.frames import encode_binary, encode_json
from server.schemas import CheckpointsPublic, SessionPublic
from server.view_schemas import FramePublic

router = APIRouter(prefix="/api/v1/sessions", tags=["checkpoints"])

Epoch = Annotated[int, Path(ge=0, description="a checkpoint's epoch (GET .../checkpoints lists them)")]


@router.get("/{session_id}/checkpoints", response_model=CheckpointsPublic)
async def list_checkpoints(s: SessionDep, manager: ManagerDep) -> dict[str, Any]:
    """The moments this session can go back to (kept while it trains, thinned evenly like the history)."""
    return manager.checkpoints(s)


@router.get(
    "/{session_id}/checkpoints/{epoch}/frame",
    response_model=FramePublic,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "encoding=binary: the envelope"}},
)
async def checkpoint_frame(
    s: SessionDep,
    manager: ManagerDep,
    epoch: Epoch,
    encoding: Annotated[
        Literal["base64", "list", "binary"], Query(description="JSON (base64 or list arrays) or the binary envelope")
    ] = "base64",
) -> Any:
    """The frame at a checkpoint — decision map, neuron maps, weights, losses as they were then — with
    ``checkpoint: true`` in its header. ``encoding=binary``: the websocket's binary envelope (docs/frames.md)."""
    header, arrays = await manager.checkpoint_frame(s, epoch)
    if encoding == "binary":
        return Response(encode_binary(header, arrays), media_type="application/octet-stream")
    return encode_json(header, arrays, encoding)


@router.post("/{session_id}/checkpoints/{epoch}/restore", response_model=SessionPublic)
async def restore_checkpoint(s: OwnedSessionDep, manager: ManagerDep, epoch: Epoch) -> dict[str, Any]:
    """Continue from a checkpoint: its spec, weights, optimizer state, epoch and step come back, and the
    run after it (history, later checkpoints) is dropped. The session is paused there."""
    await manager.restore(s, epoch)
    return manager.public(s)
