"""REST training as a script meets it: a real server process, an httpx client keeping its connection,
``POST .../train`` with the answer's history recorded; beside it, the same training straight through the
engine in this process (what ``mlp_*_epochs_per_s`` measure)."""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

import httpx

from bench.ws import BIGGEST, server

SESSIONS = "/api/v1/sessions"


def _ms(c: httpx.Client, url: str, body: dict[str, Any], auth: dict[str, str], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        c.post(url, json=body, headers=auth).raise_for_status()
        out.append(1000 * (time.perf_counter() - t))
    return out


def _train_url(c: httpx.Client, spec: dict[str, Any]) -> tuple[str, dict[str, str]]:
    made = c.post(SESSIONS, json=spec).raise_for_status().json()
    auth = {"Authorization": f"Bearer {made['token']}"}
    url = f"{SESSIONS}/{made['id']}/train"
    c.post(url, json={"epochs": 2000}, headers=auth).raise_for_status()  # compiled, warm
    return url, auth


def rest_figures(epochs: int = 2000) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as cache, server(cache) as base, httpx.Client(base_url=base, timeout=120) as c:
        default, biggest = _train_url(c, {}), _train_url(c, BIGGEST)
        long_d = min(_ms(c, default[0], {"epochs": epochs}, default[1], 15))
        long_b = min(_ms(c, biggest[0], {"epochs": epochs}, biggest[1], 7))
        short = _ms(c, default[0], {"epochs": 100}, default[1], 200)
        ping = []  # what any call costs on this loopback: the floor under the train calls
        for _ in range(100):
            t = time.perf_counter()
            c.get("/healthz").raise_for_status()
            ping.append(1000 * (time.perf_counter() - t))
        records = c.get(default[0].replace("/train", "/history"), headers=default[1]).json()
    return {
        "rest_train_default_epochs_per_s": round(epochs / (long_d / 1000)),
        "rest_train_biggest_epochs_per_s": round(epochs / (long_b / 1000)),
        "rest_train_100_ms": round(statistics.median(short), 2),
        "rest_train_100_ms_p95": round(statistics.quantiles(short, n=20)[-1], 2),
        "rest_healthz_ms": round(statistics.median(ping), 2),
        "rest_train_history_records": len(records["records"]),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(rest_figures()))
