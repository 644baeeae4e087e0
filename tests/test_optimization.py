"""Inside the optimization, through REST: loss slices around a session's weights, its path on them, the line
from its initial weights, gradient health with diagnoses, and sharpness."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow

FEATURES = ["x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2"]


def _session(client, spec):
    r = client.post("/api/v1/sessions", json=spec)
    assert r.status_code == 201, r.text
    body = r.json()
    return body["id"], {"Authorization": f"Bearer {body['token']}"}


def _train(client, sid, auth, epochs):
    r = client.post(f"/api/v1/sessions/{sid}/train", json={"epochs": epochs}, headers=auth)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def trained(client):
    spec = {"dataset": {"name": "spiral"}, "features": FEATURES, "network": {"hidden": [{"units": 8}] * 3}}
    sid, auth = _session(client, spec)
    state = _train(client, sid, auth, 60)
    return sid, auth, state


@pytest.mark.parametrize("directions", ["random", "init", "pca"])
def test_the_slice_is_centred_on_the_sessions_training_loss(client, trained, directions):
    sid, _, state = trained
    r = client.get(f"/api/v1/sessions/{sid}/landscape", params={"directions": directions, "resolution": 21})
    assert r.status_code == 200, r.text
    out = r.json()
    grid = np.array(out["loss"], dtype=float)
    assert grid.shape == (21, 21) and out["off_scale"] == 0
    assert out["center_loss"] == pytest.approx(state["metrics"]["train_loss"], rel=1e-5)
    assert grid[10, 10] == out["center_loss"] and out["loss_min"] <= out["center_loss"] <= out["loss_max"]
    assert out["coordinates"][0] == pytest.approx(-out["span"]) and out["coordinates"][10] == pytest.approx(0.0)
    path = out["trajectory"]
    assert path["epochs"][0] == 0 and path["epochs"][-1] == 60 and len(path["alpha"]) == len(path["epochs"])
    # the path ends at the centre (the current weights are the plane's origin), on the plane
    assert path["alpha"][-1] == pytest.approx(0.0, abs=1e-5) and path["off_plane"][-1] == pytest.approx(0, abs=1e-4)
    assert path["true_loss"][-1] == pytest.approx(out["center_loss"], rel=1e-5)
    if directions == "init":  # the initial weights: α = −1 on d1 = current − initial
        assert path["alpha"][0] == pytest.approx(-1.0, abs=1e-4) and path["beta"][0] == pytest.approx(0, abs=1e-4)
        assert path["off_plane"][0] == pytest.approx(0, abs=1e-3)
        assert path["plane_loss"][0] == pytest.approx(path["true_loss"][0], rel=1e-4)
    if directions == "pca":
        ratios = out["explained_variance"]
        assert len(ratios) == 2 and ratios[0] >= ratios[1] >= 0 and sum(ratios) <= 1 + 1e-6
        assert out["span"] >= max(abs(a) for a in path["alpha"])  # the whole path is on the picture


def test_landscape_options_out_of_range_are_422_naming_them(client, trained, new_session):
    sid, _, _ = trained
    url = f"/api/v1/sessions/{sid}/landscape"
    for params, field in (
        ({"resolution": 5}, "resolution"),
        ({"resolution": 102}, "resolution"),
        ({"span": 0}, "span"),
        ({"span": 1000}, "span"),
        ({"directions": "sideways"}, "directions"),
    ):
        r = client.get(url, params=params)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == field, (params, r.text)
    fresh, _ = new_session()
    r = client.get(f"/api/v1/sessions/{fresh}/landscape", params={"directions": "pca"})
    assert r.status_code == 422 and "trajectory" in r.json()["detail"][0]["msg"]
    cnn, _ = _session(client, {"dataset": {"name": "bars", "n": 100}, "network": {"kind": "cnn"}})
    r = client.get(f"/api/v1/sessions/{cnn}/gradients")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "kind"


def test_the_line_from_the_initial_weights(client, trained):
    sid, _, state = trained
    out = client.get(f"/api/v1/sessions/{sid}/interpolation", params={"steps": 31}).json()
    t, loss = np.array(out["t"]), np.array(out["loss"], dtype=float)
    assert len(t) == 31 and t[0] == pytest.approx(-0.25) and t[-1] == pytest.approx(1.25)
    at_one = int(np.argmin(np.abs(t - 1.0)))
    assert loss[at_one] == pytest.approx(state["metrics"]["train_loss"], rel=1e-4)
    assert loss[int(np.argmin(np.abs(t)))] > loss[at_one]  # training went downhill from the start


def test_the_trajectory_restarts_on_reset_and_on_a_new_shape_and_stays_bounded(client):
    sid, auth = _session(client, {"dataset": {"name": "circle"}})
    _train(client, sid, auth, 3000)  # many chunks: the path is thinned, never longer than its limit
    path = client.get(f"/api/v1/sessions/{sid}/landscape", params={"resolution": 11}).json()["trajectory"]
    assert 10 <= len(path["epochs"]) <= 200 and path["epochs"][0] == 0 and path["epochs"][-1] == 3000
    assert path["epochs"] == sorted(path["epochs"])
    r = client.patch(
        f"/api/v1/sessions/{sid}", json={"network": {"hidden": [{"units": 5}, {"units": 2}]}}, headers=auth
    )
    assert r.status_code == 200
    path = client.get(f"/api/v1/sessions/{sid}/landscape", params={"resolution": 11}).json()["trajectory"]
    assert path["epochs"] == [3000]  # a new shape starts a new path
    assert client.post(f"/api/v1/sessions/{sid}/reset", headers=auth).status_code == 200
    path = client.get(f"/api/v1/sessions/{sid}/landscape", params={"resolution": 11}).json()["trajectory"]
    assert path["epochs"] == [0]


def test_vanishing_gradients_are_diagnosed_with_fixes_that_apply_live(client):
    deep = [{"units": 8, "activation": "sigmoid"}] * 6
    spec = {"dataset": {"name": "circle"}, "network": {"hidden": deep, "init": "normal"}}
    sid, auth = _session(client, spec)
    out = client.get(f"/api/v1/sessions/{sid}/gradients").json()
    assert len(out["layers"]) == 7 and out["layers"][0]["activation"] == "sigmoid"
    first = out["layers"][0]
    assert first["grad_norm"] < 1e-3 * out["layers"][-1]["grad_norm"] and first["update_ratio"] is not None
    (finding,) = [d for d in out["diagnosis"] if d["kind"] == "vanishing"]
    assert finding["layer"] == 0 and "layer 1 gets 10" in finding["message"] and "sigmoid" in finding["message"]
    assert {"activation": "relu", "init": "he"} in finding["fixes"]
    # every frame says so too, with the dead and saturated shares per layer
    frame = client.get(f"/api/v1/sessions/{sid}/frame", params={"encoding": "list"}).json()
    assert [d["kind"] for d in frame["diagnosis"]] == [d["kind"] for d in out["diagnosis"]]
    assert len(frame["dead_fraction"]["data"]) == len(frame["saturated_fraction"]["data"]) == 7
    healthy = {
        "dataset": {"name": "circle"},
        "network": {"hidden": [{"units": 8, "activation": "relu"}] * 6, "init": "he"},
    }
    sid2, _ = _session(client, healthy)
    assert not [
        d for d in client.get(f"/api/v1/sessions/{sid2}/gradients").json()["diagnosis"] if d["kind"] == "vanishing"
    ]
    assert not [d for d in client.get(f"/api/v1/sessions/{sid2}/frame").json()["diagnosis"] if d["kind"] == "vanishing"]


def test_sharpness_is_tracked_against_the_stability_line(client):
    spec = {"dataset": {"name": "circle"}, "training": {"learning_rate": 0.1}}
    sid, auth = _session(client, spec)
    first = client.get(f"/api/v1/sessions/{sid}/sharpness").json()
    assert first["stability_threshold"] == pytest.approx(20.0) and first["top_eigenvalue"] is not None
    _train(client, sid, auth, 50)
    out = client.get(f"/api/v1/sessions/{sid}/sharpness", params={"iters": 30}).json()
    assert [h["epoch"] for h in out["history"]] == [0, 50] and out["iters"] == 30
    assert client.get(f"/api/v1/sessions/{sid}/sharpness", params={"iters": 0}).status_code == 422


def test_an_optimizer_race_shares_one_plane_and_leaves_the_session_alone(client):
    sid, auth = _session(client, {"dataset": {"name": "xor"}, "network": {"hidden": [{"units": 4}, {"units": 2}]}})
    _train(client, sid, auth, 5)
    before = client.get(f"/api/v1/sessions/{sid}/weights").json()["layers"]
    runs = [{"optimizer": "sgd", "learning_rate": 0.03}, {"optimizer": "adam", "learning_rate": 0.01}]
    r = client.post(f"/api/v1/sessions/{sid}/race", json={"runs": runs, "epochs": 80, "resolution": 21})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["from_epoch"] == 5 and out["centred_on"] == "mean" and not out["notes"]
    assert np.array(out["loss"], dtype=float).shape == (21, 21)
    a, b = out["runs"]
    assert a["label"] == "sgd (learning rate 0.03)" and b["optimizer"] == "adam"
    # the same start: both paths begin at the same point of the plane, with the same loss
    assert a["alpha"][0] == pytest.approx(b["alpha"][0], abs=1e-5) and a["beta"][0] == pytest.approx(
        b["beta"][0], abs=1e-5
    )
    assert a["curve"]["train_loss"][0] == pytest.approx(b["curve"]["train_loss"][0])
    assert a["curve"]["epoch"][-1] == b["curve"]["epoch"][-1] == 80
    assert a["curve"]["train_loss"][-1] != pytest.approx(b["curve"]["train_loss"][-1])  # they went different ways
    assert out["span"] >= max(abs(v) for run in out["runs"] for v in run["alpha"] + run["beta"])
    assert client.get(f"/api/v1/sessions/{sid}/weights").json()["layers"] == before  # the session is untouched
    assert client.get(f"/api/v1/sessions/{sid}").json()["epoch"] == 5
    # centred on one of them: said so
    r = client.post(f"/api/v1/sessions/{sid}/race", json={"runs": runs, "epochs": 20, "resolution": 11, "center": 1})
    assert r.status_code == 200 and "centred on adam" in r.json()["notes"][0]
    assert r.json()["runs"][1]["alpha"][-1] == pytest.approx(0, abs=1e-5)
    for body, field in (
        ({"runs": runs[:1]}, "runs"),
        ({"runs": runs, "center": 2}, "center"),
        ({"runs": [{"optimizer": "lion", "learning_rate": 0.1}] * 2}, "optimizer"),
        ({"runs": runs, "epochs": 0}, "epochs"),
    ):
        r = client.post(f"/api/v1/sessions/{sid}/race", json=body)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == field, (body, r.text)
