"""Classroom load: a real `python -m server` process and one asyncio load client over real websockets on
127.0.0.1. Many default-net sessions playing at once, each watched by its owner's socket; then many viewers
on one playing session, with per-message deflate negotiated and not. The client counts binary messages (every
binary message is a frame) and reads nothing else of them, so it stays cheap; its own CPU is reported.

Bounded: a fixed warm-up and window per run, a short search for the most sessions held at 20 frames/s that
stops at the first count that misses it or when its time is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
from websockets.asyncio.client import connect

from bench.ws import ROOT, _free_port

TARGET_FPS = 20.0
SESSIONS = 50  # the issue's classroom: fifty students' sessions at once
VIEWERS = 200  # and two hundred viewers on one presenter's session
WARM_S = 3.0  # after play: compiles, chunk sizes settle
WINDOW_S = 10.0
SEARCH = (10, 20, 30, 40, 50, 60, 80, 100)  # sessions tried for load_max_sessions_at_20fps, in order
SEARCH_WINDOW_S = 5.0
SEARCH_BUDGET_S = 90.0  # the search starts no new count after this long


@dataclass
class Server:
    base: str
    proc: psutil.Process

    @property
    def ws(self) -> str:
        return self.base.replace("http", "ws", 1)


@contextlib.contextmanager
def load_server(directory: str, **settings: str) -> Iterator[Server]:
    """A `python -m server` process on a free port that lets the load client (one address) hold every
    session it makes (and these NEUROGLASS_ ``settings``); yields it with its process (to read its RSS and
    CPU)."""
    port = _free_port()
    env = {
        **os.environ,
        "NEUROGLASS_COMPILE_CACHE_DIR": f"{directory}/jax",
        "NEUROGLASS_DATABASE_URL": f"sqlite+aiosqlite:///{directory}/load.sqlite",
        "NEUROGLASS_MAX_SESSIONS": "400",
        "NEUROGLASS_MAX_SESSIONS_PER_CLIENT": "400",
    } | {f"NEUROGLASS_{k.upper()}": v for k, v in settings.items()}
    cmd = [sys.executable, "-m", "server", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("load server did not start") from None
                time.sleep(0.1)
        yield Server(base, psutil.Process(proc.pid))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@dataclass
class Socket:
    """What one socket saw: the arrival time of every binary message, and their sizes."""

    arrivals: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    sample: bytes = b""


async def _watch(url: str, seen: Socket, play: bool, stop: asyncio.Event, compression: str | None) -> None:
    async with connect(url, max_size=None, compression=compression, open_timeout=120) as ws:
        if play:
            await ws.send(json.dumps({"action": "play"}))
        async for message in ws:
            if isinstance(message, bytes):
                seen.arrivals.append(time.perf_counter())
                seen.sizes.append(len(message))
                if not seen.sample:
                    seen.sample = message
            if stop.is_set():
                return


def _fps(seen: list[Socket], t0: float, t1: float) -> list[float]:
    return [sum(t0 <= t < t1 for t in s.arrivals) / (t1 - t0) for s in seen]


def _intervals(seen: list[Socket], t0: float, t1: float) -> list[float]:
    """Every gap between a socket's frames in the window, in ms, counting the window's edges (a socket
    that gets nothing for the whole window shows one gap as long as the window)."""
    gaps = []
    for s in seen:
        times = [t0, *(t for t in s.arrivals if t0 <= t < t1), t1]
        gaps += [1000 * (b - a) for a, b in zip(times, times[1:], strict=False)]
    return gaps


def _p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


async def _run(server: Server, urls: list[tuple[str, bool]], window: float, compression: str | None) -> dict[str, Any]:
    """Open every socket (those flagged send play), warm up, then measure one window."""
    stop, seen = asyncio.Event(), [Socket() for _ in urls]
    tasks = [
        asyncio.create_task(_watch(url, s, play, stop, compression)) for (url, play), s in zip(urls, seen, strict=True)
    ]
    await asyncio.sleep(WARM_S)
    me, cores = psutil.Process(), psutil.cpu_count() or 1
    server_cpu, my_cpu = server.proc.cpu_times(), me.cpu_times()
    psutil.cpu_percent()  # start the machine's count
    t0 = time.perf_counter()
    await asyncio.sleep(window)
    t1 = time.perf_counter()
    machine = psutil.cpu_percent()
    server_after, my_after, rss = server.proc.cpu_times(), me.cpu_times(), server.proc.memory_info().rss
    stop.set()
    for task in tasks:
        task.cancel()
    errors = [r for r in await asyncio.gather(*tasks, return_exceptions=True) if isinstance(r, Exception)]
    errors = [e for e in errors if not isinstance(e, asyncio.CancelledError)]
    fps = _fps(seen, t0, t1)
    cpu = lambda a, b: 100 * (b.user + b.system - a.user - a.system) / (t1 - t0)  # noqa: E731
    sizes = [n for s in seen for n in s.sizes]
    return {
        "min_fps": min(fps),
        "median_fps": statistics.median(fps),
        "p95_ms": _p95(_intervals(seen, t0, t1)),
        "rss_mb": rss / 2**20,
        "server_cpu_pct": cpu(server_cpu, server_after),
        "client_cpu_pct": cpu(my_cpu, my_after),
        "machine_cpu_pct": machine,
        "cores": cores,
        "errors": len(errors),
        "bytes_per_frame": statistics.mean(sizes) if sizes else 0,
        "sample": next((s.sample for s in seen if s.sample), b""),
    }


def _create(c: httpx.Client, n: int) -> list[tuple[str, str]]:
    out = []
    for _ in range(n):
        body = c.post("/api/v1/sessions", json={}).raise_for_status().json()
        out.append((body["id"], body["token"]))
    return out


def _delete(c: httpx.Client, made: list[tuple[str, str]]) -> None:
    for sid, token in made:
        c.delete(f"/api/v1/sessions/{sid}", headers={"Authorization": f"Bearer {token}"})


def sessions_run(server: Server, c: httpx.Client, n: int, window: float) -> dict[str, Any]:
    """``n`` default-net sessions made over REST, each played and watched by its owner's socket."""
    made = _create(c, n)
    try:
        urls = [(f"{server.ws}/ws/sessions/{sid}?token={token}", True) for sid, token in made]
        return asyncio.run(_run(server, urls, window, "deflate"))
    finally:
        _delete(c, made)


