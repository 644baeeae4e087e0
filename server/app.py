"""The FastAPI application: lifespan-owned session manager, routers, error shapes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from server.config import Settings, enable_compile_cache
from server.routes import (
    catalog,
    checkpoints,
    class_pages,
    classes,
    cnn_pages,
    experiment_pages,
    experiments,
    landscape_pages,
    lessons,
    optimization,
    pages,
    sessions,
    stream,
    sweep_pages,
    sweeps,
    timeline_pages,
    views,
)
from server.routes.fields import spec_field
from server.security import SecurityHeaders
from server.sessions import Invalid, SessionError, SessionManager
from server.sessions.registry import CLIENT
from server.store import Store, StoreError

ROOT = Path(__file__).resolve().parent.parent
# In this order: a fixed path (/api/v1/sessions/import) before the patterns it would also match.
ROUTERS = (
    catalog.health,
    catalog.router,
    experiments.imports,
    sessions.router,
    experiments.router,
    checkpoints.router,
    timeline_pages.router,
    views.router,
    optimization.router,
    stream.router,
    sweeps.router,
    sweeps.stream,
    classes.router,
    classes.stream,
    pages.router,
    class_pages.router,
    cnn_pages.router,
    landscape_pages.router,
    experiment_pages.router,
    sweep_pages.router,
    lessons.api,
    lessons.router,
)  # templates/ and static/ live beside server/


class ClientAddress:
    """Every request runs knowing its client's address (``registry.CLIENT``): sessions count against it."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client") if scope["type"] in ("http", "websocket") else None
        token = CLIENT.set(client[0] if client else "")
        try:
            await self.app(scope, receive, send)
        finally:
            CLIENT.reset(token)


async def _reaper(manager: SessionManager, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        await manager.reap_idle()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; ``settings`` defaults to the environment (NEUROGLASS_*)."""
    settings = settings or Settings()
    enable_compile_cache(settings.compile_cache_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        store = Store(settings.database_url)
        await store.start()  # StoreError: the server does not start (python -m server says why in one line)
        app.state.sessions = SessionManager(settings, store)
        await app.state.sessions.start()
        reaper = asyncio.create_task(_reaper(app.state.sessions, min(60.0, settings.session_idle_seconds / 2)))
        yield
        reaper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reaper
        await app.state.sessions.close()
        await store.close()

    app = FastAPI(
        title="Neuroglass",
        version="0.1.0",
        summary="A glass-box neural network playground: train JAX networks live, inspect everything.",
        lifespan=lifespan,
    )
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(ClientAddress)
    app.add_middleware(SecurityHeaders, embed_ancestors=settings.embed_frame_ancestors)
    app.state.templates = Jinja2Templates(directory=ROOT / "templates")
    app.state.templates.env.globals["field"] = spec_field  # form bounds and defaults from the spec
    app.state.templates.env.globals["lessons_menu"] = lessons.numbered  # the top bar's lessons menu
    app.state.templates.env.globals["lesson_view"] = lessons.lesson_view  # the lesson a session was opened from
    app.mount("/static", StaticFiles(directory=ROOT / "static", check_dir=False), name="static")

    @app.exception_handler(SessionError)
    async def session_error(request: Request, exc: SessionError) -> JSONResponse:
        if isinstance(exc, Invalid):  # same shape as FastAPI's own 422s
            detail = [{"type": "value_error", "loc": ["body", *exc.loc], "msg": exc.message}]
            return JSONResponse({"detail": detail}, status_code=422)
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code)

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> JSONResponse:
        # This request failed; what was saved before is intact (every write is one transaction).
        return JSONResponse({"detail": f"the store is unavailable: {exc}"}, status_code=503)

    @app.exception_handler(ValidationError)
    async def spec_error(request: Request, exc: ValidationError) -> JSONResponse:
        # A partial spec (PATCH) is validated after merging: report it like a body validation error.
        errors = [{**e, "loc": ["body", *e["loc"]]} for e in exc.errors(include_url=False)]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    return app
