"""Websocket stream of a session: control messages in, frames out (/ws/sessions/{id}).

Protocol (docs/websocket.md): the server first sends ``{"type": "hello", "role", "state"}`` as JSON text,
then frames in the binary envelope (server/frames.py) whenever the session changes. The client sends JSON
text: ``{"action": "play" | "pause" | "step" | "reset"}``, ``{"action": "patch", "spec": {...}}``,
``{"action": "edit_weight", "layer": i, "param": "w" | "b", "index": [...], "value": v}``; an optional
``"ref"`` is echoed in the answer (``ack`` or ``error``). A socket without the session's token is a
read-only viewer: its control messages are refused — except ``watch_landscape``, which changes nothing of the
session: it says which loss-surface snapshots (``landscape`` messages, binary) this socket wants to get
(server/sessions/landscape_feed.py computes them once per session for every socket that watches).

Every control is validated here, at the boundary (one pydantic model per action, a union on ``action``);
whatever goes wrong with one message — bad JSON, a wrong type, a refused edit, a bug — becomes an
``error`` answer naming the field, and the socket stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)

from server.deps import owns
from server.frames import clean
from server.sessions import Mailbox, Session, SessionError, SessionManager, broadcast
from server.sessions.landscape_feed import Want

log = logging.getLogger(__name__)

router = APIRouter(tags=["stream"])

ACTIONS = ("play", "pause", "step", "reset", "patch", "edit_weight", "watch_landscape")
VIEWER_ACTIONS = ("watch_landscape",)  # what a read-only viewer may send too: it changes nothing of the session
# What the server sends (docs/websocket.md documents each): JSON text, except frames and landscape snapshots
# (binary envelope).
MESSAGE_TYPES = ("hello", "ack", "error", "frame", "closed", "landscape")
# A control message is small; a longer text message is answered with an error (and the socket stays open).
MAX_MESSAGE_CHARS = 65_536


class _Control(BaseModel):
    """Fields every control may carry: ``ref`` (any JSON value) is echoed in the answer."""

    model_config = ConfigDict(allow_inf_nan=False, extra="ignore")
    ref: Any = None


class Play(_Control):
    action: Literal["play"]


class Pause(_Control):
    action: Literal["pause"]


class Step(_Control):
    action: Literal["step"]


class Reset(_Control):
    action: Literal["reset"]


class Patch(_Control):
    action: Literal["patch"]
    spec: dict[str, Any]


class EditWeight(_Control):
    action: Literal["edit_weight"]
    layer: Annotated[StrictInt, Field(ge=0)]
    param: StrictStr = "w"
    index: Annotated[list[Annotated[StrictInt, Field(ge=0)]], Field(max_length=8)]
    value: StrictFloat  # an int is fine, a bool or a string is not; NaN and ±Inf are refused


class WatchLandscape(_Control):
    """This socket's landscape panel opened (with what to show) or closed; the same bounds as GET .../landscape."""

    action: Literal["watch_landscape"]
    open: StrictBool = True
    directions: Literal["random", "pca", "init"] = "random"
    resolution: Annotated[StrictInt, Field(ge=11, le=101)] = 51
    live_resolution: Annotated[StrictInt, Field(ge=11, le=101)] | None = None
    span: Annotated[StrictFloat, Field(gt=0, le=100)] | None = None
    seed: Annotated[StrictInt, Field(ge=0, le=2**31 - 1)] = 0

    def want(self) -> Want:
        return Want(self.directions, self.resolution, self.live_resolution, self.span, self.seed)


Control = Annotated[Play | Pause | Step | Reset | Patch | EditWeight | WatchLandscape, Field(discriminator="action")]
CONTROL = TypeAdapter(Control)

_HINTS = {
    ("patch", "spec"): "patch needs 'spec': an object with the fields to change",
    ("edit_weight", "layer"): "'layer' is the layer's index, an integer from 0",
    ("edit_weight", "param"): '\'param\' names the array, e.g. "w" or "b"',
    ("edit_weight", "index"): "'index' is a list of integers, one per axis of the array",
    ("edit_weight", "value"): "'value' is a finite number",
    ("watch_landscape", "open"): "'open' is true (send snapshots) or false (stop)",
    ("watch_landscape", "directions"): '\'directions\' is "random", "pca" or "init"',
    ("watch_landscape", "resolution"): "'resolution' is the slice's cells per side, an integer from 11 to 101",
    ("watch_landscape", "live_resolution"): "cells per side while training, an integer from 11 to 101, or null",
    ("watch_landscape", "span"): "'span' is a number above 0 and at most 100, or null for the directions' own",
    ("watch_landscape", "seed"): "'seed' is the random directions' seed, an integer from 0",
}


def _error(message: str, ref: Any = None, field: list[Any] | None = None) -> dict[str, Any]:
    return {"type": "error", "message": message, "field": field, "ref": ref}


def _invalid(exc: ValidationError, msg: dict[str, Any]) -> dict[str, Any]:
    """The error answer for a control that failed validation: the first wrong field, by its path."""
    ref = msg.get("ref")
    first = exc.errors(include_url=False)[0]
    if first["type"] == "union_tag_not_found":
        return _error(f"a message needs an 'action', one of: {', '.join(ACTIONS)}", ref, ["action"])
    if first["type"] == "union_tag_invalid":
        return _error(f"unknown action {msg.get('action')!r}; use one of: {', '.join(ACTIONS)}", ref, ["action"])
    action, *field = first["loc"]  # the union puts the action's tag first
    hint = _HINTS.get((str(action), str(field[0]) if field else ""))
    where = ".".join(str(part) for part in field)
    return _error(f"{action} {where}: {first['msg']}" + (f" ({hint})" if hint else ""), ref, field or None)


