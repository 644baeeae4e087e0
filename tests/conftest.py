"""Shared fixtures: an app on explicit settings, a TestClient whose lifespan runs, session helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.config import Settings

SESSIONS = "/api/v1/sessions"

# Explicit limits, so NEUROGLASS_* variables in the environment cannot change what the tests see.
BASE_SETTINGS: dict[str, Any] = {
    "compile_cache_dir": None,
    "allow_download": False,  # tests never reach for the network
    "max_sessions": 1000,
    "max_points": 5000,
    "max_train_epochs": 100_000,
    "max_predict_points": 10_000,
    "session_idle_seconds": 3600.0,
    "frame_rate": 30.0,
    "history_limit": 4000,
}


def make_settings(**overrides: Any) -> Settings:
    return Settings(**{**BASE_SETTINGS, **overrides})


def create_session(client: TestClient, spec: dict[str, Any] | None = None) -> tuple[str, dict[str, str]]:
    """POST a session (default spec when ``spec`` is None); returns (id, auth headers)."""
    r = client.post(SESSIONS) if spec is None else client.post(SESSIONS, json=spec)
    assert r.status_code == 201, r.text
    body = r.json()
    return body["id"], {"Authorization": f"Bearer {body['token']}"}


@pytest.fixture(scope="module")
def make_client() -> Iterator[Callable[..., TestClient]]:
    """Factory of started clients (lifespan entered) on settings overrides; all closed at module end."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> TestClient:
            app = create_app(make_settings(**overrides))
            return stack.enter_context(TestClient(app))

        yield make


@pytest.fixture(scope="module")
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """A client on the default limits, shared by a module (compiled functions are shared anyway)."""
    return make_client()


@pytest.fixture
def new_session(client: TestClient) -> Callable[..., tuple[str, dict[str, str]]]:
    """``new_session(spec=None)`` → (id, auth headers) on the shared client."""

    def make(spec: dict[str, Any] | None = None) -> tuple[str, dict[str, str]]:
        return create_session(client, spec)

    return make
