"""REST API tests (/api/v1, /healthz, /docs): the behaviour users' scripts rely on.

Every route is driven through FastAPI's TestClient with the app's lifespan running. Most sessions use
the default spec, so the compiled training, evaluation and frame programs are shared between tests.
"""

from __future__ import annotations

import base64
import json
import math
import time
from typing import Any

import numpy as np
import pytest
from conftest import SESSIONS, create_session
from fastapi.testclient import TestClient

DEFAULT_SPEC = {
    "problem": "classification",
    "dataset": {"name": "circle", "n": 500, "noise": 0.0, "train_percent": 50.0, "seed": 0},
    "features": ["x1", "x2"],
    "network": {
        "kind": "mlp",
        "hidden": [{"units": 4, "activation": "tanh"}, {"units": 2, "activation": "tanh"}],
        "init": "xavier",
    },
}
METRIC_KEYS = {"train_loss", "test_loss", "train_accuracy", "test_accuracy"}
FIT_KEYS = {"train_r2", "test_r2", "train_rmse", "test_rmse"}  # regression's (None for classification)
DIVERGING = {
    "problem": "regression",
    "dataset": {"name": "plane"},
    "network": {"hidden": [{"units": 4, "activation": "relu"}, {"units": 2, "activation": "relu"}]},
    "training": {"learning_rate": 10},
}
SOFTMAX = {"dataset": {"name": "blobs3"}, "training": {"loss": "cross_entropy"}}
POINTS = [[0.0, 0.0], [1.0, 1.0], [-4.0, 2.5], [5.0, -5.0], [0.5, -3.0]]


