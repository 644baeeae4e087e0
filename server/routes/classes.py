"""REST API and stream of classes: /api/v1/classes (open a class on a session, join it by code, the
teacher's lock / release / pause-all / panel / spotlight / challenge / remove / end / reopen, a student's
fork, the dashboard and its small decision maps) and /ws/classes/{id} (the class's state as it changes;
the teacher's roster once a second).

The teacher's token comes back when the class is opened (and is kept in the ``neuroglass_class_{id}``
cookie); a student's when they join (``neuroglass_student_{id}``). Either goes as a Bearer header, as the
cookie, or as a websocket's ``token`` query parameter."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.security import HTTPAuthorizationCredentials
from starlette.requests import HTTPConnection

from server.class_schemas import ClassDashboard, ClassJoined, ClassList, ClassOpened, ClassPublic, ClassResults
from server.classspec import Challenge, ClassJoin, ClassMode, ClassOpen, Panel, Spotlight
from server.deps import ManagerDep, bearer, check_owner, token_cookie
from server.schemas import SessionCreated
from server.sessions.classroom import Classroom

router = APIRouter(prefix="/api/v1/classes", tags=["classes"])
stream = APIRouter(tags=["stream"])

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


TEACHER_COOKIE = "neuroglass_class_"
TEACHER_COOKIE_SECONDS = 365 * 24 * 3600  # next week's lesson reopens last week's class from the same browser


def teacher_cookie(class_id: str) -> str:
    return f"{TEACHER_COOKIE}{class_id}"


def set_teacher_cookie(response: Response, class_id: str, token: str) -> None:
    response.set_cookie(
        teacher_cookie(class_id), token, max_age=TEACHER_COOKIE_SECONDS, path="/", httponly=True, samesite="lax"
    )


def teacher_tokens(conn: HTTPConnection) -> dict[str, str]:
    """Class id → teacher token, from the class cookies this browser holds."""
    return {k.removeprefix(TEACHER_COOKIE): v for k, v in conn.cookies.items() if k.startswith(TEACHER_COOKIE)}


def student_cookie(class_id: str) -> str:
    return f"neuroglass_student_{class_id}"


def _token(conn: HTTPConnection, cookie: str, credentials: HTTPAuthorizationCredentials | None = None) -> str | None:
    if credentials is not None:
        return credentials.credentials
    query = conn.query_params.get("token") if isinstance(conn, WebSocket) else None
    return query or conn.cookies.get(cookie)


def _needs(token: str | None, who: str) -> str:
    if token is None:
        raise HTTPException(
            401,
            f"this call is the {who}'s: send their token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token


def taught(class_id: str, request: Request, manager: ManagerDep, credentials: Credentials) -> Classroom:
    """The open class, if the caller is its teacher: 401 without a token, 403 with a wrong one."""
    c = manager.classes.get(class_id)
    token = _needs(_token(request, teacher_cookie(class_id), credentials), "teacher")
    return manager.classes.teacher(c, token)


TaughtDep = Annotated[Classroom, Depends(taught)]


def _opened(c: Classroom, token: str) -> dict[str, Any]:
    return c.public() | {
        "teacher_token": token,
        "join_url": f"/join?code={c.code}",
        "dashboard_url": f"/classes/{c.id}",
        "stream": f"/ws/classes/{c.id}",
    }


@router.post("", status_code=201, response_model=ClassOpened)
async def open_class(
    body: ClassOpen, request: Request, response: Response, manager: ManagerDep, credentials: Credentials
) -> dict[str, Any]:
    """Open a class on a session you own (its token): students join with the code and follow it."""
    presenter = check_owner(manager.get(body.session_id), request, credentials)
    c, token = await manager.classes.open_class(presenter, body.name)
    set_teacher_cookie(response, c.id, token)
    return _opened(c, token)


@router.get("", response_model=ClassList)
async def list_classes(request: Request, manager: ManagerDep) -> dict[str, Any]:
    """The classes this browser runs (the teacher cookies it holds), open or ended, newest first."""
    return {"items": [c.summary() for c in await manager.classes.taught(teacher_tokens(request))]}


@router.post("/join", status_code=201, response_model=ClassJoined)
async def join_class(body: ClassJoin, response: Response, manager: ManagerDep) -> dict[str, Any]:
    """Join the class with this code under a name (no account). 404 for a wrong or expired code."""
    c, st, token = await manager.classes.join(body.code, body.name)
    response.set_cookie(student_cookie(c.id), token, path="/", httponly=True, samesite="lax")
    return {
        "class_id": c.id,
        "student_id": st.id,
        "student_token": token,
        "name": st.name,
        "page_url": f"/class/{c.id}",
        "stream": f"/ws/classes/{c.id}",
        "class": c.public(),
    }


@router.get("/{class_id}", response_model=ClassPublic)
async def read_class(class_id: str, manager: ManagerDep) -> dict[str, Any]:
    """The class: open, or ended (read from the store, with its challenges' results)."""
    return (await manager.classes.read(class_id)).public()


@router.get("/{class_id}/results", response_model=ClassResults, response_model_by_alias=True)
async def class_results(
    class_id: str, request: Request, manager: ManagerDep, credentials: Credentials
) -> dict[str, Any]:
    """Every challenge round of the class (open or ended) with its leaderboard, and who joined: the teacher's."""
    c = await manager.classes.read(class_id)
    manager.classes.teacher(c, _needs(_token(request, teacher_cookie(class_id), credentials), "teacher"))
    return {"class": c.public(), "students": [st.name for st in c.students.values()], "rounds": c.results()}


@router.get("/{class_id}/dashboard", response_model=ClassDashboard)
async def dashboard(c: TaughtDep, manager: ManagerDep) -> dict[str, Any]:
    """The roster (connection, session, metrics, challenge results) and the leaderboard: the teacher's."""
    return manager.classes.dashboard(c)


@router.post("/{class_id}/lock", response_model=ClassPublic)
async def lock(c: TaughtDep, manager: ManagerDep) -> dict[str, Any]:
    """Everyone back to following the presenter (their own sessions pause)."""
    await manager.classes.set_mode(c, "following")
    return c.public()


@router.post("/{class_id}/release", response_model=ClassPublic)
async def release(c: TaughtDep, manager: ManagerDep) -> dict[str, Any]:
    """Students may now make the presenter's session theirs and change it."""
    await manager.classes.set_mode(c, "released")
    return c.public()


@router.put("/{class_id}/mode", response_model=ClassPublic)
async def set_mode(body: ClassMode, c: TaughtDep, manager: ManagerDep) -> dict[str, Any]:
    await manager.classes.set_mode(c, body.mode)
    return c.public()


@router.post("/{class_id}/pause_all", response_model=ClassPublic)
async def pause_all(c: TaughtDep, manager: ManagerDep) -> dict[str, Any]:
    """Pause the presenter's session and every student's."""
    await manager.classes.pause_all(c)
    return c.public()


@router.put("/{class_id}/panel", response_model=ClassPublic)
async def set_panel(body: Panel, c: TaughtDep, manager: ManagerDep) -> dict[str, Any]:
    """The panel the presenter shows: followers' pages open it too."""
    await manager.classes.set_panel(c, body.panel)
    return c.public()


@router.put("/{class_id}/spotlight", response_model=ClassPublic)
async def spotlight(body: Spotlight, c: TaughtDep, manager: ManagerDep) -> dict[str, Any]:
    """Show one student's session to the whole class (null: back to the presenter's)."""
    await manager.classes.set_spotlight(c, body.student_id)
    return c.public()


@router.put("/{class_id}/challenge", response_model=ClassPublic)
async def set_challenge(body: Challenge, c: TaughtDep, manager: ManagerDep) -> dict[str, Any]:
    """Set a challenge (a running one ends): students' own sessions are scored against it once a second."""
    await manager.classes.set_challenge(c, body)
    return c.public()


@router.delete("/{class_id}/challenge", response_model=ClassPublic)
async def end_challenge(c: TaughtDep, manager: ManagerDep) -> dict[str, Any]:
    await manager.classes.set_challenge(c, None)
    return c.public()


@router.delete("/{class_id}/students/{student_id}", status_code=204)
async def remove_student(student_id: str, c: TaughtDep, manager: ManagerDep) -> Response:
    """Take a student out of the class (their own session ends)."""
    await manager.classes.remove(c, student_id)
    return Response(status_code=204)


@router.post("/{class_id}/end", response_model=ClassPublic)
async def end_class(c: TaughtDep, manager: ManagerDep) -> dict[str, Any]:
    """End the class: its code stops working; the roster, results and the presenter (saved) are kept."""
    await manager.classes.end(c)
    return c.public()


@router.post("/{class_id}/reopen", response_model=ClassOpened)
async def reopen_class(
    class_id: str, request: Request, response: Response, manager: ManagerDep, credentials: Credentials
) -> dict[str, Any]:
    """Open an ended class again under a new code, with its roster and results."""
    c = await manager.classes.read(class_id)
    token = _needs(_token(request, teacher_cookie(class_id), credentials), "teacher")
    manager.classes.teacher(c, token)
    set_teacher_cookie(response, class_id, token)  # this browser runs it (again) from now on
    return _opened(await manager.classes.reopen(c), token)


@router.post("/{class_id}/students/{student_id}/fork", status_code=201, response_model=SessionCreated)
async def fork(
    class_id: str, student_id: str, request: Request, response: Response, manager: ManagerDep, credentials: Credentials
) -> dict[str, Any]:
    """ "Make it mine": the student's own session, continuing from the presenter's weights as they are now
    (409 until the teacher releases the class)."""
    c = manager.classes.get(class_id)
    token = _needs(_token(request, student_cookie(class_id), credentials), "student")
    st = manager.classes.student(c, student_id, token)
    s = await manager.classes.fork(c, st)
    response.set_cookie(token_cookie(s.id), s.token, path="/", httponly=True, samesite="lax")
    return manager.public(s) | {"token": s.token}


@router.get("/{class_id}/students/{student_id}/map.png", response_class=Response)
async def student_map(student_id: str, c: TaughtDep, manager: ManagerDep) -> Response:
    """The student's decision map as a small PNG (the dashboard's small multiples)."""
    st = c.students.get(student_id)
    s = manager.sessions.get(st.session_id or "") if st is not None else None
    if s is None:
        raise HTTPException(404, "this student has no session of their own yet")
    png = await manager.classes.decision_map(s)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})


