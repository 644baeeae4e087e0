"""Websocket figures: a real server process, a real websocket client, the biggest MLP playing at full speed."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from websockets.sync.client import connect

from server.frames import decode_binary

ROOT = Path(__file__).resolve().parents[1]
ALL_FEATURES = ["x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2"]
BIGGEST = {
    "dataset": {"name": "spiral"},
    "features": ALL_FEATURES,
    "network": {"hidden": [{"units": 8, "activation": "tanh"}] * 6},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(cache_dir: str) -> Iterator[str]:
    """A `python -m server` process on a free port; yields its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "NEUROGLASS_COMPILE_CACHE_DIR": cache_dir,
        "NEUROGLASS_DATABASE_URL": f"sqlite+aiosqlite:///{cache_dir}/bench-store.sqlite",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("bench server did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _session(base: str, spec: dict) -> tuple[str, str]:
    body = httpx.post(f"{base}/api/v1/sessions", json=spec, timeout=120).json()
    return body["id"], body["token"]


def _ws_url(base: str, sid: str, token: str) -> str:
    return base.replace("http", "ws", 1) + f"/ws/sessions/{sid}?token={token}"


def _recv(ws, timeout: float = 30.0):
    """Next message: ("frame", header, nbytes) or ("text", payload, nbytes)."""
    message = ws.recv(timeout=timeout)
    if isinstance(message, bytes):
        header, _ = decode_binary(message)
        return "frame", header, len(message)
    return "text", json.loads(message), len(message)


def _play_until_trained(base: str, sid: str, token: str, t0: float | None, settle: bool) -> float:
    """Send play; seconds from ``t0`` (None = from sending play) to the first frame showing training.
    ``settle`` first reads the hello and the current frame. The session is deleted afterwards, so that it
    does not train on during the next measurement."""
    with connect(_ws_url(base, sid, token), max_size=None) as ws:
        if settle:
            _recv(ws)  # hello
            _recv(ws)  # current frame
        t = time.perf_counter() if t0 is None else t0
        ws.send(json.dumps({"action": "play"}))
        while True:
            kind, payload, _ = _recv(ws)
            if kind == "frame" and payload["epoch"] > 0:
                elapsed = time.perf_counter() - t
                break
    httpx.delete(f"{base}/api/v1/sessions/{sid}", headers={"Authorization": f"Bearer {token}"}, timeout=60)
    return elapsed


def first_frame_after_play(base: str, spec: dict) -> float:
    """Seconds from sending play on a fresh architecture to the first frame that shows training."""
    sid, token = _session(base, spec)
    return _play_until_trained(base, sid, token, None, settle=True)


def first_frame_from_create(base: str, spec: dict) -> float:
    """Seconds from creating a session of a fresh architecture to the first frame that shows training, with
    play sent as soon as the socket opens (the compile done in the background at creation cannot hide)."""
    t = time.perf_counter()
    sid, token = _session(base, spec)
    return _play_until_trained(base, sid, token, t, settle=False)


def stream_figures(base: str, seconds: float = 4.0, patches: int = 40) -> dict[str, float]:
    """Frames/s, visible epochs/s and bytes/frame while playing; then patch → reflecting frame latency."""
    sid, token = _session(base, {**BIGGEST, "speed": None})
    figures: dict[str, float] = {}
    with connect(_ws_url(base, sid, token), max_size=None) as ws:
        _recv(ws)
        _recv(ws)
        ws.send(json.dumps({"action": "play"}))
        while _recv(ws)[0] != "frame" or False:
            pass
        # warm: skip the first second (compilation, chunk size settling)
        end = time.perf_counter() + 1.0
        while time.perf_counter() < end:
            _recv(ws)
        frames, sizes, t0, e0 = 0, [], time.perf_counter(), None
        e1 = None
        while time.perf_counter() - t0 < seconds:
            kind, payload, n = _recv(ws)
            if kind == "frame":
                frames += 1
                sizes.append(n)
                e0 = payload["epoch"] if e0 is None else e0
                e1 = payload["epoch"]
        elapsed = time.perf_counter() - t0
        figures["ws_frames_per_s"] = round(frames / elapsed, 1)
        figures["ws_epochs_per_s_visible"] = round((e1 - e0) / elapsed)
        figures["ws_bytes_per_frame"] = round(statistics.mean(sizes))
        figures["ws_bytes_per_frame_max"] = max(sizes)

        latencies = []
        for i in range(patches):
            lr = 0.01 if i % 2 else 0.02
            t = time.perf_counter()
            ws.send(json.dumps({"action": "patch", "spec": {"training": {"learning_rate": lr}}, "ref": i}))
            version = None
            while True:
                kind, payload, _ = _recv(ws)
                if kind == "text" and payload.get("ref") == i:
                    version = payload["spec_version"]
                elif kind == "frame" and version is not None and payload["spec_version"] >= version:
                    latencies.append(1000 * (time.perf_counter() - t))
                    break
        latencies.sort()
        figures["ws_patch_to_frame_ms_p50"] = round(statistics.median(latencies), 1)
        figures["ws_patch_to_frame_ms_p95"] = round(latencies[int(0.95 * (len(latencies) - 1))], 1)
        ws.send(json.dumps({"action": "pause"}))
    return figures


LIVE_RESOLUTION = 31  # the landscape panel's resolution while training (51 once paused): coarse to fine


def landscape_live_figures(base: str, seconds: float = 4.0) -> dict[str, float]:
    """The landscape panel while the biggest net plays at full speed: slices refreshed per second by a
    client that asks for the next as soon as one arrives (as the page does), and the frames per second the
    websocket still delivers meanwhile."""
    sid, token = _session(base, {**BIGGEST, "speed": None})
    url = f"{base}/api/v1/sessions/{sid}/landscape"
    figures: dict[str, float] = {}
    with connect(_ws_url(base, sid, token), max_size=None) as ws, httpx.Client(timeout=60) as http:
        _recv(ws)
        _recv(ws)
        ws.send(json.dumps({"action": "play"}))
        for resolution in (51, LIVE_RESOLUTION):  # compile both before measuring
            http.get(url, params={"resolution": resolution}).raise_for_status()
        for resolution in (LIVE_RESOLUTION, 51):
            done, frames, stop = [0], [0], threading.Event()

            def refresh(res=resolution, done=done, stop=stop):
                while not stop.is_set():
                    http.get(url, params={"resolution": res}).raise_for_status()
                    done[0] += 1

            worker = threading.Thread(target=refresh)
            t0 = time.perf_counter()
            worker.start()
            while time.perf_counter() - t0 < seconds:
                if _recv(ws)[0] == "frame":
                    frames[0] += 1
            stop.set()
            elapsed = time.perf_counter() - t0
            worker.join()
            suffix = "" if resolution == LIVE_RESOLUTION else f"_{resolution}"
            figures[f"landscape_refresh_hz{suffix}"] = round(done[0] / elapsed, 1)
            figures[f"landscape_frames_per_s{suffix}"] = round(frames[0] / elapsed, 1)
        ws.send(json.dumps({"action": "pause"}))
    httpx.delete(f"{base}/api/v1/sessions/{sid}", headers={"Authorization": f"Bearer {token}"}, timeout=60)
    return figures


def ws_figures(cache_dir: str) -> dict[str, float]:
    """All websocket figures: cold start on an empty compilation cache, cached start, then streaming."""
    figures: dict[str, float] = {}
    other = {**BIGGEST, "network": {"hidden": [{"units": 8, "activation": "relu"}] * 6}}  # another architecture
    with server(cache_dir) as base:
        figures["first_frame_s_cold"] = round(first_frame_after_play(base, BIGGEST), 3)
        figures["create_to_first_frame_s_cold"] = round(first_frame_from_create(base, other), 3)
    with server(cache_dir) as base:
        figures["first_frame_s_cached"] = round(first_frame_after_play(base, BIGGEST), 3)
        figures["create_to_first_frame_s_cached"] = round(first_frame_from_create(base, other), 3)
        figures.update(stream_figures(base))
        figures.update(landscape_live_figures(base))
    return figures


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        print(json.dumps(ws_figures(d)))
