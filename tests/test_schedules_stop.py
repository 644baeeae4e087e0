"""Learning-rate schedules (against optax), stop conditions (REST and websocket), TF Playground's
initialisation, regression fit metrics, the MLP confusion matrix, and CSV data with a split column."""

from __future__ import annotations

import json
import math

import jax
import numpy as np
import optax
import pytest
from pydantic import ValidationError

from server.csvdata import parse_csv
from server.engines import mlp
from server.frames import decode_binary
from server.ml.models import TFP_BIAS
from server.ml.train import Schedule
from server.spec import ExperimentSpec, merge_patch
from tests.conftest import SESSIONS

# ------------------------------------------------------------------------------------------ schedules

OPTAX_SCHEDULES = [
    (
        {"kind": "step", "every": 7, "factor": 0.5},
        optax.exponential_decay(0.2, 7, 0.5, staircase=True),
    ),
    (
        {"kind": "exponential", "every": 10, "factor": 0.3, "floor": 0.05},
        optax.exponential_decay(0.2, 10, 0.3, end_value=0.2 * 0.05),
    ),
    ({"kind": "cosine", "epochs": 25, "floor": 0.1}, optax.cosine_decay_schedule(0.2, 25, alpha=0.1)),
    (
        {"kind": "cosine", "epochs": 20, "warmup_epochs": 5},
        optax.join_schedules([optax.linear_schedule(0.0, 0.2, 5), optax.cosine_decay_schedule(0.2, 20)], [5]),
    ),
    ({"kind": "constant", "warmup_epochs": 4}, optax.linear_schedule(0.0, 0.2, 4)),
]


@pytest.mark.parametrize(("fields", "reference"), OPTAX_SCHEDULES, ids=lambda v: str(v)[:40])
def test_schedule_rates_are_optax_values(fields, reference) -> None:
    schedule = Schedule(**ExperimentSpec(training={"schedule": fields}).training.schedule.model_dump())
    for epoch in range(0, 60):
        assert schedule.rate(0.2, epoch) == pytest.approx(float(reference(epoch)), rel=1e-5, abs=1e-9), epoch


def _one_epoch_at_a_time(spec: ExperimentSpec, epochs: int) -> list[float]:
    """Train with a constant rate equal to the schedule's value, one epoch per call: the reference run."""
    cfg, data = mlp.config_for(spec), mlp.build_data(spec)
    state = mlp.init_train_state(spec, cfg)
    constant = mlp.config_for(
        ExperimentSpec.model_validate(merge_patch(spec.model_dump(), {"training": {"schedule": {"kind": "constant"}}}))
    )
    assert constant.schedule.constant
    for epoch in range(epochs):
        lr = cfg.schedule.rate(spec.training.learning_rate, epoch)
        h = mlp.hyper(lr, spec.training.momentum)
        state = mlp.advance(constant, state, data, h, 1).state
    return [float(v) for v in jax.tree_util.tree_leaves(state.params)[0].ravel()]


def test_training_uses_the_schedules_rate_in_every_epoch() -> None:
    """Ten scheduled epochs in one compiled call, continued from epoch 4, equal the same epochs trained one
    by one at the rates optax gives for them."""
    spec = ExperimentSpec.model_validate(
        {
            "dataset": {"n": 60},
            "training": {"learning_rate": 0.3, "schedule": {"kind": "step", "every": 3, "factor": 0.5}},
        }
    )
    cfg, data = mlp.config_for(spec), mlp.build_data(spec)
    state = mlp.init_train_state(spec, cfg)
    h = mlp.hyper_for(spec)
    state = mlp.advance(cfg, state, data, h, 4, 0).state
    state = mlp.advance(cfg, state, data, h, 10, 4).state
    scheduled = [float(v) for v in jax.tree_util.tree_leaves(state.params)[0].ravel()]
    assert scheduled == pytest.approx(_one_epoch_at_a_time(spec, 14), rel=1e-4, abs=1e-6)
    unscheduled = mlp.advance(
        mlp.config_for(ExperimentSpec.model_validate({"dataset": {"n": 60}, "training": {"learning_rate": 0.3}})),
        mlp.init_train_state(spec, cfg),
        data,
        h,
        14,
    ).state
    assert [float(v) for v in jax.tree_util.tree_leaves(unscheduled.params)[0].ravel()] != pytest.approx(scheduled)


