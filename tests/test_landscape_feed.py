"""The landscape panel over the session's socket (``watch_landscape``, docs/websocket.md): one computation
per change of the weights, encoded once, the same bytes to every socket that watches it (owner and viewers
alike); a new step brings a new snapshot; a fifth distinct setting is refused on a socket that stays open;
closing the last watcher stops the computing."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from server.frames import decode_binary
from tests.conftest import SESSIONS

WANT = {"action": "watch_landscape", "open": True, "directions": "random", "resolution": 11}


class Socket:
    """A test socket that keeps the landscape snapshots it passes while waiting for an answer."""

    def __init__(self, ws: Any):
        self.ws, self.snapshots = ws, []

    def _read(self) -> dict[str, Any] | None:
        message = self.ws.receive()
        if message.get("bytes") is not None:
            header, _ = decode_binary(message["bytes"])
            if header["type"] == "landscape":
                self.snapshots.append((header, message["bytes"]))
            return None
        return json.loads(message["text"]) if message.get("text") else None

    def answer(self, ref: str) -> dict[str, Any]:
        while (body := self._read()) is None or body.get("ref") != ref:
            pass
        return body

    def snapshot(self) -> tuple[dict[str, Any], bytes]:
        while not self.snapshots:
            self._read()
        return self.snapshots.pop(0)

    def send(self, body: dict[str, Any]) -> None:
        self.ws.send_json(body)


def test_watchers_share_one_computed_snapshot_per_change_of_the_weights(client) -> None:
    body = client.post(SESSIONS, json={"dataset": {"n": 100}}).json()
    sid, auth = body["id"], {"Authorization": f"Bearer {body['token']}"}
    assert client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 20}, headers=auth).is_success
    feed = client.app.state.sessions.landscape_feed  # type: ignore[attr-defined]
    before = dict(feed.computed)
    with contextlib.ExitStack() as stack:
        owner = Socket(stack.enter_context(client.websocket_connect(f"/ws/sessions/{sid}?token={body['token']}")))
        viewers = [Socket(stack.enter_context(client.websocket_connect(f"/ws/sessions/{sid}"))) for _ in range(5)]
        sockets = [owner, *viewers]
        for i, ws in enumerate(sockets):
            ws.send(WANT | {"ref": f"w{i}"})
            ack = ws.answer(f"w{i}")
            assert ack["type"] == "ack" and ack["open"] is True, ack
        snapshots = [ws.snapshot() for ws in sockets]
        header, data = snapshots[0]
        assert header["epoch"] == 20 and header["slice"]["resolution"] == 11 and not header["errors"]
        assert {"line", "sharpness", "gradients"} <= set(header)
        assert all(b == data for _, b in snapshots), "every watcher gets the same bytes"
        computed = {k: feed.computed[k] - before.get(k, 0) for k in ("slice", "line", "sharpness", "encoded")}
        assert computed == {"slice": 1, "line": 1, "sharpness": 1, "encoded": 1}, computed
        # the weights change: one new round, again for everyone
        owner.send({"action": "step", "ref": "s"})
        assert owner.answer("s")["type"] == "ack"
        again = [ws.snapshot() for ws in sockets]
        assert {h["epoch"] for h, _ in again} == {21} and len({b for _, b in again}) == 1
        assert feed.computed["slice"] - before.get("slice", 0) == 2
        # four settings at most per session: a fifth is refused, and the socket stays open
        for i, resolution in enumerate((13, 15, 17)):
            viewers[i].send(WANT | {"resolution": resolution, "ref": f"r{i}"})
            assert viewers[i].answer(f"r{i}")["type"] == "ack"
        viewers[3].send(WANT | {"resolution": 19, "ref": "fifth"})
        refused = viewers[3].answer("fifth")
        assert refused["type"] == "error" and refused["field"] == ["directions"], refused
        assert "4 different settings" in refused["message"]
        viewers[3].send({"action": "watch_landscape", "open": False, "ref": "off"})
        assert viewers[3].answer("off")["type"] == "ack"  # still open, still answering
    deadline = time.monotonic() + 10
    while feed.watching(client.app.state.sessions.get(sid)) and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)
    assert sid not in feed.feeds, "the last watcher gone, nothing is computed for the session"
