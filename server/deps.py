"""Typed dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from server.config import Settings
from server.sessions import Session, SessionManager

bearer = HTTPBearer(auto_error=False, description="the token returned when the session was created")


def get_manager(request: Request) -> SessionManager:
    sessions: SessionManager = request.app.state.sessions
    return sessions


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ManagerDep = Annotated[SessionManager, Depends(get_manager)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def token_cookie(session_id: str) -> str:
    """The cookie in which the page keeps a session's token."""
    return f"neuroglass_{session_id}"


def get_session(session_id: str, manager: ManagerDep) -> Session:
    return manager.get(session_id)


def presented_token(
    conn: HTTPConnection, session_id: str, credentials: HTTPAuthorizationCredentials | None = None
) -> str | None:
    """The token a caller presents for a session: a Bearer header, a websocket's ``token`` query
    parameter, or the page's cookie — in that order."""
    if credentials is not None:
        return credentials.credentials
    query = conn.query_params.get("token") if isinstance(conn, WebSocket) else None
    return query or conn.cookies.get(token_cookie(session_id))


def owns(s: Session, conn: HTTPConnection, credentials: HTTPAuthorizationCredentials | None = None) -> bool:
    """Whether the caller holds the session's token (compared in constant time)."""
    return s.check_token(presented_token(conn, s.id, credentials))


def get_owned_session(
    session_id: str,
    request: Request,
    manager: ManagerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Session:
    """The session, if the caller holds its token (Bearer header or the page's cookie): 401 without one,
    403 with a wrong one."""
    return check_owner(manager.get(session_id), request, credentials)


def check_owner(s: Session, request: Request, credentials: HTTPAuthorizationCredentials | None) -> Session:
    """``s`` if the caller holds its token: 401 without one, 403 with a wrong one (what get_owned_session
    does for a session named in the path, for one named elsewhere, e.g. in a body)."""
    token = presented_token(request, s.id, credentials)
    if token is None:
        raise HTTPException(
            401,
            "this call changes the session: send its token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not s.check_token(token):
        raise HTTPException(403, "wrong token for this session: you may watch it but not change it")
    return s


def get_page_session(
    session_id: str,
    request: Request,
    manager: ManagerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Session:
    """The session a page fragment changes, if this browser holds its token: the cookie, or — a page embedded
    in another site, whose cookies the browser keeps apart — a Bearer header its script adds (403 otherwise)."""
    s = manager.get(session_id)
    if not owns(s, request, credentials):
        raise HTTPException(403, "this browser is watching this session: only its owner can change it")
    return s


SessionDep = Annotated[Session, Depends(get_session)]
OwnedSessionDep = Annotated[Session, Depends(get_owned_session)]
PageSessionDep = Annotated[Session, Depends(get_page_session)]
