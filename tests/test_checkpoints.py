"""Time travel: the checkpoints a session keeps while it trains, the frame of a past moment, and continuing
from one — exactly as the run went from there, with the later run dropped."""

from __future__ import annotations

import numpy as np

from server.frames import decode_binary
from tests.conftest import SESSIONS, create_session

SPIRAL = {"dataset": {"name": "spiral", "n": 200}, "network": {"hidden": [{"units": 6, "activation": "tanh"}] * 2}}
POINTS = {"inputs": [[0.5, 1.0], [-2.0, 3.0], [4.0, -4.5]]}


def _train(client, sid, auth, epochs):
    r = client.post(f"{SESSIONS}/{sid}/train", json={"epochs": epochs}, headers=auth)
    assert r.status_code == 200, r.text
    return r.json()


def test_checkpoints_are_kept_while_training_and_thinned_to_the_limit(make_client):
    client = make_client(max_checkpoints=8)
    sid, auth = create_session(client, SPIRAL)
    for _ in range(40):
        _train(client, sid, auth, 5)
    body = client.get(f"{SESSIONS}/{sid}/checkpoints").json()
    epochs = [c["epoch"] for c in body["checkpoints"]]
    assert body["epoch"] == 200 and body["limit"] == 8
    assert 4 <= len(epochs) <= 8 and epochs == sorted(epochs)
    assert epochs[0] == 0  # the whole run stays covered, from its start
    assert max(np.diff(epochs)) <= 2 * min(np.diff(epochs))  # evenly spread
    assert all(c["metrics"]["train_loss"] is not None for c in body["checkpoints"])


def test_a_big_network_keeps_fewer_checkpoints(make_client):
    client = make_client(max_checkpoints=100, checkpoint_bytes=20_000)
    big = {"dataset": {"name": "spiral"}, "network": {"hidden": [{"units": 8, "activation": "relu"}] * 6}}
    sid, auth = create_session(client, {**big, "training": {"optimizer": "adam"}})
    limit = client.get(f"{SESSIONS}/{sid}/checkpoints").json()["limit"]
    params = 2 * 8 + 8 + 5 * (8 * 8 + 8) + 8 + 1
    assert limit == 20_000 // (3 * 4 * params + 8 + 4 + 8)  # weights + Adam's two moments (+ counts, key)


def test_continuing_from_a_checkpoint_retraces_the_run_and_drops_the_rest(client):
    sid, auth = create_session(client, {**SPIRAL, "training": {"optimizer": "adam", "learning_rate": 0.01}})
    seen = {}
    for _ in range(6):
        state = _train(client, sid, auth, 10)
        seen[state["epoch"]] = (state["metrics"], client.post(f"{SESSIONS}/{sid}/predict", json=POINTS).json())
    epochs = [c["epoch"] for c in client.get(f"{SESSIONS}/{sid}/checkpoints").json()["checkpoints"]]
    assert {10, 20, 30, 40, 50, 60} <= set(epochs)

    back = client.post(f"{SESSIONS}/{sid}/checkpoints/30/restore", headers=auth)
    assert back.status_code == 200, back.text
    body = back.json()
    assert body["epoch"] == 30 and body["status"] == "paused" and body["metrics"] == seen[30][0]
    assert client.post(f"{SESSIONS}/{sid}/predict", json=POINTS).json() == seen[30][1]
    assert client.get(f"{SESSIONS}/{sid}/history").json()["records"][-1]["epoch"] == 30
    assert max(c["epoch"] for c in client.get(f"{SESSIONS}/{sid}/checkpoints").json()["checkpoints"]) == 30
    again = _train(client, sid, auth, 10)  # the same key, optimizer state and data: the same numbers as before
    assert again["epoch"] == 40 and again["metrics"] == seen[40][0]
    assert client.post(f"{SESSIONS}/{sid}/predict", json=POINTS).json() == seen[40][1]