def test_rest_session_reports_the_current_rate_and_history_draws_it(client, new_session) -> None:
    sid, auth = new_session(
        {"training": {"learning_rate": 0.1, "schedule": {"kind": "step", "every": 10, "factor": 0.1}}}
    )
    r = client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 25}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["learning_rate_now"] == pytest.approx(0.001)
    records = client.get(f"{SESSIONS}/{sid}/history").json()["records"]
    rates = {rec["epoch"]: rec["learning_rate"] for rec in records}
    assert rates[0] == pytest.approx(0.1) and rates[25] == pytest.approx(0.001)
    assert any(rate == pytest.approx(0.01) for epoch, rate in rates.items() if 10 <= epoch < 20)


def test_changing_the_schedule_is_live_and_keeps_the_weights(client, new_session) -> None:
    sid, auth = new_session({"dataset": {"n": 60}})
    client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 5}, headers=auth)
    before = client.get(f"{SESSIONS}/{sid}/weights").json()["layers"]
    r = client.patch(
        f"{SESSIONS}/{sid}", json={"training": {"schedule": {"kind": "cosine", "epochs": 50}}}, headers=auth
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["epoch"] == 5 and body["spec"]["training"]["schedule"]["kind"] == "cosine"
    assert body["learning_rate_now"] == pytest.approx(0.03 * 0.5 * (1 + math.cos(math.pi * 5 / 50)), rel=1e-5)
    assert client.get(f"{SESSIONS}/{sid}/weights").json()["layers"] == before


@pytest.mark.parametrize(
    ("schedule", "field"),
    [({"kind": "sawtooth"}, "kind"), ({"kind": "step", "factor": 1.5}, "factor"), ({"every": 0}, "every")],
)
def test_a_bad_schedule_is_a_422_naming_the_field(client, new_session, schedule, field) -> None:
    sid, auth = new_session({"dataset": {"n": 60}})
    r = client.patch(f"{SESSIONS}/{sid}", json={"training": {"schedule": schedule}}, headers=auth)
    assert r.status_code == 422
    assert field in json.dumps(r.json())


# ------------------------------------------------------------------------------------ stop conditions


def test_stop_at_epoch_over_rest_then_train_on(client, new_session) -> None:
    sid, auth = new_session({"dataset": {"n": 60}, "stop": {"at_epoch": 120}})
    r = client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 1000}, headers=auth).json()
    assert r["epoch"] == 120 and r["status"] == "paused"
    assert "epoch 120" in r["stopped"]
    r = client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 30}, headers=auth).json()
    assert r["epoch"] == 150 and r["stopped"] is None  # the condition was met already: a new run trains on


def test_stop_when_the_test_loss_falls_below(client, new_session) -> None:
    spec = {
        "dataset": {"name": "gauss", "n": 100},
        "training": {"learning_rate": 0.1},
        "stop": {"test_loss_below": 0.05},
    }
    sid, auth = new_session(spec)
    r = client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 5000}, headers=auth).json()
    assert r["epoch"] < 5000, "the gauss set is easy: its test loss falls below 0.05 long before"
    assert r["metrics"]["test_loss"] < 0.05
    assert "below 0.05" in r["stopped"]


OVERFIT = {
    "dataset": {"name": "gauss", "n": 60, "noise": 50, "train_percent": 30, "seed": 3},
    "features": ["x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2"],
    "network": {"hidden": [{"units": 8, "activation": "relu"}] * 3, "init": "he"},
    "training": {"optimizer": "adam", "learning_rate": 0.01},
}


def test_early_stopping_restores_the_best_weights(client, new_session) -> None:
    spec = {**OVERFIT, "stop": {"patience": 100, "restore_best": True}}
    sid, auth = new_session(spec)
    r = client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 5000}, headers=auth).json()
    assert r["epoch"] < 5000 and r["stopped"].startswith("early stopping")
    records = client.get(f"{SESSIONS}/{sid}/history").json()["records"]
    best = min(rec["test_loss"] for rec in records[:-1])
    assert r["metrics"]["test_loss"] == pytest.approx(best, rel=1e-4)  # the weights of the best epoch are back
    assert "are back" in r["stopped"]


