"""Saved work, measured as a user meets it (REST calls through the app, a real SQLite store on disk):
saving and opening experiments, the experiments list with 10,000 saved, and what checkpoints cost training."""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert

from server.app import create_app
from server.config import Settings
from server.presets import PRESETS
from server.store.models import Experiment, now

SESSIONS = "/api/v1/sessions"
EXPERIMENTS = "/api/v1/experiments"
BIGGEST = {
    "dataset": {"name": "spiral"},
    "features": ["x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2"],
    "network": {"hidden": [{"units": 8, "activation": "tanh"}] * 6},
}


def _client(tmp: Path, **settings: Any) -> TestClient:
    url = f"sqlite+aiosqlite:///{tmp / (uuid.uuid4().hex + '.sqlite')}"
    return TestClient(create_app(Settings(compile_cache_dir=None, database_url=url, **settings)))


def _ms(fn: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - t))
    return out


def _session(c: TestClient, spec: dict[str, Any], epochs: int) -> tuple[str, dict[str, str]]:
    made = c.post(SESSIONS, json=spec).json()
    auth = {"Authorization": f"Bearer {made['token']}"}
    c.post(f"{SESSIONS}/{made['id']}/train", json={"epochs": epochs}, headers=auth)
    return made["id"], auth


def save_open_ms(c: TestClient, spec: dict[str, Any], epochs: int) -> tuple[float, float]:
    """Median POST /experiments and POST /experiments/{id}/open (each opened session deleted again)."""
    sid, auth = _session(c, spec, epochs)
    saved: list[str] = []

    def save() -> None:
        r = c.post(EXPERIMENTS, json={"session_id": sid, "name": "bench"}, headers=auth)
        saved.append(r.json()["id"])

    save()  # first call: thumbnail program compiled
    save_ms = statistics.median(_ms(save, 15))
    opened: list[dict[str, Any]] = []
    manager = c.app.state.sessions
    times = []
    for _ in range(16):
        t = time.perf_counter()
        opened.append(c.post(f"{EXPERIMENTS}/{saved[-1]}/open").json())
        times.append(1000 * (time.perf_counter() - t))
        # the new session compiles ahead in the background (runner.warm): let it finish before the next
        # call, as it does while a user looks at the page that opened
        c.portal.call(manager.runner.warmed, manager.get(opened[-1]["id"]))
    open_ms = statistics.median(times[1:])
    for o in opened:
        c.delete(f"{SESSIONS}/{o['id']}", headers={"Authorization": f"Bearer {o['token']}"})
    return save_ms, open_ms


def list_p95_ms(c: TestClient, rows: int = 10_000) -> tuple[float, float]:
    """p95 of GET /experiments (a page of 24 at random offsets; and a name search) with ``rows`` saved."""
    store = c.app.state.sessions.library.store
    sid, auth = _session(c, {}, 1)
    made = c.post(EXPERIMENTS, json={"session_id": sid, "name": "template"}, headers=auth).json()
    blob = c.portal.call(store.experiment_state, made["id"])
    picture = c.get(made["thumbnail_url"]).content

    async def fill() -> None:
        words = ["spiral", "circle", "xor", "gauss", "moons", "deep", "relu", "tanh"]
        values = [
            {
                "id": uuid.uuid4().hex,
                "slug": uuid.uuid4().hex[:11],
                "name": f"{words[k % 8]} run {k}",
                "name_folded": f"{words[k % 8]} run {k}",
                "description": "",
                "owner_hash": "0" * 64,
                "kind": "mlp",
                "spec": made["spec"],
                "epoch": k,
                "metrics": made["metrics"],
                "parent_id": None,
                "created_at": now(),
                "updated_at": now(),
                "state": blob,
                "thumbnail": picture,
            }
            for k in range(rows)
        ]
        async with store.engine.begin() as conn:
            await conn.execute(insert(Experiment), values)

    c.portal.call(fill)
    pages = [(k * 7919) % (rows // 24) for k in range(200)]
    paged = _ms(lambda: c.get(EXPERIMENTS, params={"limit": 24, "offset": 24 * pages.pop()}), 200)
    searched = _ms(lambda: c.get(EXPERIMENTS, params={"limit": 24, "q": "spiral run 1"}), 100)
    return statistics.quantiles(paged, n=20)[-1], statistics.quantiles(searched, n=20)[-1]


def train_epochs_per_s(tmp: Path, epochs: int = 2000, rounds: int = 11) -> tuple[float, float]:
    """POST .../train of ``epochs`` on the default net with time travel on and off: the two servers take
    turns, so a slow moment of the machine falls on both; best of ``rounds`` each."""
    with _client(tmp, max_checkpoints=100) as on, _client(tmp, max_checkpoints=0) as off:
        calls = []
        for c in (on, off):
            sid, auth = _session(c, {}, 10)
            calls.append((c, f"{SESSIONS}/{sid}/train", auth))
        best = [float("inf"), float("inf")]
        for _ in range(rounds):
            for k, (c, url, auth) in enumerate(calls):
                best[k] = min(
                    best[k], *_ms(lambda c=c, url=url, auth=auth: c.post(url, json={"epochs": epochs}, headers=auth), 1)
                )
    return epochs / (best[0] / 1000), epochs / (best[1] / 1000)


def store_figures() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        figures: dict[str, float] = {}
        with _client(tmp) as c:
            mlp_save, mlp_open = save_open_ms(c, BIGGEST, 200)
            cnn_save, cnn_open = save_open_ms(c, PRESETS["cnn-convnetjs"]["spec"], 1)
            paged, searched = list_p95_ms(c)
        figures |= {
            "save_ms_mlp_biggest": round(mlp_save, 2),
            "open_ms_mlp_biggest": round(mlp_open, 2),
            "save_ms_cnn_convnetjs": round(cnn_save, 2),
            "open_ms_cnn_convnetjs": round(cnn_open, 2),
            "experiments_list_ms_p95": round(paged, 2),
            "experiments_search_ms_p95": round(searched, 2),
        }
        on, off = train_epochs_per_s(tmp)
        figures["rest_train_default_epochs_per_s_checkpoints_on"] = round(on)
        figures["rest_train_default_epochs_per_s_checkpoints_off"] = round(off)
        figures["checkpoint_overhead_pct"] = round(100 * (off - on) / off, 1)
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(store_figures()))
