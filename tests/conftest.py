"""Shared fixtures: an app on explicit settings, a TestClient whose lifespan runs, session helpers."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
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
    "max_sessions_per_client": 1000,  # every TestClient request comes from one address ("testclient")
    "max_points": 5000,
    "max_train_epochs": 100_000,
    "max_predict_points": 10_000,
    "session_idle_seconds": 3600.0,
    "frame_rate": 30.0,
    "history_limit": 4000,
}


STORE_DIR = Path(tempfile.mkdtemp(prefix="neuroglass-store-"))


def fresh_database_url() -> str:
    """An embedded SQLite file of its own: an app never restores another test's live sessions."""
    return f"sqlite+aiosqlite:///{STORE_DIR / uuid.uuid4().hex}.sqlite"


def make_settings(**overrides: Any) -> Settings:
    return Settings(**{**BASE_SETTINGS, "database_url": fresh_database_url(), **overrides})


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


# ------------------------------------------------------------------------------- a real PostgreSQL server


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server of its own (Debian's postgresql package) on a free port, for this test run;
    yields the asyncpg URL of its maintenance database. Skips where PostgreSQL is not installed, except in
    CI, where it must run."""
    bindir = _pg_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: .ci/run installs Debian's postgresql")
        pytest.skip("PostgreSQL is not installed here (apt-get install -y postgresql)")
    root = Path(tempfile.mkdtemp(prefix="neuroglass-pg-"))  # not under pytest's root-only tmp: postgres reads it
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as the package's postgres user
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT, "check": True}
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "neuroglass", "-A", "trust"], **quiet)
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = root / "server.log"
    pg_ctl = [*run_as, str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run([*pg_ctl, "-o", options, "-l", str(log), "-w", "start"], **quiet)
    try:
        yield f"postgresql+asyncpg://neuroglass@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "stop"], **quiet)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the test run's PostgreSQL server."""
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:16]}"
    dsn = postgres_server.replace("postgresql+asyncpg", "postgresql")

    async def create() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()

    asyncio.run(create())
    return postgres_server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The store's URL on each backend users have: the embedded SQLite file and a real PostgreSQL server."""
    if request.param == "sqlite":
        return fresh_database_url()
    return str(request.getfixturevalue("postgres_url"))
