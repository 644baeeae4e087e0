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
    """The next JSON text message, skipping binary frames and status notes (a "compiling" note may come
    whenever a new network's program compiles, before or after the answer to an action)."""
    for _ in range(limit):
        message = ws.receive()
        if message.get("text") is not None:
            body = json.loads(message["text"])
            if body.get("type") != "status":
                return body
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


# ---- malformed controls: every one gets an error, and the socket (and the server) carry on ----

_WRONG = [[], ["w"], {"a": 1}, "x", "", None, True, False, 10**400, -1, 1.5, "NaN", "nan", "Infinity", "-Infinity"]
_EDIT = {"action": "edit_weight", "layer": 0, "param": "w", "index": [0, 0], "value": 1}


def _still_alive(client, ws, ref):
    """The socket answers a pause with an ack (skipping frames), and the server still serves /healthz."""
    ws.send_json({"action": "pause", "ref": ref})
    ack = _next_text(ws)
    assert ack["type"] == "ack" and ack["action"] == "pause" and ack["ref"] == ref, ack
    assert client.get("/healthz").status_code == 200


def _send_raw(ws, message):
    if isinstance(message, bytes):
        ws.send_bytes(message)
    elif isinstance(message, str):
        ws.send_text(message)
    else:
        ws.send_text(json.dumps(message))  # Python's json writes 1e400 as Infinity, NaN as NaN


def _expect_errors(client, token_sid, cases):
    """Send each (message, field) on one owner socket: an error naming ``field`` (when not None), then alive."""
    sid, token = token_sid
    with client.websocket_connect(f"/ws/sessions/{sid}?token={token}") as ws:
        ws.receive_json()
        _next_frame(ws)
        for k, (message, field) in enumerate(cases):
            _send_raw(ws, message)
            error = _next_text(ws)
            assert error["type"] == "error" and error["message"], (message, error)
            if field is not None:
                assert error["field"] is not None and error["field"][: len(field)] == field, (message, error)
            if isinstance(message, dict) and "ref" in message:
                assert error["ref"] == message["ref"]
            _still_alive(client, ws, f"after-{k}")


@pytest.mark.parametrize("param", [["w"], {"a": 1}])
def test_edit_weight_with_an_unhashable_param_is_an_error_not_a_dead_socket(client, param):
    """The reported bug: a list or an object as `param` raised TypeError in the manager and killed the socket."""
    sid, token = _new(client)
    with client.websocket_connect(f"/ws/sessions/{sid}?token={token}") as ws:
        ws.receive_json()
        _next_frame(ws)
        ws.send_json({"action": "edit_weight", "layer": 0, "param": param, "index": [0, 0], "value": 1, "ref": "bug"})
        error = _next_text(ws)
        assert error == {"type": "error", "message": error["message"], "field": ["param"], "ref": "bug"}
        assert "param" in error["message"]
        _still_alive(client, ws, "after")
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("field", ["layer", "param", "index", "value"])
def test_edit_weight_fields_of_the_wrong_type_or_value_get_an_error_naming_the_field(client, field):
    valid = {"value": (-1, 1.5)}.get(field, ())  # a negative or fractional weight is fine
    values = [v for v in _WRONG if v not in valid or isinstance(v, bool)]
    if field == "index":
        values += [[0], [0, 0, 0], [0, "0"], [0, True], [0, 1.5], [-1, 0], [0, None], [[0], 0], [0, 10**400]]
        values += [list(range(100))]
    cases = [({**_EDIT, field: v, "ref": [k, field]}, [field]) for k, v in enumerate(values)]
    cases.append(({k: v for k, v in _EDIT.items() if k != field}, None if field == "param" else [field]))
    cases = [c for c in cases if not (field == "param" and "param" not in c[0])]  # param defaults to "w": valid
    cases.append((json.dumps(_EDIT).replace('"value": 1', '"value": NaN'), ["value"]))
    cases.append((json.dumps(_EDIT).replace('"value": 1', '"value": 1e400'), ["value"]))
    _expect_errors(client, _new(client), cases)


def test_patch_spec_of_the_wrong_type_or_content_gets_an_error(client):
    cases = [({"action": "patch", "spec": v, "ref": k}, ["spec"]) for k, v in enumerate(_WRONG) if v != {"a": 1}]
    cases += [
        ({"action": "patch"}, ["spec"]),
        ({"action": "patch", "spec": {"a": 1}}, ["spec"]),
        ({"action": "patch", "spec": {"network": []}}, None),
        ({"action": "patch", "spec": {"network": {"hidden": "x"}}}, None),
        ({"action": "patch", "spec": {"network": {"hidden": [{"units": 10**400}]}}}, None),
        ({"action": "patch", "spec": {"training": None}}, None),
        ({"action": "patch", "spec": {"training": {"learning_rate": "NaN"}}}, None),
        ({"action": "patch", "spec": {"training": {"learning_rate": float("nan")}}}, None),
        ({"action": "patch", "spec": {"dataset": {"name": ["circle"]}}}, None),
        ({"action": "patch", "spec": {"features": {"x1": 1}}}, None),
    ]
    _expect_errors(client, _new(client), cases)


