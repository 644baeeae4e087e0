"""Inside the optimization, through REST: loss slices around a session's weights, its path on them, the line
from its initial weights, gradient health with diagnoses, and sharpness."""

from __future__ import annotations

import json

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


def _landscape(client, sid, **params):
    r = client.get(f"/api/v1/sessions/{sid}/landscape", params=params)
    assert r.status_code == 200, r.text
    out = r.json()
    return out, np.array(out["loss"], dtype=float)


@pytest.fixture(scope="module")
def trained(client):
    spec = {"dataset": {"name": "spiral"}, "features": FEATURES, "network": {"hidden": [{"units": 8}] * 3}}
    sid, auth = _session(client, spec)
    state = _train(client, sid, auth, 60)
    return sid, auth, state


@pytest.mark.parametrize("directions", ["random", "init", "pca"])
def test_the_slice_is_centred_on_the_sessions_training_loss(client, trained, directions):
    sid, _, state = trained
    out, grid = _landscape(client, sid, directions=directions, resolution=21)
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


def test_the_line_from_the_initial_weights(client, trained):
    sid, _, state = trained
    out = client.get(f"/api/v1/sessions/{sid}/interpolation", params={"steps": 31}).json()
    t, loss = np.array(out["t"]), np.array(out["loss"], dtype=float)
    assert len(t) == 31 and t[0] == pytest.approx(-0.25) and t[-1] == pytest.approx(1.25)
    at_one = int(np.argmin(np.abs(t - 1.0)))
    assert loss[at_one] == pytest.approx(state["metrics"]["train_loss"], rel=1e-4)
    assert loss[int(np.argmin(np.abs(t)))] > loss[at_one]  # training went downhill from the start


