"""One session watched by many sockets: each frame is computed once and encoded once, then the same bytes
go to every viewer (a class following its presenter)."""

from __future__ import annotations

import contextlib
import json

from server.frames import decode_binary
from server.sessions import broadcast
from tests.conftest import SESSIONS

VIEWERS = 30


def _frame_epochs(ws, count):
    """Epochs of the next ``count`` frames on a socket (text messages in between are skipped)."""
    epochs = []
    while len(epochs) < count:
        message = ws.receive()
        if message.get("bytes") is not None:
            epochs.append(decode_binary(message["bytes"])[0]["epoch"])
    return epochs


def test_thirty_viewers_get_frames_computed_and_encoded_once(client, monkeypatch):
    body = client.post(SESSIONS, json={"speed": 300}).json()
    sid, token = body["id"], body["token"]
    computed, encoded = [], []
    frame_message, encode = broadcast.frame_message, broadcast.encode_binary
    monkeypatch.setattr(broadcast, "frame_message", lambda *a: computed.append(1) or frame_message(*a))
    monkeypatch.setattr(broadcast, "encode_binary", lambda *a: encoded.append(1) or encode(*a))
    with contextlib.ExitStack() as stack:
        viewers = [stack.enter_context(client.websocket_connect(f"/ws/sessions/{sid}")) for _ in range(VIEWERS)]
        for ws in viewers:
            assert ws.receive_json()["role"] == "viewer"
            assert _frame_epochs(ws, 1) == [0]
        computed.clear(), encoded.clear()
        assert client.post(f"{SESSIONS}/{sid}/play", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        seen = [_frame_epochs(ws, 3) for ws in viewers]
        client.post(f"{SESSIONS}/{sid}/pause", headers={"Authorization": f"Bearer {token}"})
        published = len(computed)
    delivered = sum(len(epochs) for epochs in seen)
    assert all(e > 0 for epochs in seen for e in epochs), "every viewer follows the training"
    assert published > 0 and delivered >= 3 * VIEWERS
    # every delivered frame came from one computation: far fewer computations than deliveries
    assert published < delivered / 3, (published, delivered)
    # and from one encoding per published frame, never one per socket
    assert len(encoded) <= published, (len(encoded), published)
    assert json.dumps(seen)  # the epochs are plain numbers a client can read