def test_the_action_field_of_the_wrong_type_gets_an_error_naming_it(client):
    cases = [({"action": v, "ref": k}, ["action"]) for k, v in enumerate(_WRONG)]
    cases += [({"action": "PLAY"}, ["action"]), ({"ref": 1}, ["action"]), ({}, ["action"])]
    _expect_errors(client, _new(client), cases)


@pytest.mark.parametrize("action", ["play", "pause", "step", "reset"])
def test_ref_may_be_any_json_value_and_comes_back(client, action):
    sid, token = _new(client)
    refs = [[1, [2]], {"a": {"b": None}}, "x", None, True, 1.5, 10**30, ""]
    with client.websocket_connect(f"/ws/sessions/{sid}?token={token}") as ws:
        ws.receive_json()
        _next_frame(ws)
        for ref in refs:
            ws.send_json({"action": action, "ref": ref, "extra": [1]})  # unknown fields are ignored
            ack = _next_text(ws)
            assert ack["type"] == "ack" and ack["action"] == action and ack["ref"] == ref, ack
            _still_alive(client, ws, "alive")


def test_garbage_on_the_socket_gets_errors_and_the_socket_carries_on(client):
    rng = np.random.default_rng(0)
    garbage = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    deep = '{"action": "pause", "ref": ' + "[" * 5000 + "]" * 5000 + "}"
    cases = [
        (garbage, None),  # a binary message
        (b"", None),
        (b'{"action": "pause"}', None),  # JSON, but in a binary message: still refused
        (garbage.decode("latin-1"), None),
        ("not json", None),
        ("", None),
        ("{", None),
        ("NaN", None),
        (json.dumps([{"action": "pause"}]), None),
        (json.dumps("pause"), None),
        (json.dumps(None), None),
        (json.dumps(3), None),
        ("[" * 20000, None),
        (deep, None),
        (json.dumps({"action": "pause", "ref": "x" * 1_000_000}), None),  # 1 MB: too long for a control
        ("x" * 1_000_000, None),
    ]
    _expect_errors(client, _new(client), cases)


def test_a_too_long_message_is_named_as_such(client):
    sid, token = _new(client)
    with client.websocket_connect(f"/ws/sessions/{sid}?token={token}") as ws:
        ws.receive_json()
        _next_frame(ws)
        ws.send_text(json.dumps({"action": "pause", "ref": "x" * 1_000_000}))
        error = _next_text(ws)
        assert error["type"] == "error" and "at most" in error["message"] and error["ref"] is None
        _still_alive(client, ws, 1)


def test_viewers_sending_garbage_get_errors_and_keep_following(client):
    sid, _ = _new(client)
    with client.websocket_connect(f"/ws/sessions/{sid}") as ws:
        assert ws.receive_json()["role"] == "viewer"
        _next_frame(ws)
        for message in (b"\x00\xff", "not json", "[1]", {"action": "edit_weight", "param": ["w"]}, {"action": []}):
            _send_raw(ws, message)
            assert _next_text(ws)["type"] == "error"
        ws.send_json({"action": "pause", "ref": "v"})
        refusal = _next_text(ws)
        assert refusal["type"] == "error" and "read-only" in refusal["message"] and refusal["ref"] == "v"
    assert client.get("/healthz").status_code == 200


def test_an_unexpected_failure_is_an_error_message_logged_with_its_traceback(client, monkeypatch, caplog):
    sid, token = _new(client)
    manager = client.app.state.sessions

    async def broken(_s):
        raise RuntimeError("a bug in the session manager")

    monkeypatch.setattr(manager, "reset", broken)
    with (
        caplog.at_level("ERROR", logger="server.routes.stream"),
        client.websocket_connect(f"/ws/sessions/{sid}?token={token}") as ws,
    ):
        ws.receive_json()
        _next_frame(ws)
        ws.send_json({"action": "reset", "ref": "r"})
        error = _next_text(ws)
        assert error["type"] == "error" and error["ref"] == "r" and "RuntimeError" in error["message"]
        _still_alive(client, ws, "after")
    failures = [r for r in caplog.records if r.name == "server.routes.stream"]
    assert failures and failures[0].exc_info is not None and "a bug" in str(failures[0].exc_info[1])
