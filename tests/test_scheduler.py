"""Taking turns (server/sessions/scheduler.py): more sessions playing than there are worker threads share them
fairly — every one trains, none gets much more than the others — and a session nobody watches makes no frames
(its metrics come from its training program's records)."""

from __future__ import annotations

import time

from server.sessions import broadcast
from tests.conftest import create_session

PLAYING = 8  # four times the two worker threads: the loops take turns


def _epochs(client, sids: list[str]) -> list[int]:
    return [client.get(f"/api/v1/sessions/{sid}").json()["epoch"] for sid in sids]


def test_sessions_playing_past_the_threads_take_fair_turns_and_unwatched_ones_make_no_frames(
    make_client, monkeypatch
) -> None:
    client = make_client(worker_threads=2)
    framed: list[str] = []
    frame_message = broadcast.frame_message
    monkeypatch.setattr(broadcast, "frame_message", lambda s, *a: framed.append(s.id) or frame_message(s, *a))
    sessions = [create_session(client) for _ in range(PLAYING)]
    sids = [sid for sid, _ in sessions]
    for sid, auth in sessions:
        assert client.post(f"/api/v1/sessions/{sid}/play", headers=auth).status_code == 200
    deadline = time.monotonic() + 120  # every loop past its first (compiling) chunk
    while min(_epochs(client, sids)) < 50:
        assert time.monotonic() < deadline, _epochs(client, sids)
        time.sleep(0.1)
    before = _epochs(client, sids)
    framed.clear()
    time.sleep(3.0)
    after = _epochs(client, sids)
    while_playing = set(framed)
    for sid, auth in sessions:
        client.post(f"/api/v1/sessions/{sid}/pause", headers=auth)
    gained = [b - a for a, b in zip(before, after, strict=True)]
    assert min(gained) > 0, gained
    # the same network everywhere: the same share of the threads, so about the same epochs each
    assert min(gained) >= 0.4 * max(gained), gained
    assert not while_playing & set(sids), "REST plays with no socket: no frame computed for them while they train"
    state = client.get(f"/api/v1/sessions/{sids[0]}").json()
    assert state["metrics"]["train_loss"] is not None  # from the program's records
