"""`python -m server` really serves: the health check and the API docs, as `make run` promises."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_python_m_server_serves_healthz_and_docs(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "NEUROGLASS_COMPILE_CACHE_DIR": str(tmp_path / "jax"),
        "NEUROGLASS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite'}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "server did not start within 60 s"
                time.sleep(0.2)
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        docs = httpx.get(f"{base}/docs", timeout=5)
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        created = httpx.post(f"{base}/api/v1/sessions", json={}, timeout=60)
        assert created.status_code == 201 and created.json()["status"] == "paused"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