def test_the_line_between_two_saved_weight_sets(client):
    sid, auth = _session(client, {"dataset": {"name": "xor"}, "network": {"hidden": [{"units": 4}] * 2}})
    saved0 = client.get(f"/api/v1/sessions/{sid}/weights").json()
    loss0 = client.get(f"/api/v1/sessions/{sid}").json()["metrics"]["train_loss"]
    loss30 = _train(client, sid, auth, 30)["metrics"]["train_loss"]
    saved30 = client.get(f"/api/v1/sessions/{sid}/weights").json()
    _train(client, sid, auth, 30)
    url = f"/api/v1/sessions/{sid}/interpolation"
    r = client.post(
        url, json={"start": {"layers": saved0["layers"]}, "end": {"layers": saved30["layers"]}, "steps": 13}
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["from"] == out["to"] == "given" and out["epoch"] == 60 and len(out["loss"]) == 13
    assert out["t"][2] == pytest.approx(0.0) and out["t"][10] == pytest.approx(1.0)
    assert out["loss"][2] == pytest.approx(loss0, rel=1e-5) and out["loss"][10] == pytest.approx(loss30, rel=1e-5)
    # one end given: the other is the session's (here: from the epoch-30 weights to the current ones)
    now = client.get(f"/api/v1/sessions/{sid}").json()["metrics"]["train_loss"]
    one = client.post(url, json={"start": {"layers": saved30["layers"]}, "steps": 13}).json()
    assert one["to"] == "current" and one["loss"][2] == pytest.approx(loss30, rel=1e-5)
    assert one["loss"][10] == pytest.approx(now, rel=1e-5)
    # the same as GET when nothing is given
    assert client.post(url, json={"steps": 13}).json()["loss"] == client.get(url, params={"steps": 13}).json()["loss"]
    bad = json.loads(json.dumps(saved0["layers"]))
    bad[1]["w"] = [[0.0]]
    r = client.post(url, json={"end": {"layers": bad}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-4:] == ["end", "layers", 1, "w"], r.text
    r = client.post(url, json={"start": {"layers": saved0["layers"][:2]}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-2:] == ["start", "layers"], r.text
    assert client.post(url, json={"steps": 2}).status_code == 422
    assert client.get(f"/api/v1/sessions/{sid}").json()["epoch"] == 60  # nothing changed the session


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


# ------------------------------------------------------------------------------------------ CNN sessions

TINY_CNN = {
    "dataset": {"name": "digits", "n": 400},
    "network": {
        "kind": "cnn",
        "layers": [
            {"type": "conv", "filters": 4, "kernel": 3, "activation": "relu"},
            {"type": "pool", "kind": "max", "size": 2},
            {"type": "flatten"},
            {"type": "dense", "units": 8, "activation": "tanh"},
        ],
    },
    "training": {"optimizer": "adam", "learning_rate": 0.01, "batch_size": 20},
}


@pytest.fixture(scope="module")
def cnn_trained(client):
    sid, auth = _session(client, TINY_CNN)
    state = _train(client, sid, auth, 6)
    return sid, auth, state


def _cnn_view_loss(spec, sid, client, n):
    """The session's CNN loss on its first n training images, computed here from its exported weights."""
    import jax.numpy as jnp

    from server.engines import cnn as cx
    from server.ml import cnn
    from server.spec import ExperimentSpec

    full = ExperimentSpec.model_validate(client.get(f"/api/v1/sessions/{sid}").json()["spec"])
    cfg, data = cx.config_for(full), cx.build_data(full)
    layers = client.get(f"/api/v1/sessions/{sid}/weights").json()["layers"]
    params = [{k: jnp.asarray(v, jnp.float32) for k, v in layer.items() if v is not None} for layer in layers]
    loss, _ = cnn.evaluate_cnn(cfg, params, cnn.init_cnn_bn_state(cfg.arch), data.x_train[:n], data.y_train[:n])
    return float(loss)


@pytest.mark.parametrize("directions", ["random", "init", "pca"])
def test_a_cnn_slice_is_centred_on_its_loss_over_the_view_images(client, cnn_trained, directions):
    sid, _, state = cnn_trained
    out, grid = _landscape(client, sid, directions=directions, resolution=11)
    assert grid.shape == (11, 11) and out["off_scale"] == 0 and grid[5, 5] == out["center_loss"]
    # 8×8 digits: 200 training images fit the view budget whole, so the centre is the training loss
    assert out["examples"] == 200
    assert out["center_loss"] == pytest.approx(state["metrics"]["train_loss"], rel=1e-4)
    assert out["center_loss"] == pytest.approx(_cnn_view_loss(TINY_CNN, sid, client, 200), rel=1e-4)
    path = out["trajectory"]
    assert path["epochs"][0] == 0 and path["epochs"][-1] == 6
    assert path["true_loss"][-1] == pytest.approx(out["center_loss"], rel=1e-5)
    if directions == "init":
        assert path["alpha"][0] == pytest.approx(-1.0, abs=1e-4) and path["off_plane"][0] == pytest.approx(0, abs=1e-3)


def test_a_big_cnn_views_a_subset_and_evaluates_the_path_sparsely(client):
    spec = {
        "dataset": {"name": "shapes", "n": 300, "image_size": 28},
        "network": {"kind": "cnn", "layers": [{"type": "conv", "filters": 2, "kernel": 3}, {"type": "flatten"}]},
        "training": {"batch_size": 50},
    }
    sid, auth = _session(client, spec)
    for _ in range(30):  # 30 recorded points: more than the path's evaluated losses
        _train(client, sid, auth, 1)
    out = client.get(f"/api/v1/sessions/{sid}/landscape", params={"resolution": 11}).json()
    assert out["examples"] == 64  # 64 28×28 images: the view budget
    assert out["center_loss"] == pytest.approx(_cnn_view_loss(spec, sid, client, 64), rel=1e-4)
    path = out["trajectory"]
    assert len(path["epochs"]) == 31 and all(a is not None for a in path["alpha"])  # every point projected
    evaluated = [v for v in path["true_loss"] if v is not None]
    assert len(evaluated) == 24 and path["true_loss"][0] is not None and path["true_loss"][-1] is not None


def test_cnn_gradient_health_sharpness_line_and_race(client, cnn_trained):
    sid, auth, _ = cnn_trained
    out = client.get(f"/api/v1/sessions/{sid}/gradients").json()
    # one row per layer with weights: the conv, the dense, the softmax head
    assert [row["layer"] for row in out["layers"]] == [0, 3, 4]
    assert [row["activation"] for row in out["layers"]] == ["relu", "tanh", "softmax"]
    assert [row["units"] for row in out["layers"]] == [4, 8, 10]
    assert all(row["grad_norm"] > 0 and row["nonfinite_grads"] == 0 for row in out["layers"])
    sharp = client.get(f"/api/v1/sessions/{sid}/sharpness").json()
    assert sharp["top_eigenvalue"] > 0 and sharp["stability_threshold"] == pytest.approx(200.0)
    line = client.get(f"/api/v1/sessions/{sid}/interpolation", params={"steps": 13}).json()
    assert len(line["loss"]) == 13 and line["t"][2] == pytest.approx(0.0)
    assert line["loss"][-3] == pytest.approx(client.get(f"/api/v1/sessions/{sid}/landscape").json()["center_loss"])
    runs = [{"optimizer": "sgd", "learning_rate": 0.05}, {"optimizer": "adam", "learning_rate": 0.005}]
    r = client.post(f"/api/v1/sessions/{sid}/race", json={"runs": runs, "epochs": 4, "resolution": 11})
    assert r.status_code == 200, r.text
    a, b = r.json()["runs"]
    assert a["curve"]["train_loss"][0] == pytest.approx(b["curve"]["train_loss"][0])
    assert a["curve"]["epoch"][-1] == b["curve"]["epoch"][-1] == 4
    assert client.get(f"/api/v1/sessions/{sid}").json()["epoch"] == 6  # the session is untouched


def test_a_cnn_diagnosis_only_suggests_what_a_cnn_can_take(client):
    deep = [{"type": "conv", "filters": 4, "kernel": 3, "activation": "sigmoid"}] * 5
    spec = {"dataset": {"name": "digits", "n": 300}, "network": {"kind": "cnn", "layers": [*deep, {"type": "flatten"}]}}
    sid, _ = _session(client, spec)
    out = client.get(f"/api/v1/sessions/{sid}/gradients").json()
    findings = out["diagnosis"]
    assert findings, out
    for finding in findings:
        assert all(set(fix) <= {"activation", "learning_rate"} for fix in finding["fixes"])
    (vanishing,) = [d for d in findings if d["kind"] == "vanishing"]
    assert {"activation": "relu"} in vanishing["fixes"] and "try ReLU" in vanishing["message"]
    assert "of layer 7's gradient" in vanishing["message"]  # the head: after five convs and the flatten
    # every CNN frame carries the same diagnosis, and the health arrays per layer with weights
    frame = client.get(f"/api/v1/sessions/{sid}/frame", params={"encoding": "list"}).json()
    assert [d["message"] for d in frame["diagnosis"]] == [d["message"] for d in findings]
    assert frame["grad_layers"]["data"] == [0, 1, 2, 3, 4, 6]
    norms = frame["grad_norms"]["data"]
    assert norms == pytest.approx([row["grad_norm"] for row in out["layers"]], rel=1e-4)
    assert len(frame["dead_fraction"]["data"]) == len(frame["saturated_fraction"]["data"]) == 6


@pytest.mark.parametrize(("resolution", "threads"), [(11, 2), (51, 2), (21, 3)])
def test_a_slice_in_bands_is_the_same_slice(resolution, threads):
    # A paused session's slice is cut into bands of rows computed at once in threads: the same numbers.
    import jax

    from server.engines import mlp as ex
    from server.ml import probes as opt
    from server.spec import ExperimentSpec

    spec = ExperimentSpec.model_validate({"dataset": {"name": "spiral"}, "network": {"hidden": [{"units": 6}] * 2}})
    cfg, data = ex.config_for(spec), ex.build_data(spec)
    state = ex.init_train_state(spec, cfg)
    d1, d2 = opt.random_plane(jax.random.PRNGKey(3), state.params)
    args = (cfg, state.params, d1, d2, state.bn_state, data.x_train, data.y_train, 0.8, resolution)
    one, bands = opt.slice_grid(*args, threads=1), opt.slice_grid(*args, threads=threads)
    assert one.shape == bands.shape == (resolution, resolution)
    np.testing.assert_allclose(bands, one, rtol=1e-6)
    mid = resolution // 2
    assert bands[mid, mid] == pytest.approx(
        float(ex.evaluate(cfg, state.params, state.bn_state, data.x_train, data.y_train)[0]), rel=1e-5
    )