# ------------------------------------------------------------------------------------------- stream


@stream.websocket("/ws/classes/{class_id}")
async def class_stream(ws: WebSocket, class_id: str) -> None:
    """The class's state as JSON text: ``class`` at once and on every change, ``roster`` once a second
    (teacher), ``removed`` and ``ended``. A student's socket is their connection state on the roster."""
    manager = ws.app.state.sessions
    await ws.accept()
    c = manager.classes.open.get(class_id)
    if c is None:
        await ws.send_json({"type": "error", "message": f"no open class {class_id!r} (it may have ended)"})
        await ws.close(code=4404)
        return
    token = ws.query_params.get("token") or ws.cookies.get(student_cookie(class_id))
    teacher = c.is_teacher(ws.query_params.get("token") or ws.cookies.get(teacher_cookie(class_id)))
    st = None if teacher else c.student_by_token(token)
    box = manager.classes.subscribe(c, st, teacher)
    role = "teacher" if teacher else ("student" if st is not None else "observer")
    hello = {"type": "hello", "role": role, "student_id": st.id if st else None, "class": c.public()}
    await ws.send_text(json.dumps(hello))
    if teacher:
        box.put(manager.classes.dashboard(c))
    reader = asyncio.create_task(_drain(ws))
    try:
        while not reader.done():
            get = asyncio.create_task(box.next())
            done, _ = await asyncio.wait({get, reader}, return_when=asyncio.FIRST_COMPLETED)
            if get not in done:
                get.cancel()
                break
            message = get.result()
            await ws.send_text(json.dumps(message, separators=(",", ":")))
            if message.get("type") == "ended" or (st is not None and message.get("student_id") == st.id):
                await ws.close(code=4410)
                break
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        manager.classes.unsubscribe(c, box, st)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def _drain(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends until it goes: the class stream only speaks."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
