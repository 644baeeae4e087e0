"""Websocket stream of a session: control messages in, frames out (/ws/sessions/{id}).

Protocol (docs/websocket.md): the server first sends ``{"type": "hello", "role", "state"}`` as JSON text,
then frames in the binary envelope (server/frames.py) whenever the session changes. The client sends JSON
text: ``{"action": "play" | "pause" | "step" | "reset"}``, ``{"action": "patch", "spec": {...}}``,
``{"action": "edit_weight", "layer": i, "param": "w" | "b", "index": [...], "value": v}``; an optional
``"ref"`` is echoed in the answer (``ack`` or ``error``). A socket without the session's token is a
read-only viewer: its control messages are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from server.deps import token_cookie
from server.frames import clean, encode_binary
from server.sessions import Session, SessionError, SessionManager

router = APIRouter(tags=["stream"])

ACTIONS = ("play", "pause", "step", "reset", "patch", "edit_weight")


def _error(message: str, ref: Any = None, field: list[Any] | None = None) -> dict[str, Any]:
    return {"type": "error", "message": message, "field": field, "ref": ref}


async def _control(manager: SessionManager, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
    """Carry out one control message; the answer to send back."""
    action, ref = msg.get("action"), msg.get("ref")
    ack: dict[str, Any] = {"type": "ack", "action": action, "ref": ref}
    try:
        if action in ("play", "pause", "step", "reset"):
            await getattr(manager, action)(s)
        elif action == "patch":
            spec = msg.get("spec")
            if not isinstance(spec, dict):
                return _error("patch needs 'spec': an object with the fields to change", ref, ["spec"])
            ack["changes"] = await manager.patch(s, spec)
        elif action == "edit_weight":
            await manager.edit_weight(s, msg.get("layer"), msg.get("param", "w"), msg.get("index"), msg.get("value"))
        else:
            return _error(f"unknown action {action!r}; use one of: {', '.join(ACTIONS)}", ref, ["action"])
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        return _error(first["msg"], ref, ["spec", *first["loc"]])
    except SessionError as exc:
        return _error(exc.message, ref, list(exc.loc) or None)
    return {**ack, "spec_version": s.spec_version, "state": manager.public(s)}


@router.websocket("/ws/sessions/{session_id}")
async def session_stream(websocket: WebSocket, session_id: str) -> None:
    manager: SessionManager = websocket.app.state.sessions
    s = manager.sessions.get(session_id)
    await websocket.accept()
    if s is None:
        await websocket.send_json(_error(f"no session {session_id!r}"))
        await websocket.close(code=4404)
        return
    token = websocket.query_params.get("token") or websocket.cookies.get(token_cookie(session_id))
    owner = s.check_token(token)
    box = manager.subscribe(s)
    send_lock = asyncio.Lock()  # frames and answers interleave on one socket

    async def send_text(payload: dict[str, Any]) -> None:
        async with send_lock:
            await websocket.send_text(json.dumps(clean(payload), separators=(",", ":")))

    async def pump_frames() -> None:
        while True:
            header, arrays = await box.get()
            data = encode_binary(header, arrays)
            async with send_lock:
                await websocket.send_bytes(data)

    await send_text({"type": "hello", "role": "owner" if owner else "viewer", "state": manager.public(s)})
    header, arrays = await manager.frame(s)
    box.put((header, arrays))
    pump = asyncio.create_task(pump_frames())
    try:
        while True:
            raw = await websocket.receive_text()
            s.touched = time.monotonic()
            try:
                msg = json.loads(raw)
            except json.JSONDecodeError:
                await send_text(_error('messages must be JSON, e.g. {"action": "play"}'))
                continue
            if not isinstance(msg, dict):
                await send_text(_error("a message is a JSON object with an 'action'"))
                continue
            if not owner:
                await send_text(
                    _error("this is a read-only view: only the session's owner can change it", msg.get("ref"))
                )
                continue
            await send_text(await _control(manager, s, msg))
    except WebSocketDisconnect:
        pass
    finally:
        manager.unsubscribe(s, box)
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
