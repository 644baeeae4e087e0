"""The websocket stream: hello, binary frames, controls and their acks, errors, viewers, disconnects."""

from __future__ import annotations

import json

import numpy as np
import pytest
from starlette.websockets import WebSocketDisconnect

from server.frames import decode_binary
from tests.conftest import SESSIONS


def _new(client, spec=None):
    r = client.post(SESSIONS, json=spec or {})
    assert r.status_code == 201
    body = r.json()
    return body["id"], body["token"]


def _next_text(ws, limit=500):
    """The next JSON text message, skipping binary frames."""
    for _ in range(limit):
        message = ws.receive()
        if message.get("text") is not None:
            return json.loads(message["text"])
    raise AssertionError("no text message arrived")


def _next_frame(ws, limit=500):
    for _ in range(limit):
        message = ws.receive()
        if message.get("bytes") is not None:
            return decode_binary(message["bytes"])
    raise AssertionError("no frame arrived")


def test_owner_gets_hello_then_a_frame(client):
    sid, token = _new(client)
    with client.websocket_connect(f"/ws/sessions/{sid}?token={token}") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["role"] == "owner"
        assert hello["state"]["id"] == sid and hello["state"]["epoch"] == 0
        header, arrays = decode_binary(ws.receive_bytes())
    assert header["type"] == "frame" and header["epoch"] == 0 and header["spec_version"] == 0
    assert header["layers"] == [4, 2] and header["output_scale"] == [-1.0, 1.0]
    assert arrays["output"].shape == (100, 100) and arrays["output"].dtype == np.uint8
    assert arrays["neurons"].shape == (6, 25, 25)
    assert arrays["w0"].shape == (2, 4) and arrays["grad_norms"].shape == (3,)
    weights = client.get(f"{SESSIONS}/{sid}/weights").json()["layers"]
    np.testing.assert_allclose(arrays["w0"], np.asarray(weights[0]["w"]), rtol=1e-6)


def test_token_cookie_makes_an_owner(client):
    sid, token = _new(client)
    client.cookies.set(f"neuroglass_{sid}", token)
    try:
        with client.websocket_connect(f"/ws/sessions/{sid}") as ws:
            assert ws.receive_json()["role"] == "owner"
    finally:
        client.cookies.clear()


def test_play_streams_frames_with_rising_epochs_and_pause_acks(client):
    sid, token = _new(client)
    with client.websocket_connect(f"/ws/sessions/{sid}?token={token}") as ws:
        ws.receive_json()
        _next_frame(ws)
        ws.send_json({"action": "play", "ref": "p1"})
        ack = _next_text(ws)
        assert ack["type"] == "ack" and ack["action"] == "play" and ack["ref"] == "p1"
        assert ack["state"]["status"] == "running"
        epochs = [_next_frame(ws)[0]["epoch"] for _ in range(5)]
        assert epochs == sorted(epochs) and epochs[-1] > epochs[0]
        ws.send_json({"action": "pause", "ref": "p2"})
        ack = _next_text(ws)
        assert ack["ref"] == "p2" and ack["state"]["status"] == "paused"
    assert client.get(f"{SESSIONS}/{sid}").json()["status"] == "paused"


def test_patch_ack_carries_spec_version_and_a_later_frame_reflects_it(client):
    sid, token = _new(client)
    with client.websocket_connect(f"/ws/sessions/{sid}?token={token}") as ws:
        ws.receive_json()
        _next_frame(ws)
        ws.send_json({"action": "play"})
        _next_text(ws)
        ws.send_json({"action": "patch", "spec": {"network": {"hidden": [{"units": 5}, {"units": 2}]}}, "ref": 7})
        ack = _next_text(ws)
        assert ack["type"] == "ack" and ack["ref"] == 7 and ack["spec_version"] == 1
        assert ack["changes"]["weights"]["initialized"] == 5 and ack["state"]["epoch"] >= 0
        for _ in range(200):
            header, arrays = _next_frame(ws)
            if header["spec_version"] >= 1:
                break
        assert header["layers"] == [5, 2] and arrays["neurons"].shape == (7, 25, 25)
        ws.send_json({"action": "pause"})
        _next_text(ws)


