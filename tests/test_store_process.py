"""Saved work outlives the server process: a restart (SIGTERM), a kill -9 in the middle of saves, and a
database that cannot be reached at start-up — each on a real `python -m server` process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
SESSIONS = "/api/v1/sessions"
EXPERIMENTS = "/api/v1/experiments"
SPIRAL = {"dataset": {"name": "spiral", "n": 200}, "network": {"hidden": [{"units": 6, "activation": "tanh"}] * 2}}
POINTS = {"inputs": [[0.5, 1.0], [-2.0, 3.0], [4.0, -4.5]]}

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "NEUROGLASS_COMPILE_CACHE_DIR": str(tmp / "jax"),
        "NEUROGLASS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'store.sqlite'}",
        **extra,
    }


@contextmanager
def serving(tmp: Path, **extra: str) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    """`python -m server` on a free port with its store in ``tmp``; stopped with SIGTERM unless the body
    already stopped it."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=_env(tmp, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client.get("/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "server did not start within 60 s"
                time.sleep(0.2)
        yield client, proc
    finally:
        client.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def _auth(body: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['token']}"}


def test_saved_and_live_work_survive_a_restart(tmp_path):
    with serving(tmp_path) as (c, proc):
        made = c.post(SESSIONS, json=SPIRAL).json()
        sid, auth = made["id"], _auth(made)
        c.post(f"{SESSIONS}/{sid}/train", json={"epochs": 60}, headers=auth)
        saved = c.post(EXPERIMENTS, json={"session_id": sid, "name": "before the restart"}, headers=auth).json()
        before = c.post(f"{SESSIONS}/{sid}/predict", json=POINTS).json()
        c.post(f"{SESSIONS}/{sid}/train", json={"epochs": 15}, headers=auth)  # live, trained past the save
        live_before = c.post(f"{SESSIONS}/{sid}/predict", json=POINTS).json()
        c.post(f"{SESSIONS}/{sid}/play", headers=auth)  # playing when the server stops
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it shut down
    with serving(tmp_path) as (c, _):
        # the live session is back under the same id and token, paused where it stopped
        back = c.get(f"{SESSIONS}/{sid}").json()
        assert back["status"] == "paused" and back["epoch"] >= 75
        if back["epoch"] == 75:
            assert c.post(f"{SESSIONS}/{sid}/predict", json=POINTS).json() == live_before
        assert c.post(f"{SESSIONS}/{sid}/step", headers=auth).status_code == 200  # the old token still works
        assert c.post(f"{SESSIONS}/{sid}/step", headers={"Authorization": "Bearer wrong"}).status_code == 403
        # the saved experiment opens exactly
        listing = c.get(EXPERIMENTS).json()
        assert [e["id"] for e in listing["items"]] == [saved["id"]]
        opened = c.post(f"{EXPERIMENTS}/{saved['id']}/open").json()
        assert opened["epoch"] == 60
        assert c.post(f"{SESSIONS}/{opened['id']}/predict", json=POINTS).json() == before
        trained = c.post(f"{SESSIONS}/{opened['id']}/train", json={"epochs": 15}, headers=_auth(opened)).json()
        assert trained["epoch"] == 75
        assert c.post(f"{SESSIONS}/{opened['id']}/predict", json=POINTS).json() == live_before  # as if never stopped


def test_a_kill_minus_9_during_saves_loses_no_acknowledged_save(tmp_path):
    acknowledged: list[str] = []
    with serving(tmp_path) as (c, proc):
        made = c.post(SESSIONS, json=SPIRAL).json()
        sid, auth = made["id"], _auth(made)
        c.post(f"{SESSIONS}/{sid}/train", json={"epochs": 20}, headers=auth)
        stop = threading.Event()

        def burst() -> None:
            with httpx.Client(base_url=c.base_url, timeout=10) as b:
                for k in range(400):
                    if stop.is_set():
                        return
                    try:
                        r = b.post(EXPERIMENTS, json={"session_id": sid, "name": f"save {k}"}, headers=auth)
                    except httpx.TransportError:
                        return
                    if r.status_code == 201:
                        acknowledged.append(r.json()["id"])

        writers = [threading.Thread(target=burst) for _ in range(3)]
        for w in writers:
            w.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.kill()  # SIGKILL: no shutdown, saves in flight
        proc.wait(timeout=10)
        stop.set()
        for w in writers:
            w.join(timeout=15)
    assert len(acknowledged) >= 12
    with serving(tmp_path) as (c, _):
        listing = c.get(EXPERIMENTS, params={"limit": 100}).json()
        stored = {e["id"] for e in listing["items"]}
        assert listing["total"] == len(stored) and set(acknowledged) <= stored
        for experiment_id in stored:  # every stored row is whole: it opens
            r = c.post(f"{EXPERIMENTS}/{experiment_id}/open")
            assert r.status_code == 201, r.text
            assert r.json()["epoch"] == 20
            c.delete(f"{SESSIONS}/{r.json()['id']}", headers=_auth(r.json()))


def test_an_unreachable_database_stops_the_server_with_one_clear_line(tmp_path):
    url = f"postgresql+asyncpg://neuroglass:secret@127.0.0.1:{_free_port()}/neuroglass"
    proc = subprocess.run(
        [sys.executable, "-m", "server", "--port", str(_free_port())],
        cwd=ROOT,
        env=_env(tmp_path, NEUROGLASS_DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("neuroglass: cannot open the database postgresql+asyncpg://neuroglass:***@127.0.0.1")
    assert "secret" not in proc.stderr


def test_a_kill_minus_9_loses_at_most_the_last_write_period_of_a_live_session(tmp_path):
    period = {"NEUROGLASS_LIVE_WRITE_SECONDS": "0.5"}
    with serving(tmp_path, **period) as (c, proc):
        made = c.post(SESSIONS, json=SPIRAL).json()
        sid, auth = made["id"], _auth(made)
        c.post(f"{SESSIONS}/{sid}/train", json={"epochs": 40}, headers=auth)
        time.sleep(2.0)  # several write periods: the session at epoch 40 is in the store
        c.post(f"{SESSIONS}/{sid}/train", json={"epochs": 5}, headers=auth)
        proc.kill()  # no shutdown: at most the last period's training may be lost
        proc.wait(timeout=10)
    with serving(tmp_path, **period) as (c, _):
        back = c.get(f"{SESSIONS}/{sid}").json()
        assert back["status"] == "paused" and back["epoch"] in (40, 45)
        assert c.post(f"{SESSIONS}/{sid}/train", json={"epochs": 1}, headers=auth).status_code == 200


MIGRATE = "import asyncio, sys\nfrom server.store import Store\nasyncio.run(Store(sys.argv[1]).start())\n"


def test_servers_starting_together_on_a_fresh_database_migrate_it_once(database_url: str) -> None:
    """Replicas (or test workers) that start at the same moment on one new database all come up: the
    schema is created by one of them while the others wait, never twice."""
    procs = [
        subprocess.Popen([sys.executable, "-c", MIGRATE, database_url], cwd=ROOT, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
