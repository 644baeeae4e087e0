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


def test_a_rest_train_records_its_history_on_the_way_exactly(client, new_session):
    # 2,000 epochs in one call: a record every 20 epochs, made inside the compiled training program; each
    # equals the metrics of the same run stopped there (training is deterministic)
    spec = {"dataset": {"name": "spiral", "n": 200}, "network": {"hidden": [{"units": 6, "activation": "tanh"}] * 2}}
    sid, auth = new_session(spec)
    client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 2000}, headers=auth)
    records = client.get(f"{SESSIONS}/{sid}/history").json()["records"]
    assert [r["epoch"] for r in records] == list(range(0, 2001, 20))
    assert [r["step"] for r in records] == [r["epoch"] * 10 for r in records]  # 100 training points, batch 10
    for epoch in (20, 1000):
        other, other_auth = new_session(spec)
        stopped = client.post(f"{SESSIONS}/{other}/train", json={"epochs": epoch}, headers=other_auth).json()
        record = next(r for r in records if r["epoch"] == epoch)
        for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
            assert np.isclose(record[key], stopped["metrics"][key], rtol=1e-4, atol=1e-6), (epoch, key)
    last = client.get(f"{SESSIONS}/{sid}").json()["metrics"]
    assert records[-1]["train_loss"] == last["train_loss"] and records[-1]["test_loss"] == last["test_loss"]


def test_a_regression_record_carries_r2_and_rmse(client, new_session):
    sid, auth = new_session({"problem": "regression", "dataset": {"name": "plane"}})
    client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 300}, headers=auth)
    record = client.get(f"{SESSIONS}/{sid}/history").json()["records"][50]
    assert record["train_accuracy"] is None and record["test_rmse"] is not None
    assert np.isclose(record["test_rmse"], np.sqrt(2 * record["test_loss"]), rtol=1e-5)
    assert record["train_r2"] is not None and record["train_r2"] <= 1.0
