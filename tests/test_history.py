"""The history describes the weights the session has: replacing weights re-records the epoch's metrics."""

from __future__ import annotations

import numpy as np

SESSIONS = "/api/v1/sessions"


def test_put_weights_at_epoch_0_replaces_the_epoch_0_record(client, new_session):
    sid, auth = new_session({"dataset": {"name": "xor"}, "network": {"hidden": [{"units": 3}]}})
    before = client.get(f"{SESSIONS}/{sid}/history").json()["records"]
    assert [r["epoch"] for r in before] == [0]
    weights = client.get(f"{SESSIONS}/{sid}/weights").json()
    zeros = [
        {k: (0.0 * np.asarray(v)).tolist() for k, v in layer.items() if v is not None} for layer in weights["layers"]
    ]
    assert client.put(f"{SESSIONS}/{sid}/weights", json={"layers": zeros}, headers=auth).status_code == 200
    state = client.get(f"{SESSIONS}/{sid}").json()
    after = client.get(f"{SESSIONS}/{sid}/history").json()["records"]
    assert [r["epoch"] for r in after] == [0]  # one record of epoch 0, not two
    assert after[0]["train_loss"] == state["metrics"]["train_loss"] != before[0]["train_loss"]


def test_weights_set_after_training_are_recorded_at_that_epoch(client, new_session):
    sid, auth = new_session({"dataset": {"name": "xor"}})
    client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 20}, headers=auth)
    weights = client.get(f"{SESSIONS}/{sid}/weights").json()
    layers = [
        {k: (0.5 * np.asarray(v)).tolist() for k, v in layer.items() if v is not None} for layer in weights["layers"]
    ]
    client.put(f"{SESSIONS}/{sid}/weights", json={"layers": layers}, headers=auth)
    state = client.get(f"{SESSIONS}/{sid}").json()
    last = client.get(f"{SESSIONS}/{sid}/history").json()["records"][-1]
    assert last["epoch"] == state["epoch"] == 20
    assert last["train_loss"] == state["metrics"]["train_loss"]