def strict_json(text: str) -> Any:
    """Parse like a strict JSON client: NaN / Infinity are not JSON."""

    def reject(constant: str) -> Any:
        raise AssertionError(f"response carries the non-JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def url(session_id: str, action: str = "") -> str:
    return f"{SESSIONS}/{session_id}" + (f"/{action}" if action else "")


def state(client: TestClient, session_id: str) -> dict[str, Any]:
    r = client.get(url(session_id))
    assert r.status_code == 200, r.text
    return r.json()


def weights(client: TestClient, session_id: str) -> list[dict[str, np.ndarray]]:
    r = client.get(url(session_id, "weights"))
    assert r.status_code == 200, r.text
    return [{k: np.asarray(v, np.float64) for k, v in layer.items() if v is not None} for layer in r.json()["layers"]]


def assert_same_weights(a: list[dict[str, np.ndarray]], b: list[dict[str, np.ndarray]]) -> None:
    assert len(a) == len(b)
    for la, lb in zip(a, b, strict=True):
        assert la.keys() == lb.keys()
        for k in la:
            np.testing.assert_array_equal(la[k], lb[k])


def train(client: TestClient, session_id: str, headers: dict[str, str], epochs: int) -> dict[str, Any]:
    r = client.post(url(session_id, "train"), json={"epochs": epochs}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def patch(client: TestClient, session_id: str, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = client.patch(url(session_id), json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def assert_loc(response, *path: str | int) -> None:
    assert response.status_code == 422, response.text
    loc = response.json()["detail"][0]["loc"]
    assert loc[0] == "body", loc
    assert tuple(loc[-len(path) :]) == path, f"expected the error at {path}, got {loc}"


def assert_subset(expected: Any, actual: Any, where: str = "spec") -> None:
    """Every field given in ``expected`` has that value in ``actual`` (dicts recursively)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for k, v in expected.items():
            assert k in actual, f"{where}.{k} missing"
            assert_subset(v, actual[k], f"{where}.{k}")
    elif isinstance(expected, list) and expected and isinstance(expected[0], dict):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_subset(e, a, f"{where}[{i}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


# ----------------------------------------------------------------------------------------------- docs


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_docs_and_openapi_list_every_session_route(client):
    assert client.get("/docs").status_code == 200
    r = client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    expected = {
        SESSIONS: {"post"},
        f"{SESSIONS}/{{session_id}}": {"get", "patch", "delete"},
        f"{SESSIONS}/{{session_id}}/train": {"post"},
        f"{SESSIONS}/{{session_id}}/play": {"post"},
        f"{SESSIONS}/{{session_id}}/pause": {"post"},
        f"{SESSIONS}/{{session_id}}/step": {"post"},
        f"{SESSIONS}/{{session_id}}/reset": {"post"},
        f"{SESSIONS}/{{session_id}}/history": {"get"},
        f"{SESSIONS}/{{session_id}}/weights": {"get", "put"},
        f"{SESSIONS}/{{session_id}}/predict": {"post"},
        f"{SESSIONS}/{{session_id}}/frame": {"get"},
        f"{SESSIONS}/{{session_id}}/export": {"get"},
        "/healthz": {"get"},
        "/api/v1/datasets": {"get"},
        "/api/v1/activations": {"get"},
        "/api/v1/optimizers": {"get"},
        "/api/v1/presets": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, f"{path} missing from the OpenAPI document"
        assert methods <= set(paths[path]), f"{path}: {sorted(paths[path])}"


# --------------------------------------------------------------------------------------------- create


@pytest.mark.parametrize("body", ["none", "empty", "partial"])
def test_create_defaults(client, body):
    if body == "none":
        r = client.post(SESSIONS)
    elif body == "empty":
        r = client.post(SESSIONS, json={})
    else:
        r = client.post(SESSIONS, json={"training": {"batch_size": 25}, "seed": 3})
    assert r.status_code == 201, r.text
    s = r.json()
    assert isinstance(s["id"], str) and s["id"]
    assert isinstance(s["token"], str) and len(s["token"]) >= 16
    assert s["status"] == "paused"
    assert s["epoch"] == 0
    assert s["step"] == 0
    assert s["spec_version"] == 0
    assert set(s["metrics"]) == METRIC_KEYS | FIT_KEYS
    assert all(isinstance(s["metrics"][k], float) and math.isfinite(s["metrics"][k]) for k in METRIC_KEYS)
    assert all(s["metrics"][k] is None for k in FIT_KEYS)
    spec = s["spec"]
    assert_subset(DEFAULT_SPEC, spec)
    t = spec["training"]
    assert (t["algorithm"], t["optimizer"], t["loss"], t["learning_rate"]) == ("backprop", "sgd", "mse", 0.03)
    assert (t["regularization"], t["regularization_rate"], t["dropout"], t["batch_norm"]) == ("none", 0, 0, False)
    if body == "partial":
        assert t["batch_size"] == 25 and spec["seed"] == 3
    else:
        assert t["batch_size"] == 10 and spec["seed"] == 0
    arch = s["architecture"]
    assert arch["parameters"] == 25  # (2·4 + 4) + (4·2 + 2) + (2·1 + 1)
    assert arch["inputs"] == ["x1", "x2"]
    assert arch["hidden"] == [{"units": 4, "activation": "tanh"}, {"units": 2, "activation": "tanh"}]
    assert arch["output"]["kind"] == "tanh" and arch["output"]["units"] == 1
    assert (arch["n_train"], arch["n_test"]) == (250, 250)
    assert arch["steps_per_epoch"] == 250 // t["batch_size"]
    assert s["notes"] == []

    # GET answers the same state, without the token.
    got = state(client, s["id"])
    assert "token" not in got
    assert {k: v for k, v in s.items() if k != "token"} == got


def test_sessions_get_distinct_ids_and_tokens(client):
    a, b = client.post(SESSIONS).json(), client.post(SESSIONS).json()
    assert a["id"] != b["id"]
    assert a["token"] != b["token"]


INVALID_SPECS = [
    ("learning_rate 0", {"training": {"learning_rate": 0}}, ("training", "learning_rate")),
    ("learning_rate 11", {"training": {"learning_rate": 11}}, ("training", "learning_rate")),
    ("units 0", {"network": {"hidden": [{"units": 0}]}}, ("network", "hidden", 0, "units")),
    ("units 65", {"network": {"hidden": [{"units": 2}, {"units": 65}]}}, ("network", "hidden", 1, "units")),
    ("11 hidden layers", {"network": {"hidden": [{"units": 2}] * 11}}, ("network", "hidden")),
    ("batch_size 0", {"training": {"batch_size": 0}}, ("training", "batch_size")),
    ("batch_size 501", {"training": {"batch_size": 501}}, ("training", "batch_size")),
    ("n 5001", {"dataset": {"n": 5001}}, ("dataset", "n")),
    ("noise 51", {"dataset": {"noise": 51}}, ("dataset", "noise")),
    (
        "unknown activation",
        {"network": {"hidden": [{"units": 3, "activation": "squiggle"}]}},
        ("network", "hidden", 0, "activation"),
    ),
    ("unknown dataset", {"dataset": {"name": "donut"}}, ("dataset", "name")),
    ("unknown feature", {"features": ["x1", "x3"]}, ("features", 1)),
    ("duplicate features", {"features": ["x1", "x2", "x1"]}, ("features",)),
    ("unknown top-level key", {"colour": "red"}, ("colour",)),
    ("unknown nested key", {"training": {"lr": 0.1}}, ("training", "lr")),
    ("wrong type", {"training": {"learning_rate": "fast"}}, ("training", "learning_rate")),
    ("regression data, classification problem", {"dataset": {"name": "plane"}}, ("dataset", "name")),
    ("perceptron with hidden layers", {"training": {"algorithm": "perceptron"}}, ("network", "hidden")),
    (
        "cross_entropy with regression",
        {"problem": "regression", "dataset": {"name": "plane"}, "training": {"loss": "cross_entropy"}},
        ("training", "loss"),
    ),
]
INVALID_IDS = [case[0] for case in INVALID_SPECS]


@pytest.mark.parametrize(("name", "spec", "loc"), INVALID_SPECS, ids=INVALID_IDS)
def test_create_rejects_invalid_spec_naming_the_field(client, name, spec, loc):
    r = client.post(SESSIONS, json=spec)
    assert_loc(r, *loc)
    assert isinstance(r.json()["detail"][0]["msg"], str) and r.json()["detail"][0]["msg"]


@pytest.fixture(scope="module")
def patch_target(client):
    """One valid session that the rejected patches below must leave untouched."""
    return create_session(client)


@pytest.mark.parametrize(("name", "spec", "loc"), INVALID_SPECS, ids=INVALID_IDS)
def test_patch_rejects_invalid_spec_naming_the_field(client, patch_target, name, spec, loc):
    sid, auth = patch_target
    before = state(client, sid)
    r = client.patch(url(sid), json=spec, headers=auth)
    assert_loc(r, *loc)
    after = state(client, sid)
    assert after["spec"] == before["spec"]
    assert after["spec_version"] == before["spec_version"]


# ----------------------------------------------------------------------------------------- token rule


def _weights_body(client, sid):
    return {"layers": client.get(url(sid, "weights")).json()["layers"]}


MUTATIONS = [
    ("patch", "PATCH", "", lambda c, sid: {"training": {"learning_rate": 0.1}}, 200),
    ("delete", "DELETE", "", lambda c, sid: None, 204),
    ("train", "POST", "train", lambda c, sid: {"epochs": 1}, 200),
    ("play", "POST", "play", lambda c, sid: None, 200),
    ("pause", "POST", "pause", lambda c, sid: None, 200),
    ("step", "POST", "step", lambda c, sid: None, 200),
    ("reset", "POST", "reset", lambda c, sid: None, 200),
    ("put-weights", "PUT", "weights", _weights_body, 200),
]


@pytest.mark.parametrize("via", ["bearer", "cookie"])
@pytest.mark.parametrize(("name", "method", "action", "body", "ok"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_mutations_need_the_token(client, new_session, via, name, method, action, body, ok):
    sid, auth = new_session()
    other_sid, other_auth = new_session()
    token = auth["Authorization"].removeprefix("Bearer ")
    other_token = other_auth["Authorization"].removeprefix("Bearer ")
    payload = body(client, sid)

    def call(headers: dict[str, str]):
        return client.request(method, url(sid, action), json=payload, headers=headers)

    r = call({})
    assert r.status_code == 401, r.text
    assert r.headers.get("www-authenticate", "").lower().startswith("bearer")
    assert call({"Authorization": "Bearer not-the-token"}).status_code == 403
    assert call(other_auth).status_code == 403  # another session's token
    assert call({"Cookie": f"neuroglass_{sid}=not-the-token"}).status_code == 403
    assert call({"Cookie": f"neuroglass_{other_sid}={other_token}"}).status_code == 401  # other session's cookie
    untouched = state(client, sid)
    assert (untouched["status"], untouched["epoch"], untouched["spec_version"]) == ("paused", 0, 0)
    assert untouched["spec"]["training"]["learning_rate"] == 0.03

    good = auth if via == "bearer" else {"Cookie": f"neuroglass_{sid}={token}"}
    r = call(good)
    assert r.status_code == ok, r.text
    if name == "delete":
        assert client.get(url(sid)).status_code == 404
    elif name == "put-weights":
        assert r.json()["layers"] == payload["layers"]
    else:
        assert r.json()["id"] == sid
    if name == "patch":
        assert r.json()["spec"]["training"]["learning_rate"] == 0.1
    if name == "play":
        assert r.json()["status"] == "running"
        assert client.post(url(sid, "pause"), headers=auth).status_code == 200
    if name in ("train", "step"):
        assert r.json()["epoch"] == 1
    client.delete(url(other_sid), headers=other_auth)
    client.delete(url(sid), headers=auth)


def test_reads_need_no_token(client, new_session):
    sid, _ = new_session()
    for action in ("", "history", "weights", "frame", "export"):
        r = client.get(url(sid, action))
        assert r.status_code == 200, f"GET {action}: {r.status_code}"
    r = client.post(url(sid, "predict"), json={"inputs": POINTS})
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("method", "action", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"seed": 1}),
        ("DELETE", "", None),
        ("POST", "train", {"epochs": 1}),
        ("POST", "play", None),
        ("POST", "pause", None),
        ("POST", "step", None),
        ("POST", "reset", None),
        ("GET", "history", None),
        ("GET", "weights", None),
        ("PUT", "weights", {"layers": []}),
        ("POST", "predict", {"inputs": [[0, 0]]}),
        ("GET", "frame", None),
        ("GET", "export", None),
    ],
)
def test_unknown_session_is_404(client, method, action, body):
    headers = {"Authorization": "Bearer whatever"}
    r = client.request(method, url("no-such-session", action), json=body, headers=headers)
    assert r.status_code == 404, r.text
    assert "no-such-session" in r.json()["detail"]


# --------------------------------------------------------------------------------------------- train


def test_train_learns_the_circle_and_records_history(client, new_session):
    sid, auth = new_session()
    s = train(client, sid, auth, 200)
    assert s["epoch"] == 200
    assert s["step"] == 200 * 25
    assert s["status"] == "paused"
    assert set(s["metrics"]) == METRIC_KEYS | FIT_KEYS
    assert s["metrics"]["test_loss"] < 0.05
    assert s["metrics"]["test_accuracy"] >= 0.95
    assert state(client, sid)["epoch"] == 200

    first = client.get(url(sid, "history")).json()["records"]
    assert first[0]["epoch"] == 0 and first[-1]["epoch"] == 200
    assert len(first) > 10
    train(client, sid, auth, 20)
    records = client.get(url(sid, "history")).json()["records"]
    assert len(records) > len(first)
    assert records[: len(first)] == first
    epochs = [rec["epoch"] for rec in records]
    assert epochs == sorted(set(epochs)), "history epochs must increase strictly"
    assert epochs[-1] == 220
    assert set(records[-1]) >= METRIC_KEYS
    assert records[-1]["train_loss"] < records[0]["train_loss"]


@pytest.mark.parametrize("body", [{"epochs": 0}, {"epochs": -3}, {"epochs": "many"}, {}, {"epochs": 1, "x": 1}])
def test_train_rejects_bad_epochs(client, new_session, body):
    sid, auth = new_session()
    r = client.post(url(sid, "train"), json=body, headers=auth)
    assert r.status_code == 422, r.text
    assert state(client, sid)["epoch"] == 0


def test_train_respects_max_train_epochs(make_client):
    small = make_client(max_train_epochs=50)
    sid, auth = create_session(small)
    assert_loc(small.post(url(sid, "train"), json={"epochs": 51}, headers=auth), "epochs")
    assert state(small, sid)["epoch"] == 0
    r = small.post(url(sid, "train"), json={"epochs": 50}, headers=auth)
    assert r.status_code == 200 and r.json()["epoch"] == 50


# ---------------------------------------------------------------------------------------- live edits


@pytest.fixture
def trained(client, new_session):
    """A default session trained for 50 epochs: (id, headers, weights)."""
    sid, auth = new_session()
    assert train(client, sid, auth, 50)["epoch"] == 50
    return sid, auth, weights(client, sid)


def test_patch_learning_rate_keeps_everything(client, trained):
    sid, auth, before = trained
    s = patch(client, sid, auth, {"training": {"learning_rate": 0.1}})
    assert s["epoch"] == 50
    assert s["status"] == "paused"
    assert s["spec"]["training"]["learning_rate"] == 0.1
    assert s["spec_version"] == 1
    c = s["changes"]
    assert c["spec_version"] == 1
    assert c["reset"] is False
    assert c["data"] == "kept"
    assert c["optimizer_state"] == "kept"
    assert (c["weights"]["kept"], c["weights"]["initialized"]) == (25, 0)
    assert_same_weights(before, weights(client, sid))
    # and training goes on from there
    assert train(client, sid, auth, 5)["epoch"] == 55


def test_patch_activation_keeps_weights(client, trained):
    sid, auth, before = trained
    hidden = [{"units": 4, "activation": "relu"}, {"units": 2, "activation": "tanh"}]
    s = patch(client, sid, auth, {"network": {"hidden": hidden}})
    assert s["epoch"] == 50
    assert s["architecture"]["hidden"] == hidden
    assert s["changes"]["weights"]["kept"] == 25 and s["changes"]["weights"]["initialized"] == 0
    assert_same_weights(before, weights(client, sid))


def test_patch_optimizer_keeps_weights(client, trained):
    sid, auth, before = trained
    s = patch(client, sid, auth, {"training": {"optimizer": "adam", "learning_rate": 0.01}})
    assert s["epoch"] == 50
    assert s["changes"]["optimizer_state"] == "reinitialized"
    assert s["changes"]["weights"]["kept"] == 25
    assert_same_weights(before, weights(client, sid))


def test_patch_adding_a_neuron_keeps_every_old_weight(client, trained):
    sid, auth, before = trained
    s = patch(client, sid, auth, {"network": {"hidden": [{"units": 5}, {"units": 2}]}})
    assert s["epoch"] == 50
    assert s["architecture"]["parameters"] == (2 * 5 + 5) + (5 * 2 + 2) + (2 * 1 + 1)
    after = weights(client, sid)
    assert [layer["w"].shape for layer in after] == [(2, 5), (5, 2), (2, 1)]
    np.testing.assert_array_equal(after[0]["w"][:, :4], before[0]["w"])
    np.testing.assert_array_equal(after[0]["b"][:4], before[0]["b"])
    np.testing.assert_array_equal(after[1]["w"][:4, :], before[1]["w"])
    np.testing.assert_array_equal(after[1]["b"], before[1]["b"])
    np.testing.assert_array_equal(after[2]["w"], before[2]["w"])
    np.testing.assert_array_equal(after[2]["b"], before[2]["b"])
    w = s["changes"]["weights"]
    assert (w["kept"], w["initialized"]) == (25, 5)
    by_layer = {row["layer"]: (row["shape"], row["kept"], row["initialized"]) for row in w["layers"]}
    assert by_layer == {0: ([2, 5], 12, 3), 1: ([5, 2], 10, 2), 2: ([2, 1], 3, 0)}
    assert s["changes"]["optimizer_state"] == "reinitialized"


def test_patch_noise_regenerates_data_and_keeps_weights(client, trained):
    sid, auth, before = trained
    s = patch(client, sid, auth, {"dataset": {"noise": 20}})
    assert s["changes"]["data"] == "regenerated"
    assert s["spec"]["dataset"]["noise"] == 20
    assert s["epoch"] == 50
    assert_same_weights(before, weights(client, sid))


def test_patch_adding_a_feature_keeps_old_input_rows(client, trained):
    sid, auth, before = trained
    s = patch(client, sid, auth, {"features": ["x1", "x2", "x1_sq"]})
    assert s["changes"]["data"] == "regenerated"
    assert s["architecture"]["inputs"] == ["x1", "x2", "x1_sq"]
    assert s["epoch"] == 50
    after = weights(client, sid)
    assert after[0]["w"].shape == (3, 4)
    np.testing.assert_array_equal(after[0]["w"][:2], before[0]["w"])
    np.testing.assert_array_equal(after[0]["b"], before[0]["b"])
    assert_same_weights(before[1:], after[1:])
    assert (s["changes"]["weights"]["kept"], s["changes"]["weights"]["initialized"]) == (25, 4)


def test_patch_reordering_features_moves_input_rows(client, trained):
    sid, auth, before = trained
    patch(client, sid, auth, {"features": ["x2", "x1"]})
    after = weights(client, sid)
    np.testing.assert_array_equal(after[0]["w"], before[0]["w"][::-1])
    assert_same_weights(before[1:], after[1:])


def test_spec_version_counts_accepted_patches_only(client, new_session):
    sid, auth = new_session()
    assert patch(client, sid, auth, {"training": {"learning_rate": 0.05}})["spec_version"] == 1
    assert patch(client, sid, auth, {"training": {"momentum": 0.5}})["spec_version"] == 2
    spec = state(client, sid)["spec"]
    r = client.patch(url(sid), json={"training": {"learning_rate": 0, "momentum": 0.1}}, headers=auth)
    assert_loc(r, "training", "learning_rate")
    s = state(client, sid)
    assert s["spec_version"] == 2
    assert s["spec"] == spec  # nothing of a rejected patch is applied, not even its valid part
    assert patch(client, sid, auth, {"seed": 4})["spec_version"] == 3
    assert client.get(url(sid, "frame")).json()["spec_version"] == 3
    assert client.get(url(sid, "weights")).json()["spec_version"] == 3


# ---------------------------------------------------------------------------------------- divergence


@pytest.fixture
def diverged(client, new_session):
    sid, auth = new_session(DIVERGING)
    r = client.post(url(sid, "train"), json={"epochs": 50}, headers=auth)
    assert r.status_code == 200
    body = strict_json(r.text)
    assert body["status"] == "diverged"
    return sid, auth, body


def test_divergence_is_reported_without_nan(client, diverged):
    sid, _, body = diverged
    assert 0 <= body["epoch"] < 50
    for action in ("", "history", "weights", "export", "frame", "frame?encoding=list"):
        r = client.get(url(sid, action))
        assert r.status_code == 200
        strict_json(r.text)
    assert strict_json(client.get(url(sid)).text)["status"] == "diverged"
    for layer in weights(client, sid):
        for value in layer.values():
            assert np.isfinite(value).all()
    r = client.post(url(sid, "predict"), json={"inputs": POINTS})
    assert r.status_code == 200
    strict_json(r.text)


def test_play_while_diverged_is_409(client, diverged):
    sid, auth, _ = diverged
    r = client.post(url(sid, "play"), headers=auth)
    assert r.status_code == 409, r.text
    assert state(client, sid)["status"] == "diverged"


def test_lower_learning_rate_recovers_from_divergence(client, diverged):
    sid, auth, _ = diverged
    s = patch(client, sid, auth, {"training": {"learning_rate": 0.001}})
    assert s["status"] == "paused"
    s = train(client, sid, auth, 20)
    assert s["status"] != "diverged", f"still diverged after lowering the learning rate: {s['metrics']}"
    assert s["metrics"]["train_loss"] is not None and math.isfinite(s["metrics"]["train_loss"])


def test_reset_recovers_from_divergence(client, diverged):
    sid, auth, _ = diverged
    r = client.post(url(sid, "reset"), headers=auth)
    assert r.status_code == 200
    s = r.json()
    assert (s["status"], s["epoch"], s["step"]) == ("paused", 0, 0)
    assert s["metrics"]["train_loss"] is not None
    assert [rec["epoch"] for rec in client.get(url(sid, "history")).json()["records"]] == [0]
    patch(client, sid, auth, {"training": {"learning_rate": 0.01}})
    s = train(client, sid, auth, 10)
    assert s["status"] == "paused"
    assert s["metrics"]["train_loss"] is not None and s["metrics"]["train_loss"] < 1.0


# ---------------------------------------------------------------------------------- play/pause/step


def test_play_pause_step_reset(client, new_session):
    sid, auth = new_session()
    r = client.post(url(sid, "play"), headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "running"
    deadline = time.monotonic() + 10
    s = state(client, sid)
    while s["epoch"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        s = state(client, sid)
    assert s["epoch"] > 0, "a playing session trains in the background"
    assert s["status"] == "running"
    assert client.post(url(sid, "play"), headers=auth).json()["status"] == "running"  # idempotent

    r = client.post(url(sid, "pause"), headers=auth)
    assert r.status_code == 200
    paused = r.json()
    assert paused["status"] == "paused"
    time.sleep(0.3)
    s = state(client, sid)
    assert s["status"] == "paused"
    assert s["epoch"] == paused["epoch"], "epochs must stop changing once paused"

    r = client.post(url(sid, "step"), headers=auth)
    assert r.status_code == 200
    assert r.json()["epoch"] == paused["epoch"] + 1
    assert r.json()["status"] == "paused"
    assert r.json()["step"] == paused["step"] + 25
    time.sleep(0.1)
    assert state(client, sid)["epoch"] == paused["epoch"] + 1

    before_reset = client.get(url(sid, "history")).json()["records"]
    assert len(before_reset) > 1
    r = client.post(url(sid, "reset"), headers=auth)
    assert r.status_code == 200
    s = r.json()
    assert (s["epoch"], s["step"], s["status"]) == (0, 0, "paused")
    records = client.get(url(sid, "history")).json()["records"]
    assert [rec["epoch"] for rec in records] == [0]
    assert records[0]["train_loss"] == before_reset[0]["train_loss"]  # same seed, same first weights


def test_pause_while_paused_and_step_from_rest(client, new_session):
    sid, auth = new_session()
    r = client.post(url(sid, "pause"), headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "paused" and r.json()["epoch"] == 0
    r = client.post(url(sid, "step"), headers=auth)
    assert (r.json()["epoch"], r.json()["status"]) == (1, "paused")
    r = client.post(url(sid, "step"), headers=auth)
    assert r.json()["epoch"] == 2


def test_reset_restores_the_initial_weights(client, new_session):
    sid, auth = new_session()
    initial = weights(client, sid)
    train(client, sid, auth, 5)
    assert not np.array_equal(weights(client, sid)[0]["w"], initial[0]["w"])
    client.post(url(sid, "reset"), headers=auth)
    assert_same_weights(initial, weights(client, sid))


# ------------------------------------------------------------------------------------------- weights


def test_weights_shapes(client, new_session):
    sid, _ = new_session()
    r = client.get(url(sid, "weights"))
    body = r.json()
    assert body["epoch"] == 0 and body["spec_version"] == 0
    assert body["inputs"] == ["x1", "x2"]
    shapes = [(np.shape(layer["w"]), np.shape(layer["b"])) for layer in body["layers"]]
    assert shapes == [((2, 4), (4,)), ((4, 2), (2,)), ((2, 1), (1,))]  # w is inputs × units


def test_put_weights_roundtrip_and_shape_errors(client, new_session):
    sid, auth = new_session()
    layers = client.get(url(sid, "weights")).json()["layers"]
    r = client.put(url(sid, "weights"), json={"layers": layers}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["layers"] == layers

    bad = json.loads(json.dumps(layers))
    bad[1]["w"] = [[0.0, 0.0, 0.0]] * 4  # 4 × 3 instead of 4 × 2
    assert_loc(client.put(url(sid, "weights"), json={"layers": bad}, headers=auth), "layers", 1, "w")
    bad = json.loads(json.dumps(layers))
    bad[2]["b"] = [0.0, 0.0]
    assert_loc(client.put(url(sid, "weights"), json={"layers": bad}, headers=auth), "layers", 2, "b")
    assert_loc(client.put(url(sid, "weights"), json={"layers": layers[:2]}, headers=auth), "layers")
    bad = json.loads(json.dumps(layers))
    bad[0]["w"][0][0] = 1e39  # overflows float32 to inf
    assert_loc(client.put(url(sid, "weights"), json={"layers": bad}, headers=auth), "layers", 0, "w")
    assert client.get(url(sid, "weights")).json()["layers"] == layers  # rejected PUTs change nothing


def test_put_output_bias_changes_predictions(client, new_session):
    sid, auth = new_session()
    before = client.post(url(sid, "predict"), json={"inputs": POINTS}).json()["outputs"]
    layers = client.get(url(sid, "weights")).json()["layers"]
    layers[2]["b"] = [layers[2]["b"][0] + 1.0]
    r = client.put(url(sid, "weights"), json={"layers": layers}, headers=auth)
    assert r.status_code == 200
    assert r.json()["layers"][2]["b"] == layers[2]["b"]
    after = client.post(url(sid, "predict"), json={"inputs": POINTS}).json()["outputs"]
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)


# ------------------------------------------------------------------------------------------- predict


def test_predict_two_classes(client, new_session):
    sid, auth = new_session()
    train(client, sid, auth, 100)
    r = client.post(url(sid, "predict"), json={"inputs": [[0.0, 0.0], [5.0, 5.0], *POINTS]})
    assert r.status_code == 200
    body = r.json()
    assert len(body["outputs"]) == len(body["classes"]) == 2 + len(POINTS)
    assert set(body["classes"]) <= {0, 1}
    assert all(-1.0 <= o <= 1.0 for o in body["outputs"])
    assert [int(o >= 0) for o in body["outputs"]] == body["classes"]
    # the trained circle: centre and far corner are different classes
    assert body["classes"][0] != body["classes"][1]


def test_predict_softmax(client, new_session):
    sid, _ = new_session(SOFTMAX)
    r = client.post(url(sid, "predict"), json={"inputs": POINTS})
    assert r.status_code == 200
    body = r.json()
    assert len(body["outputs"]) == len(POINTS)
    for probs, cls in zip(body["outputs"], body["classes"], strict=True):
        assert len(probs) == 3
        assert all(0.0 <= p <= 1.0 for p in probs)
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert cls in {0, 1, 2}
        assert cls == int(np.argmax(probs))


def test_predict_regression(client, new_session):
    sid, _ = new_session({"problem": "regression", "dataset": {"name": "plane"}})
    r = client.post(url(sid, "predict"), json={"inputs": POINTS})
    assert r.status_code == 200
    body = r.json()
    assert body["classes"] is None
    assert len(body["outputs"]) == len(POINTS)
    assert all(isinstance(o, float) for o in body["outputs"])


@pytest.mark.parametrize("body", [{"inputs": []}, {"inputs": [[1.0, 2.0, 3.0]]}, {"inputs": "x"}, {}])
def test_predict_rejects_bad_inputs(client, new_session, body):
    sid, _ = new_session()
    assert client.post(url(sid, "predict"), json=body).status_code == 422


def test_predict_respects_max_predict_points(make_client):
    small = make_client(max_predict_points=5)
    sid, _ = create_session(small)
    assert small.post(url(sid, "predict"), json={"inputs": [[0.0, 0.0]] * 5}).status_code == 200
    assert_loc(small.post(url(sid, "predict"), json={"inputs": [[0.0, 0.0]] * 6}), "inputs")


# --------------------------------------------------------------------------------------------- frame


def _decode(array: dict[str, Any]) -> np.ndarray:
    raw = base64.b64decode(array["data"])
    return np.frombuffer(raw, dtype=np.dtype(array["dtype"]).newbyteorder("<")).reshape(array["shape"])


def test_frame_base64(client, new_session):
    sid, auth = new_session()
    train(client, sid, auth, 3)
    r = client.get(url(sid, "frame"))
    assert r.status_code == 200
    f = strict_json(r.text)
    assert (f["epoch"], f["status"], f["spec_version"]) == (3, "paused", 0)
    assert f["step"] == 75
    assert set(f["metrics"]) == METRIC_KEYS | FIT_KEYS
    assert f["metrics"] == state(client, sid)["metrics"]
    out = f["output"]
    assert (out["dtype"], out["shape"]) == ("uint8", [100, 100])
    assert len(base64.b64decode(out["data"])) == 10_000
    assert (f["neurons"]["dtype"], f["neurons"]["shape"]) == ("uint8", [6, 25, 25])
    assert len(base64.b64decode(f["neurons"]["data"])) == 6 * 25 * 25
    assert f["grad_norms"]["shape"] == [3]
    norms = _decode(f["grad_norms"])
    assert np.isfinite(norms).all() and (norms >= 0).all()
    current = weights(client, sid)
    for i, layer in enumerate(current):
        for name in ("w", "b"):
            arr = f[f"{name}{i}"]
            assert arr["shape"] == list(layer[name].shape)
            np.testing.assert_array_equal(_decode(arr), layer[name])


def test_frame_as_lists(client, new_session):
    sid, _ = new_session()
    r = client.get(url(sid, "frame"), params={"encoding": "list"})
    assert r.status_code == 200
    f = strict_json(r.text)
    out = f["output"]["data"]
    assert len(out) == 100 and all(len(row) == 100 for row in out)
    assert all(isinstance(v, int) and 0 <= v <= 255 for row in out for v in row)
    neurons = f["neurons"]["data"]
    assert len(neurons) == 6 and len(neurons[0]) == 25 and len(neurons[0][0]) == 25
    assert len(f["grad_norms"]["data"]) == 3
    assert f["w0"]["data"] == client.get(url(sid, "weights")).json()["layers"][0]["w"]
    assert client.get(url(sid, "frame"), params={"encoding": "hex"}).status_code == 422


# -------------------------------------------------------------------------------------------- export


def test_export_reproduces_the_initial_weights(client, new_session):
    sid, auth = new_session({"seed": 7})
    initial = weights(client, sid)
    train(client, sid, auth, 10)
    r = client.get(url(sid, "export"))
    assert r.status_code == 200
    exported = r.json()
    assert exported["epoch"] == 10
    assert exported["spec"] == state(client, sid)["spec"]
    assert exported["spec"]["seed"] == 7
    trained_layers = client.get(url(sid, "weights")).json()["layers"]
    assert exported["weights"] == trained_layers

    copy_id, _ = new_session(exported["spec"])
    copy = state(client, copy_id)
    assert copy["spec"] == exported["spec"]
    assert copy["epoch"] == 0
    assert_same_weights(initial, weights(client, copy_id))
    other_seed, _ = new_session()
    assert not np.array_equal(weights(client, other_seed)[0]["w"], initial[0]["w"])


# -------------------------------------------------------------------------------------------- limits


def test_max_sessions(make_client):
    """At the limit the oldest idle session makes room (its watchers are told, its socket closes with
    4410); when every session is training, the answer is 429."""
    small = make_client(max_sessions=2)
    first, _ = create_session(small)
    second, auth = create_session(small)
    assert small.post(f"{url(second)}/play", headers=auth).status_code == 200  # training: not idle
    with small.websocket_connect(f"/ws/sessions/{first}") as ws:
        assert ws.receive_json()["type"] == "hello"
        third, third_auth = create_session(small)  # the first is the only idle one: it goes, watched or not
        assert small.get(url(first)).status_code == 404, "the idle session made room"
        texts = []
        while (message := ws.receive())["type"] != "websocket.close":
            texts.append(message.get("text") or "")
        assert message["code"] == 4410
        assert any('"closed"' in t and "make room" in t for t in texts), texts
    assert small.post(f"{url(third)}/play", headers=third_auth).status_code == 200
    r = small.post(SESSIONS)
    assert r.status_code == 429 and "all playing" in r.text, r.text
    assert small.delete(url(second), headers=auth).status_code == 204
    assert small.post(SESSIONS).status_code == 201
    small.post(f"{url(third)}/pause", headers=third_auth)


def test_sessions_per_client(make_client):
    """One client's sessions have a share of their own: past it, the client's own oldest idle one goes."""
    small = make_client(max_sessions_per_client=2)
    a, _ = create_session(small)
    b, _ = create_session(small)
    c, _ = create_session(small)
    assert small.get(url(a)).status_code == 404
    assert small.get(url(b)).status_code == 200 and small.get(url(c)).status_code == 200


def test_max_points(make_client):
    small = make_client(max_points=100)
    assert_loc(small.post(SESSIONS, json={"dataset": {"n": 200}}), "dataset", "n")
    r = small.post(SESSIONS)  # the default 500 points exceed the limit too
    assert_loc(r, "dataset", "n")
    sid, auth = create_session(small, {"dataset": {"n": 100}})
    assert_loc(small.patch(url(sid), json={"dataset": {"n": 200}}, headers=auth), "dataset", "n")
    s = state(small, sid)
    assert s["spec"]["dataset"]["n"] == 100 and s["spec_version"] == 0


# ------------------------------------------------------------------------------------------- catalog


def test_datasets_catalog(client):
    r = client.get("/api/v1/datasets")
    assert r.status_code == 200
    datasets = {d["name"]: d for d in r.json()["datasets"]}
    names = ["circle", "xor", "gauss", "spiral", "moons", "checkerboard", "blobs3", "plane", "multigauss"]
    assert sorted(datasets) == sorted(names)
    for name, d in datasets.items():
        assert d["problem"] == ("regression" if name in ("plane", "multigauss") else "classification")
    assert datasets["blobs3"]["classes"] == 3
    assert datasets["circle"]["classes"] == 2
    features = [f["name"] for f in r.json()["features"]]
    assert features == ["x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2"]


def test_activations_catalog(client):
    r = client.get("/api/v1/activations")
    assert r.status_code == 200
    acts = {a["name"]: a for a in r.json()["activations"]}
    assert len(acts) == 13
    assert {"linear", "step", "sign", "sigmoid", "tanh", "relu"} <= set(acts)
    assert {n for n, a in acts.items() if a["zero_gradient"]} == {"step", "sign"}
    assert acts["relu"]["range"] == [0.0, None]  # infinity is not JSON
    strict_json(r.text)


def test_optimizers_catalog(client):
    r = client.get("/api/v1/optimizers")
    assert r.status_code == 200
    names = [o["name"] for o in r.json()["optimizers"]]
    assert len(names) == 7
    assert set(names) == {"sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "adagrad"}


def test_every_preset_creates_a_session(make_client):
    client = make_client(warm_start=False)  # creating is what is tested: no background compile per preset
    r = client.get("/api/v1/presets")
    assert r.status_code == 200
    presets = r.json()["presets"]
    assert len(presets) >= 5
    for preset in presets:
        created = client.post(SESSIONS, json=preset["spec"])
        assert created.status_code == 201, f"preset {preset['name']}: {created.text}"
        assert_subset(preset["spec"], created.json()["spec"], preset["name"])
        client.delete(url(created.json()["id"]), headers={"Authorization": f"Bearer {created.json()['token']}"})


# --------------------------------------------------------------------------------------------- notes


def test_zero_gradient_activation_gets_a_note(client, new_session):
    hidden = [{"units": 4, "activation": "step"}, {"units": 2, "activation": "tanh"}]
    sid, _ = new_session({"network": {"hidden": hidden}})
    notes = state(client, sid)["notes"]
    assert any("step" in n and "gradient" in n and ("zero" in n or " 0 " in n) for n in notes), notes


# -------------------------------------------------------------------------------------------- delete


def test_delete(client, new_session):
    sid, auth = new_session()
    r = client.delete(url(sid), headers=auth)
    assert r.status_code == 204
    assert r.content == b""
    assert client.get(url(sid)).status_code == 404
    assert client.delete(url(sid), headers=auth).status_code == 404


def test_delete_a_playing_session(client, new_session):
    sid, auth = new_session()
    assert client.post(url(sid, "play"), headers=auth).status_code == 200
    assert client.delete(url(sid), headers=auth).status_code == 204
    assert client.get(url(sid, "frame")).status_code == 404