def test_a_checkpoint_before_an_edit_brings_back_its_spec(client):
    sid, auth = create_session(client, SPIRAL)
    _train(client, sid, auth, 20)
    before = client.get(f"{SESSIONS}/{sid}").json()
    patch = {"network": {"hidden": [{"units": 7, "activation": "relu"}] * 3}, "training": {"learning_rate": 3.0}}
    assert client.patch(f"{SESSIONS}/{sid}", json=patch, headers=auth).status_code == 200
    _train(client, sid, auth, 20)
    body = client.post(f"{SESSIONS}/{sid}/checkpoints/20/restore", headers=auth).json()
    assert body["spec"] == before["spec"] and body["epoch"] == 20
    assert body["spec_version"] > before["spec_version"] + 1  # the page re-renders its panels
    assert body["architecture"]["hidden"] == before["architecture"]["hidden"]
    layers = client.get(f"{SESSIONS}/{sid}/weights").json()["layers"]
    assert [np.asarray(layer["w"]).shape for layer in layers] == [(2, 6), (6, 6), (6, 1)]
    assert _train(client, sid, auth, 5)["epoch"] == 25


def test_the_frame_of_a_checkpoint_shows_that_moment(client):
    sid, auth = create_session(client, SPIRAL)
    _train(client, sid, auth, 10)
    then = client.get(f"{SESSIONS}/{sid}/frame", params={"encoding": "list"}).json()
    _train(client, sid, auth, 30)
    past = client.get(f"{SESSIONS}/{sid}/checkpoints/10/frame", params={"encoding": "list"}).json()
    assert past["checkpoint"] is True and past["epoch"] == 10 and past["live_epoch"] == 40
    assert past["metrics"] == then["metrics"]
    assert past["output"]["data"] == then["output"]["data"]
    binary = client.get(f"{SESSIONS}/{sid}/checkpoints/10/frame", params={"encoding": "binary"})
    header, arrays = decode_binary(binary.content)
    assert header["epoch"] == 10 and header["checkpoint"] is True
    assert arrays["output"].tolist() == then["output"]["data"]


def test_time_travel_errors_are_clear(client):
    sid, auth = create_session(client, SPIRAL)
    for _ in range(10):
        _train(client, sid, auth, 1)
    missing = client.get(f"{SESSIONS}/{sid}/checkpoints/70/frame")
    assert missing.status_code == 404 and "no checkpoint at epoch 70" in missing.json()["detail"]
    assert "epochs 0, 1, 2, 3, 4, … 10" in missing.json()["detail"]  # what there is, in words
    assert client.post(f"{SESSIONS}/{sid}/checkpoints/0/restore").status_code == 401
    _, other = create_session(client)
    assert client.post(f"{SESSIONS}/{sid}/checkpoints/0/restore", headers=other).status_code == 403
    assert client.post(f"{SESSIONS}/{sid}/checkpoints/-1/restore", headers=auth).status_code == 422
    assert client.post(f"{SESSIONS}/{sid}/checkpoints/99/restore", headers=auth).status_code == 404
    client.post(f"{SESSIONS}/{sid}/reset", headers=auth)
    assert [c["epoch"] for c in client.get(f"{SESSIONS}/{sid}/checkpoints").json()["checkpoints"]] == [0]


def test_time_travel_can_be_turned_off(make_client):
    client = make_client(max_checkpoints=0)
    sid, auth = create_session(client, SPIRAL)
    _train(client, sid, auth, 20)
    body = client.get(f"{SESSIONS}/{sid}/checkpoints").json()
    assert body["limit"] == 0 and body["checkpoints"] == []
    assert client.post(f"{SESSIONS}/{sid}/checkpoints/0/restore", headers=auth).status_code == 404
    assert _train(client, sid, auth, 5)["epoch"] == 25  # training is unaffected


def test_a_long_rest_train_leaves_checkpoints_along_its_way(client):
    # one call trains in a few compiled calls, each ending in a checkpoint: the run stays reachable
    sid, auth = create_session(client, SPIRAL)
    _train(client, sid, auth, 4000)
    epochs = [c["epoch"] for c in client.get(f"{SESSIONS}/{sid}/checkpoints").json()["checkpoints"]]
    assert epochs == [0, 1000, 2000, 3000, 4000]