async def _control(
    manager: SessionManager, s: Session, msg: dict[str, Any], owner: bool, view: Mailbox
) -> dict[str, Any]:
    """Carry out one control message; the answer to send back. ``view``: this socket's landscape mailbox."""
    try:
        control = CONTROL.validate_python(msg)
    except ValidationError as exc:
        return _invalid(exc, msg)
    action, ref = control.action, control.ref
    if not owner and action not in VIEWER_ACTIONS:
        return _error("this is a read-only view: only the session's owner can change it", ref)
    ack: dict[str, Any] = {"type": "ack", "action": action, "ref": ref}
    try:
        if isinstance(control, WatchLandscape):
            ack |= _watch(manager, s, control, view)
        elif isinstance(control, Patch):
            ack["changes"] = await manager.patch(s, control.spec)
        elif isinstance(control, EditWeight):
            await manager.edit_weight(s, control.layer, control.param, control.index, control.value)
        else:
            await getattr(manager, action)(s)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        return _error(first["msg"], ref, ["spec", *first["loc"]])
    except SessionError as exc:
        return _error(exc.message, ref, list(exc.loc) or None)
    return {**ack, "spec_version": s.spec_version, "state": manager.public(s)}


def _watch(manager: SessionManager, s: Session, control: WatchLandscape, view: Mailbox) -> dict[str, Any]:
    """Open or close this socket's landscape feed; what the ack says of it."""
    feed = manager.landscape_feed
    if not control.open:
        feed.unwatch(s, view)
        return {"open": False}
    want = control.want()
    feed.watch(s, view, want)
    return {"open": True, "watch": dataclasses.asdict(want)}


async def _answer(manager: SessionManager, s: Session, raw: str, owner: bool, view: Mailbox) -> dict[str, Any]:
    """The answer to one text message from the client, never an exception."""
    if len(raw) > MAX_MESSAGE_CHARS:
        return _error(f"a control message has at most {MAX_MESSAGE_CHARS} characters; this one has {len(raw)}")
    try:
        msg = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        return _error('messages must be JSON, e.g. {"action": "play"}')
    if not isinstance(msg, dict):
        return _error("a message is a JSON object with an 'action'")
    if not owner and msg.get("action") not in VIEWER_ACTIONS:
        return _error("this is a read-only view: only the session's owner can change it", msg.get("ref"))
    try:
        return await _control(manager, s, msg, owner, view)
    except Exception as exc:  # a bug must not kill the socket: say so, log it, carry on
        log.exception("websocket control %r on session %s failed", msg.get("action"), s.id)
        return _error(f"the server failed to carry out this message ({type(exc).__name__})", msg.get("ref"))


@router.websocket("/ws/sessions/{session_id}")
async def session_stream(websocket: WebSocket, session_id: str) -> None:
    manager: SessionManager = websocket.app.state.sessions
    s = manager.sessions.get(session_id)
    await websocket.accept()
    if s is None:
        await websocket.send_json(_error(f"no session {session_id!r}"))
        await websocket.close(code=4404)
        return
    owner = owns(s, websocket)
    box = manager.subscribe(s)
    view = Mailbox()  # landscape snapshots, latest only, while this socket watches them (watch_landscape)
    send_lock = asyncio.Lock()  # frames and answers interleave on one socket

    async def send_text(payload: dict[str, Any]) -> None:
        try:
            text = json.dumps(clean(payload), separators=(",", ":"))
        except (TypeError, ValueError, RecursionError):  # e.g. a ref nested too deep to echo
            log.exception("an answer on session %s could not be encoded", s.id)
            text = json.dumps(_error("the answer to this message could not be encoded (is its 'ref' plain JSON?)"))
        async with send_lock:
            await websocket.send_text(text)

    async def pump_frames() -> None:
        while True:
            item = await box.next()
            if isinstance(item, dict):  # a note: JSON text
                await send_text(item)
                if item.get("type") == "closed":  # the session is gone: so is its stream
                    await websocket.close(code=4410)
                    return
                continue
            try:
                data = broadcast.wire(item)  # a published frame is encoded once for all its sockets
            except Exception:  # one bad frame is skipped, the stream goes on
                log.exception("encoding a frame of session %s failed", s.id)
                continue
            async with send_lock:
                await websocket.send_bytes(data)

    async def pump_landscape() -> None:
        while True:
            data = await view.get()  # one snapshot's bytes, encoded once for every socket watching
            async with send_lock:
                await websocket.send_bytes(data)

    await send_text({"type": "hello", "role": "owner" if owner else "viewer", "state": manager.public(s)})
    header, arrays = await manager.frame(s)
    box.put((header, arrays))
    pumps = [asyncio.create_task(pump_frames()), asyncio.create_task(pump_landscape())]
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            s.touched = time.monotonic()
            raw = message.get("text")
            if raw is None:  # a binary message: controls are JSON text
                await send_text(_error('control messages are JSON text, e.g. {"action": "play"}, not binary'))
                continue
            await send_text(await _answer(manager, s, raw, owner, view))
    except WebSocketDisconnect:
        pass
    finally:
        manager.landscape_feed.unwatch(s, view)
        manager.unsubscribe(s, box)
        for pump in pumps:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
