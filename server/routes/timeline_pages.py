"""The page's timeline (time travel): continue from a checkpoint, answered like a settings change — every
panel the restored spec changes, out of band, the run buttons, and a note of what happened."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from server.routes.pages import FormDep, OwnedDep, context, first, fragment, respond
from server.sessions import SessionError

router = APIRouter()


@router.post("/ui/sessions/{session_id}/restore", response_class=HTMLResponse)
async def restore(request: Request, s: OwnedDep, form: FormDep) -> Response:
    """ "continue from here": the session goes back to the checkpoint at ``epoch`` (paused there)."""
    raw = first(form, "epoch", "")
    if not raw.isdigit():
        return JSONResponse({"detail": "choose a moment on the timeline first"}, status_code=422)
    old = s.spec
    try:
        await request.app.state.sessions.restore(s, int(raw))
    except SessionError as exc:  # thinned away meanwhile: say which moments there are
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code)
    note = f"Back at epoch {s.epoch}: what came after it is gone. Press play to train on from here."
    changed = respond(request, s, "timeline", old, note=note)
    buttons = fragment(request, "partials/run_buttons.html", context(request, s, False, oob=True))
    response = HTMLResponse(bytes(changed.body).decode() + buttons)
    trigger = json.loads(changed.headers["HX-Trigger"])
    trigger["ng:restored"] = {"epoch": s.epoch, "spec_version": s.spec_version}
    response.headers["HX-Trigger"] = json.dumps(trigger)
    return response