def test_early_stopping_without_restore_keeps_the_last_weights(client, new_session) -> None:
    sid, auth = new_session({**OVERFIT, "stop": {"patience": 100}})
    r = client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 5000}, headers=auth).json()
    assert r["stopped"].startswith("early stopping") and "back" not in r["stopped"]
    records = client.get(f"{SESSIONS}/{sid}/history").json()["records"]
    assert r["metrics"]["test_loss"] > min(rec["test_loss"] for rec in records)


def _messages_until(ws, predicate, limit=2000):
    seen = []
    for _ in range(limit):
        message = ws.receive()
        item = json.loads(message["text"]) if message.get("text") is not None else decode_binary(message["bytes"])[0]
        seen.append(item)
        if predicate(item):
            return seen
    raise AssertionError(f"never came; last: {seen[-3:]}")


def test_play_over_the_websocket_stops_at_the_epoch_and_says_so(client, new_session) -> None:
    sid, auth = new_session({"dataset": {"n": 60}, "stop": {"at_epoch": 300}, "speed": 3000})
    token = auth["Authorization"].split()[1]
    with client.websocket_connect(f"/ws/sessions/{sid}?token={token}") as ws:
        ws.send_text(json.dumps({"action": "play"}))
        seen = _messages_until(ws, lambda m: m.get("type") == "frame" and m.get("stopped"))
    stopped = [m for m in seen if m.get("type") == "stopped"]
    assert stopped and stopped[0]["epoch"] == 300 and "300" in stopped[0]["reason"]
    last = seen[-1]
    assert last["epoch"] == 300 and last["status"] == "paused"
    assert client.get(f"{SESSIONS}/{sid}").json()["epoch"] == 300


def test_a_new_architecture_says_compiling_before_it_runs(client, new_session) -> None:
    sid, auth = new_session({"dataset": {"n": 60}, "network": {"hidden": [{"units": 5}, {"units": 3}, {"units": 7}]}})
    token = auth["Authorization"].split()[1]
    with client.websocket_connect(f"/ws/sessions/{sid}?token={token}") as ws:
        # a shape no other test uses: its program is not compiled yet
        ws.send_text(json.dumps({"action": "patch", "spec": {"network": {"hidden": [{"units": 6}, {"units": 9}]}}}))
        ws.send_text(json.dumps({"action": "play"}))
        seen = _messages_until(ws, lambda m: m.get("type") == "frame" and m["epoch"] > 0)
        ws.send_text(json.dumps({"action": "pause"}))
    status = [m for m in seen if m.get("type") == "status"]
    assert status and status[0]["status"] == "compiling" and "compiling" in status[0]["message"]


# ------------------------------------------------------------------------------------ init, metrics


def test_tfplayground_init_is_uniform_half_and_bias_one_tenth(client, new_session) -> None:
    sid, _ = new_session({"network": {"init": "tfplayground", "hidden": [{"units": 8}] * 3}})
    layers = client.get(f"{SESSIONS}/{sid}/weights").json()["layers"]
    weights = np.concatenate([np.ravel(layer["w"]) for layer in layers])
    assert np.all(np.abs(weights) <= 0.5) and weights.std() == pytest.approx(0.5 / math.sqrt(3), rel=0.25)
    assert all(np.allclose(layer["b"], TFP_BIAS) for layer in layers)


def test_regression_reports_r2_and_rmse(client, new_session) -> None:
    sid, auth = new_session(
        {"problem": "regression", "dataset": {"name": "plane", "n": 200}, "network": {"hidden": []}}
    )
    body = client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 200}, headers=auth).json()
    data = client.get(f"{SESSIONS}/{sid}/data").json()["test"]
    predicted = client.post(f"{SESSIONS}/{sid}/predict", json={"inputs": data["points"]}).json()["outputs"]
    y, p = np.asarray(data["labels"]), np.ravel(predicted)
    rmse = float(np.sqrt(np.mean((p - y) ** 2)))
    r2 = 1 - float(np.sum((p - y) ** 2) / np.sum((y - y.mean()) ** 2))
    m = body["metrics"]
    assert m["test_rmse"] == pytest.approx(rmse, rel=1e-3) and m["test_r2"] == pytest.approx(r2, abs=1e-3)
    assert m["test_r2"] > 0.9 and m["train_r2"] > 0.9
    assert m["test_accuracy"] is None
    record = client.get(f"{SESSIONS}/{sid}/history").json()["records"][-1]
    assert record["test_r2"] == pytest.approx(m["test_r2"])


