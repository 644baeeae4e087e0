"""REST API and stream of sweeps: /api/v1/sweeps (start, read, cancel, results as CSV or JSON, small maps,
open a configuration as a session) and /ws/sweeps/{id} (progress and metrics as they come)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hmac
import io
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.security import HTTPAuthorizationCredentials

from server.deps import ManagerDep, bearer
from server.schemas import SessionCreated, SweepCreated, SweepList, SweepMaps, SweepPublic
from server.sessions.sweeps import Sweep
from server.sweepspec import SweepSpec

router = APIRouter(prefix="/api/v1/sweeps", tags=["sweeps"])
stream = APIRouter(tags=["stream"])

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def sweep_cookie(sweep_id: str) -> str:
    """The cookie in which the page keeps a sweep's token."""
    return f"neuroglass_sweep_{sweep_id}"


def owned(sweep: Sweep, request: Request, credentials: HTTPAuthorizationCredentials | None) -> Sweep:
    """The sweep if the caller holds its token: 401 without one, 403 with a wrong one."""
    token = credentials.credentials if credentials is not None else request.cookies.get(sweep_cookie(sweep.id))
    if token is None:
        raise HTTPException(
            401,
            "this call changes the sweep: send its token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(token.encode(), sweep.token.encode()):
        raise HTTPException(403, "wrong token for this sweep: you may read it but not change it")
    return sweep


@router.post("", status_code=202, response_model=SweepCreated)
async def start_sweep(body: SweepSpec, request: Request, response: Response, manager: ManagerDep) -> dict[str, Any]:
    """Start a sweep: every configuration of ``grid`` (× ``random``) trains ``epochs`` epochs, those sharing
    an architecture together in one compiled program. Answers at once; follow it with GET or the stream."""
    client = request.client.host if request.client is not None else "unknown"
    sweep = await manager.sweeps.create(body, client)
    response.set_cookie(sweep_cookie(sweep.id), sweep.token, httponly=True, samesite="strict")
    url = f"/api/v1/sweeps/{sweep.id}"
    return {"id": sweep.id, "token": sweep.token, "total": len(sweep.configs), "status": sweep.status} | {
        "progress": sweep.progress(),
        "url": url,
        "stream": f"/ws/sweeps/{sweep.id}",
    }


@router.get("", response_model=SweepList)
async def list_sweeps(
    manager: ManagerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    """Sweeps, newest first, a page at a time (what the store keeps: finished ones of earlier runs too)."""
    return await manager.sweeps.listing(limit, offset)


@router.get("/{sweep_id}", response_model=SweepPublic, responses={200: {"model": SweepPublic}})
async def read_sweep(sweep_id: str, manager: ManagerDep, history: bool = True) -> Response:
    """Status, progress (configuration·epochs done of the total, an ETA) and every configuration: its
    parameters, status, final metrics and (unless ``history=false``) its records. (Answered as built, not
    validated again on the way out: a script polls a big sweep often; tests check it against the schema.)"""
    found: dict[str, Any] = await manager.sweeps.find(sweep_id, history)
    return Response(json.dumps(found, allow_nan=False), media_type="application/json")


@router.delete("/{sweep_id}", status_code=204)
async def delete_sweep(
    sweep_id: str, request: Request, manager: ManagerDep, credentials: Credentials, keep: bool = False
) -> Response:
    """Cancel the sweep at once (the running compiled call is its last); ``keep=true`` keeps its results,
    otherwise it is deleted. Needs the sweep's token."""
    sweep = owned(manager.sweeps.get(sweep_id), request, credentials)
    if keep:
        await manager.sweeps.cancel(sweep)
    else:
        await manager.sweeps.delete(sweep)
    return Response(status_code=204)


@router.get("/{sweep_id}/maps", response_model=SweepMaps)
async def sweep_maps(sweep_id: str, manager: ManagerDep) -> dict[str, Any]:
    """Each configuration's latest small decision map (MLPs on 2-D data)."""
    return manager.sweeps.maps(manager.sweeps.get(sweep_id))


CSV_COLUMNS = ("index", "status", "group", "epochs", "train_loss", "test_loss", "train_accuracy", "test_accuracy")


@router.get(
    "/{sweep_id}/results.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "one row per configuration"}},
)
async def sweep_csv(sweep_id: str, manager: ManagerDep, history: bool = False) -> Response:
    """The results as CSV: one row per configuration (its swept values, status, final metrics), or with
    ``history=true`` one row per configuration and record."""
    found = await manager.sweeps.find(sweep_id)
    out = io.StringIO()
    writer = csv.writer(out)
    swept = found["swept"]
    metrics = CSV_COLUMNS[4:]
    writer.writerow([*CSV_COLUMNS[:4], *swept] + (["epoch", *metrics] if history else list(metrics)))
    for c in found["configurations"]:
        head = [c["index"], c["status"], c["group"], c["epochs"], *(json.dumps(c["params"][p]) for p in swept)]
        if history:
            for row in c["history"] or []:
                writer.writerow([*head, row["epoch"], *(row[m] for m in metrics)])
        else:
            final = c["final"] or {}
            writer.writerow([*head, *(final.get(m) for m in metrics)])
    name = f"sweep-{sweep_id}{'-history' if history else ''}.csv"
    return Response(
        out.getvalue(), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get(
    "/{sweep_id}/results.json",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}, "description": "the whole sweep, as GET answers it"}},
)
async def sweep_json(sweep_id: str, manager: ManagerDep) -> Response:
    found = await manager.sweeps.find(sweep_id)
    return Response(
        json.dumps(found),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="sweep-{sweep_id}.json"'},
    )


@router.post("/{sweep_id}/configurations/{k}/open", status_code=201, response_model=SessionCreated)
async def open_configuration(sweep_id: str, k: int, manager: ManagerDep) -> dict[str, Any]:
    """A new live session (paused) of configuration ``k``, continuing from its trained weights."""
    s = await manager.sweeps.open(manager.sweeps.get(sweep_id), k)
    return {**manager.public(s), "token": s.token}


@stream.websocket("/ws/sweeps/{sweep_id}")
async def sweep_stream(ws: WebSocket, sweep_id: str) -> None:
    """``hello`` (the sweep without histories), then ``started``, ``progress`` (status and final metrics of
    the configurations a call trained, maps now and then) and ``done`` messages, as JSON text."""
    manager = ws.app.state.sessions
    await ws.accept()
    try:
        sweep = manager.sweeps.get(sweep_id)
    except Exception as exc:
        await ws.send_json({"type": "error", "message": str(exc)})
        await ws.close(code=4404)
        return
    box = manager.sweeps.subscribe(sweep)
    try:
        await ws.send_json({"type": "hello", "sweep": sweep.public(history=False), "maps": manager.sweeps.maps(sweep)})
        if sweep.status not in ("queued", "running"):
            await ws.send_json({"type": "done", "status": sweep.status, "progress": sweep.progress()})
        receive = asyncio.create_task(_drain(ws))
        while not receive.done():
            get = asyncio.create_task(box.get())
            finished, _ = await asyncio.wait({get, receive}, return_when=asyncio.FIRST_COMPLETED)
            if get not in finished:
                get.cancel()
                break
            await ws.send_json(get.result())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        manager.sweeps.unsubscribe(sweep, box)
        with contextlib.suppress(Exception):
            await ws.close()


async def _drain(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it goes: the stream is one-way."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await ws.receive_text()
