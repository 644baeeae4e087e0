"""Holding a class on one machine: a session played from a page (its socket, or the page's run buttons)
pauses by itself once nobody has watched it for the grace period, saying why; a watcher coming back in time
keeps it running; one played over REST runs on unwatched until paused."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SESSIONS

GRACE = 0.6


@pytest.fixture(scope="module")
def quick(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(unwatched_pause_seconds=GRACE, warm_start=False)


def _new(client: TestClient) -> tuple[str, str]:
    body = client.post(SESSIONS, json={"speed": 50}).json()
    return body["id"], body["token"]


def _state(client: TestClient, sid: str) -> dict[str, Any]:
    state: dict[str, Any] = client.get(f"{SESSIONS}/{sid}").json()
    return state


def _until(client: TestClient, sid: str, check: Callable[[dict[str, Any]], bool], seconds: float = 30) -> dict:
    deadline = time.monotonic() + seconds
    while not check(state := _state(client, sid)):
        assert time.monotonic() < deadline, state["status"]
        time.sleep(0.05)
    return state


def _play_and_leave(client: TestClient, sid: str, token: str) -> None:
    with client.websocket_connect(f"/ws/sessions/{sid}?token={token}") as ws:
        ws.receive_json()  # hello
        ws.send_json({"action": "play"})
        _until(client, sid, lambda s: s["epoch"] > 0)


def test_a_session_played_from_its_socket_pauses_once_nobody_watches(quick: TestClient) -> None:
    sid, token = _new(quick)
    _play_and_leave(quick, sid, token)
    left = time.monotonic()
    assert _state(quick, sid)["status"] == "running", "it goes on through the grace period"
    state = _until(quick, sid, lambda s: s["status"] == "paused")
    assert time.monotonic() - left >= GRACE * 0.9
    assert "nobody watched it" in state["stopped"]
    epoch = state["epoch"]
    time.sleep(0.3)
    assert _state(quick, sid)["epoch"] == epoch, "paused means no more training"


def test_a_watcher_back_within_the_grace_period_keeps_it_running(quick: TestClient) -> None:
    sid, token = _new(quick)
    _play_and_leave(quick, sid, token)
    with quick.websocket_connect(f"/ws/sessions/{sid}") as ws:  # a viewer is a watcher too
        ws.receive_json()
        time.sleep(GRACE * 2)
        assert _state(quick, sid)["status"] == "running"
    _until(quick, sid, lambda s: s["status"] == "paused")  # and once it goes too, the pause comes


def test_a_session_played_over_rest_runs_on_unwatched(quick: TestClient) -> None:
    sid, token = _new(quick)
    auth = {"Authorization": f"Bearer {token}"}
    assert quick.post(f"{SESSIONS}/{sid}/play", headers=auth).status_code == 200
    time.sleep(GRACE * 2.5)
    state = _state(quick, sid)
    assert state["status"] == "running" and state["stopped"] is None
    quick.post(f"{SESSIONS}/{sid}/pause", headers=auth)


def test_the_pages_play_button_without_a_socket_pauses_too(quick: TestClient) -> None:
    sid, token = _new(quick)
    quick.cookies.set(f"neuroglass_{sid}", token)
    assert quick.post(f"/ui/sessions/{sid}/run/play").status_code == 200
    _until(quick, sid, lambda s: s["epoch"] > 0)
    state = _until(quick, sid, lambda s: s["status"] == "paused")
    assert "nobody watched it" in state["stopped"]
