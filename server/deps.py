"""Typed dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.config import Settings
from server.sessions import Session, SessionManager

bearer = HTTPBearer(auto_error=False, description="the token returned when the session was created")


def get_manager(request: Request) -> SessionManager:
    return request.app.state.sessions


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


ManagerDep = Annotated[SessionManager, Depends(get_manager)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def token_cookie(session_id: str) -> str:
    """The cookie in which the page keeps a session's token."""
    return f"neuroglass_{session_id}"


def get_session(session_id: str, manager: ManagerDep) -> Session:
    return manager.get(session_id)


def get_owned_session(
    session_id: str,
    request: Request,
    manager: ManagerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Session:
    """The session, if the caller holds its token (Bearer header or the page's cookie)."""
    s = manager.get(session_id)
    token = credentials.credentials if credentials else request.cookies.get(token_cookie(session_id))
    if token is None:
        raise HTTPException(
            401,
            "this call changes the session: send its token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not s.check_token(token):
        raise HTTPException(403, "wrong token for this session: you may watch it but not change it")
    return s


SessionDep = Annotated[Session, Depends(get_session)]
OwnedSessionDep = Annotated[Session, Depends(get_owned_session)]
