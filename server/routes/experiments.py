"""REST API for saved work: /api/v1/experiments (save, list, read, rename, delete, open, thumbnail) and a
saved session file's import (/api/v1/sessions/import)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, Response, UploadFile
from fastapi.security import HTTPAuthorizationCredentials

from server.deps import ManagerDep, SettingsDep, bearer, check_owner
from server.schemas import (
    ExperimentChange,
    ExperimentCreated,
    ExperimentIn,
    ExperimentList,
    ExperimentPublic,
    SessionCreated,
)
from server.store import ExperimentRecord

router = APIRouter(prefix="/api/v1/experiments", tags=["experiments"])
imports = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def owner_cookie(experiment_id: str) -> str:
    """The cookie in which the page keeps a saved experiment's owner token."""
    return f"neuroglass_exp_{experiment_id}"


def owner_token(request: Request, experiment_id: str, credentials: HTTPAuthorizationCredentials | None) -> str:
    token = credentials.credentials if credentials is not None else request.cookies.get(owner_cookie(experiment_id))
    if not token:
        raise HTTPException(
            401,
            "this call changes a saved experiment: send its owner_token as 'Authorization: Bearer <owner_token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token


def public(rec: ExperimentRecord) -> dict[str, Any]:
    return {
        **rec.__dict__,
        "thumbnail_url": f"/api/v1/experiments/{rec.id}/thumbnail.png",
        "share_url": f"/e/{rec.slug}",
    }


@router.post("", status_code=201, response_model=ExperimentCreated)
async def save_experiment(
    body: ExperimentIn, request: Request, manager: ManagerDep, credentials: Credentials
) -> dict[str, Any]:
    """Save a live session — spec, weights, optimizer and batch-norm state, history, a thumbnail — with the
    session's token. The answer's ``owner_token`` (shown once) renames or deletes it."""
    s = check_owner(manager.get(body.session_id), request, credentials)
    rec, owner = await manager.saved.save(s, body.name, body.description)
    return {**public(rec), "owner_token": owner}


@router.get("", response_model=ExperimentList)
async def list_experiments(
    manager: ManagerDep,
    q: Annotated[str, Query(max_length=200, description="part of the name, any case")] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    """Saved experiments, newest first, a page at a time."""
    items, total = await manager.saved.experiments(q, limit, offset)
    return {"items": [public(r) for r in items], "total": total, "limit": limit, "offset": offset}


@router.get("/{experiment_id}", response_model=ExperimentPublic)
async def read_experiment(experiment_id: str, manager: ManagerDep) -> dict[str, Any]:
    return public(await manager.saved.experiment(experiment_id))


@router.patch("/{experiment_id}", response_model=ExperimentPublic)
async def change_experiment(
    experiment_id: str, body: ExperimentChange, request: Request, manager: ManagerDep, credentials: Credentials
) -> dict[str, Any]:
    """Rename or describe (the owner's token)."""
    token = owner_token(request, experiment_id, credentials)
    values = body.model_dump(exclude_none=True)
    rec = await manager.saved.update(experiment_id, token, **values)
    return public(rec)


@router.delete("/{experiment_id}", status_code=204)
async def delete_experiment(
    experiment_id: str, request: Request, manager: ManagerDep, credentials: Credentials
) -> Response:
    """Delete (the owner's token)."""
    await manager.saved.delete(experiment_id, owner_token(request, experiment_id, credentials))
    return Response(status_code=204)


@router.post("/{experiment_id}/open", status_code=201, response_model=SessionCreated)
async def open_experiment(experiment_id: str, manager: ManagerDep) -> dict[str, Any]:
    """A new live session (paused) continuing exactly from the saved state: the same predictions, and
    training it on gives the numbers it would have given had it never stopped. Anyone may open one."""
    s = await manager.saved.open(experiment_id)
    return {**manager.public(s), "token": s.token}


@router.get(
    "/{experiment_id}/thumbnail.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "the decision map, or a CNN's first filters"}},
)
async def experiment_thumbnail(experiment_id: str, manager: ManagerDep) -> Response:
    picture = await manager.saved.thumbnail(experiment_id)
    return Response(picture, media_type="image/png", headers={"Cache-Control": "public, max-age=3600"})


@imports.post("/import", status_code=201, response_model=SessionCreated)
async def import_session(
    manager: ManagerDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="a file from GET .../export?format=safetensors")],
) -> dict[str, Any]:
    """A new live session continuing from a downloaded safetensors file."""
    blob = await file.read(settings.max_upload_bytes + 1)
    if len(blob) > settings.max_upload_bytes:
        raise HTTPException(413, f"the file is larger than {settings.max_upload_bytes // 1_000_000} MB")
    s = await manager.saved.open_file(blob)
    return {**manager.public(s), "token": s.token}