@pytest.mark.parametrize(
    ("message", "field", "words"),
    [
        ("not json", None, "JSON"),
        (json.dumps([1, 2]), None, "object"),
        (json.dumps({"action": "fly"}), ["action"], "unknown action"),
        (json.dumps({"action": "patch"}), ["spec"], "spec"),
        (json.dumps({"action": "patch", "spec": {"training": {"learning_rate": 100}}}), None, "less than"),
        (json.dumps({"action": "edit_weight", "layer": 9, "param": "w", "index": [0, 0], "value": 1}), ["layer"], ""),
        (json.dumps({"action": "edit_weight", "layer": 0, "param": "w", "index": [5, 0], "value": 1}), ["index"], ""),
        (json.dumps({"action": "edit_weight", "layer": 0, "param": "w", "index": [0, 0], "value": "x"}), ["value"], ""),
    ],
)
def test_bad_messages_get_an_error_and_the_socket_stays_usable(client, message, field, words):
    sid, token = _new(client)
    with client.websocket_connect(f"/ws/sessions/{sid}?token={token}") as ws:
        ws.receive_json()
        _next_frame(ws)
        ws.send_text(message)
        error = _next_text(ws)
        assert error["type"] == "error" and words in error["message"]
        if field is not None:
            assert error["field"] == field
        if "learning_rate" in message:
            assert error["field"] == ["spec", "training", "learning_rate"]
        ws.send_json({"action": "step", "ref": "after"})
        ack = _next_text(ws)
        assert ack["type"] == "ack" and ack["ref"] == "after" and ack["state"]["epoch"] == 1


def test_edit_weight_changes_the_weight_and_the_output(client):
    sid, token = _new(client)
    with client.websocket_connect(f"/ws/sessions/{sid}?token={token}") as ws:
        ws.receive_json()
        _, before = _next_frame(ws)
        ws.send_json({"action": "edit_weight", "layer": 2, "param": "b", "index": [0], "value": 3.0, "ref": 1})
        ack = _next_text(ws)
        assert ack["type"] == "ack" and ack["ref"] == 1
        _, after = _next_frame(ws)
    assert after["b2"][0] == pytest.approx(3.0)
    assert (after["output"].astype(int) - before["output"].astype(int)).mean() > 10  # pushed towards +1 (blue)
    assert client.get(f"{SESSIONS}/{sid}/weights").json()["layers"][2]["b"] == [3.0]


def test_viewers_follow_but_cannot_control(client):
    sid, token = _new(client)
    with (
        client.websocket_connect(f"/ws/sessions/{sid}?token={token}") as owner,
        client.websocket_connect(f"/ws/sessions/{sid}") as viewer,
        client.websocket_connect(f"/ws/sessions/{sid}?token=wrong") as other,
    ):
        owner.receive_json()
        _next_frame(owner)
        for ws in (viewer, other):
            assert ws.receive_json()["role"] == "viewer"
            _next_frame(ws)
        viewer.send_json({"action": "play", "ref": "v"})
        refusal = _next_text(viewer)
        assert refusal["type"] == "error" and "read-only" in refusal["message"] and refusal["ref"] == "v"
        assert client.get(f"{SESSIONS}/{sid}").json()["status"] == "paused"
        owner.send_json({"action": "play"})
        _next_text(owner)
        seen = [_next_frame(viewer)[0]["epoch"] for _ in range(4)]
        assert seen[-1] > seen[0]  # the viewer sees training the owner started
        _next_frame(other)
        owner.send_json({"action": "pause"})
        _next_text(owner)


def test_disconnect_frees_the_subscriber(client):
    sid, token = _new(client)
    manager = client.app.state.sessions
    with client.websocket_connect(f"/ws/sessions/{sid}?token={token}") as ws:
        ws.receive_json()
        _next_frame(ws)
        assert len(manager.sessions[sid].subscribers) == 1
    for _ in range(100):  # the server notices the close on its next receive
        if not manager.sessions[sid].subscribers:
            break
        client.get("/healthz")
    assert not manager.sessions[sid].subscribers


def test_unknown_session_closes_with_an_error(client):
    with client.websocket_connect("/ws/sessions/nope") as ws:
        error = ws.receive_json()
        assert error["type"] == "error" and "nope" in error["message"]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4404