def viewers_run(server: Server, c: httpx.Client, n: int, compression: str | None) -> dict[str, Any]:
    """One session played by its owner's socket, watched by ``n`` read-only viewer sockets."""
    made = _create(c, 1)
    (sid, token) = made[0]
    try:
        owner = (f"{server.ws}/ws/sessions/{sid}?token={token}", True)
        urls = [owner] + [(f"{server.ws}/ws/sessions/{sid}", False)] * n
        return asyncio.run(_run(server, urls, WINDOW_S, compression))
    finally:
        _delete(c, made)


def max_sessions(server: Server, c: httpx.Client, known: dict[int, float]) -> int:
    """The most sessions in SEARCH (in order, up to the first miss) that each got ≥ 20 frames/s."""
    best, started = 0, time.monotonic()
    for n in SEARCH:
        if time.monotonic() - started > SEARCH_BUDGET_S:
            break
        fps = known[n] if n in known else sessions_run(server, c, n, SEARCH_WINDOW_S)["min_fps"]
        if fps < TARGET_FPS:
            break
        best = n
    return best


def _deflated(sample: bytes) -> int:
    """A frame's size on the wire with per-message deflate (what a browser negotiates): zlib's raw
    deflate, as the websocket extension does it (a fresh context: the first frame's cost)."""
    z = zlib.compressobj(wbits=-15)
    return len(z.compress(sample) + z.flush(zlib.Z_SYNC_FLUSH)) - 4


def load_figures() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d, load_server(d) as server:
        c = httpx.Client(base_url=server.base, timeout=120)
        sessions_run(server, c, 2, 1.0)  # compile the default net once
        # the first class on this server: its cohort programs compile in the background meanwhile
        first = sessions_run(server, c, SESSIONS, WINDOW_S)
        load = sessions_run(server, c, SESSIONS, WINDOW_S)
        plain = viewers_run(server, c, VIEWERS, "deflate")  # browsers offer deflate; this server declines it
        top = max_sessions(server, c, {SESSIONS: load["min_fps"]})
        c.close()
    with tempfile.TemporaryDirectory() as d, load_server(d, ws_compression="true") as server:
        c = httpx.Client(base_url=server.base, timeout=120)
        sessions_run(server, c, 2, 1.0)
        deflate = viewers_run(server, c, VIEWERS, "deflate")  # the alternative: each socket compresses each frame
        c.close()
    r = lambda x: round(x, 1)  # noqa: E731
    return {
        "load_sessions": SESSIONS,
        "load_min_frames_per_s": r(load["min_fps"]),
        "load_median_frames_per_s": r(load["median_fps"]),
        "load_p95_frame_interval_ms": r(load["p95_ms"]),
        "load_rss_mb": r(load["rss_mb"]),
        "load_server_cpu_pct": r(load["server_cpu_pct"]),
        "load_client_cpu_pct": r(load["client_cpu_pct"]),
        "load_machine_cpu_pct": r(load["machine_cpu_pct"]),
        "load_errors": load["errors"],
        "load_max_sessions_at_20fps": top,
        "load_first_min_frames_per_s": r(first["min_fps"]),
        "load_first_median_frames_per_s": r(first["median_fps"]),
        "viewers_on_one_session": VIEWERS,
        "viewer_min_frames_per_s": r(plain["min_fps"]),
        "viewer_median_frames_per_s": r(plain["median_fps"]),
        "viewer_p95_frame_interval_ms": r(plain["p95_ms"]),
        "viewer_server_cpu_pct": r(plain["server_cpu_pct"]),
        "viewer_client_cpu_pct": r(plain["client_cpu_pct"]),
        "viewer_rss_mb": r(plain["rss_mb"]),
        "viewer_bytes_per_frame": round(plain["bytes_per_frame"]),
        "viewer_min_frames_per_s_deflate": r(deflate["min_fps"]),
        "viewer_median_frames_per_s_deflate": r(deflate["median_fps"]),
        "viewer_server_cpu_pct_deflate": r(deflate["server_cpu_pct"]),
        "viewer_client_cpu_pct_deflate": r(deflate["client_cpu_pct"]),
        "viewer_bytes_per_frame_deflate": _deflated(deflate["sample"]) if deflate["sample"] else 0,
        "load_cores": load["cores"],
    }


if __name__ == "__main__":
    t = time.perf_counter()
    out = load_figures()
    out["load_bench_seconds"] = round(time.perf_counter() - t, 1)
    print(json.dumps(out))