@pytest.mark.parametrize("dataset", ["circle", "blobs3"])
def test_mlp_frames_carry_the_test_confusion_matrix(client, new_session, dataset) -> None:
    spec = {"dataset": {"name": dataset, "n": 200}, "training": {"loss": "cross_entropy"}}
    sid, auth = new_session(spec)
    body = client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 30}, headers=auth).json()
    frame = client.get(f"{SESSIONS}/{sid}/frame", params={"encoding": "list"}).json()
    confusion = np.asarray(frame["confusion"]["data"])
    classes = 3 if dataset == "blobs3" else 2
    test = client.get(f"{SESSIONS}/{sid}/data").json()["test"]
    assert confusion.shape == (classes, classes) and confusion.sum() == len(test["labels"])
    assert confusion.sum(axis=1).tolist() == np.bincount(test["labels"], minlength=classes).tolist()
    assert np.trace(confusion) / confusion.sum() == pytest.approx(body["metrics"]["test_accuracy"], abs=1e-6)
    assert body["metrics"]["test_r2"] is None


# ------------------------------------------------------------------------------------ CSV with a split


def test_csv_split_column_is_honoured_in_file_order(client, new_session) -> None:
    rows = [[-2 + i * 0.1, 1.0, i % 2, "test" if i % 4 == 0 else "train"] for i in range(40)]
    text = "x1,x2,label,split\n" + "\n".join(",".join(str(v) for v in row) for row in rows)
    points, split = parse_csv(text, "classification")
    assert split == [row[3] for row in rows] and [p[0] for p in points] == pytest.approx([r[0] for r in rows])
    sid, auth = new_session({"dataset": {"name": "custom", "points": points, "split": split}})
    data = client.get(f"{SESSIONS}/{sid}/data").json()
    assert [p[0] for p in data["test"]["points"]] == pytest.approx([r[0] for r in rows if r[3] == "test"])
    assert [p[0] for p in data["train"]["points"]] == pytest.approx([r[0] for r in rows if r[3] == "train"])
    # the download reads back as the same data
    csv_text = client.get(f"{SESSIONS}/{sid}/data.csv").text
    again, again_split = parse_csv(csv_text, "classification")
    assert again_split.count("test") == 10 and len(again) == 40
    assert np.allclose(again[:30], [p for p, s in zip(points, split, strict=True) if s == "train"])


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1,2,0,train\n1,1,1,validate\n", "line 2: the split column says 'validate'"),
        ("1,2,0,train\n1,1,1\n", "line 2: expected 4 values"),
    ],
)
def test_csv_split_errors_name_the_line(text, words) -> None:
    with pytest.raises(ValueError, match=words):
        parse_csv(text, "classification")


def test_split_must_fit_the_points() -> None:
    points = [[0.0, 0.0, 0], [1.0, 1.0, 1], [2.0, 2.0, 1]]
    with pytest.raises(ValidationError, match="3 points but 2 parts"):
        ExperimentSpec.model_validate({"dataset": {"name": "custom", "points": points, "split": ["train", "test"]}})
    with pytest.raises(ValidationError, match="no point is marked 'test'"):
        ExperimentSpec.model_validate({"dataset": {"name": "custom", "points": points, "split": ["train"] * 3}})


def test_cnn_data_has_no_csv(client, new_session) -> None:
    sid, _ = new_session({"network": {"kind": "cnn"}, "dataset": {"name": "digits", "n": 100}})
    r = client.get(f"{SESSIONS}/{sid}/data.csv")
    assert r.status_code == 422 and "images" in r.text
