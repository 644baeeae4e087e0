"""CNN sessions through REST: the lecture's image lessons learn, geometry errors name the layer, live edits
keep surviving filters, frames carry feature maps and the confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest

from server.frames import decode_binary
from server.presets import PRESETS

pytestmark = pytest.mark.slow

EDGE_H = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -1.0, -1.0]])  # a horizontal edge, light above


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-12))


def _create(client, spec):
    r = client.post("/api/v1/sessions", json=spec)
    assert r.status_code == 201, r.text
    body = r.json()
    return body, {"Authorization": f"Bearer {body['token']}"}


def _train(client, body, auth, epochs):
    r = client.post(f"/api/v1/sessions/{body['id']}/train", json={"epochs": epochs}, headers=auth)
    assert r.status_code == 200, r.text
    return r.json()


def test_lenet_preset_learns_the_digits_within_20_epochs(client):
    body, auth = _create(client, PRESETS["cnn-lenet-digits"]["spec"])
    arch = body["architecture"]
    assert arch["inputs"] == ["8×8×1 image"] and arch["output"]["units"] == 10
    assert [layer["output_shape"] for layer in arch["layers"]] == [[8, 8, 8], [4, 4, 8], [4, 4, 16], [2, 2, 16], [32]]
    assert arch["n_train"] + arch["n_test"] == 1797
    state = _train(client, body, auth, 20)
    assert state["epoch"] == 20
    assert state["metrics"]["test_accuracy"] > 0.95
    # The frame's confusion matrix counts every test image once; its diagonal is the accuracy.
    frame = client.get(f"/api/v1/sessions/{body['id']}/frame", params={"encoding": "list"}).json()
    confusion = np.array(frame["confusion"]["data"])
    assert confusion.shape == (10, 10) and confusion.sum() == arch["n_test"]
    assert np.trace(confusion) / confusion.sum() == pytest.approx(state["metrics"]["test_accuracy"], abs=1e-6)
    # Feature maps of the example images: (examples, filters, H, W) per spatial layer, one byte per cell.
    maps0 = np.array(frame["maps0"]["data"])
    assert maps0.shape == (8, 8, 8, 8) and maps0.min() >= 0 and maps0.max() <= 255
    assert np.array(frame["maps3"]["data"]).shape == (8, 16, 2, 2)
    assert frame["class_names"] == [str(d) for d in range(10)]
    # The surest mistakes: test images answered wrongly, most confident first.
    index = np.array(frame["wrong_index"]["data"], dtype=int)
    said, sure = np.array(frame["wrong_predicted"]["data"]), np.array(frame["wrong_confidence"]["data"])
    labels = np.array(client.get(f"/api/v1/sessions/{body['id']}/data").json()["test"]["labels"])
    wrong = int(np.trace(confusion) != confusion.sum()) and min(8, confusion.sum() - np.trace(confusion))
    assert len(index) == wrong and np.all(labels[index] != said)
    assert np.all(np.diff(sure) <= 0) and np.array(frame["wrong_images"]["data"]).shape == (wrong, 1, 8, 8)


def test_one_conv_layer_on_bars_learns_edge_detectors(client):
    body, auth = _create(client, PRESETS["cnn-bars-edges"]["spec"])
    before = np.array(client.get(f"/api/v1/sessions/{body['id']}/weights").json()["layers"][0]["w"])[:, :, 0, :]
    state = _train(client, body, auth, 10)
    assert state["metrics"]["test_accuracy"] > 0.95
    w = np.array(client.get(f"/api/v1/sessions/{body['id']}/weights").json()["layers"][0]["w"])[:, :, 0, :]
    assert w.shape == (3, 3, 4) and not np.allclose(w, before)

    def best(filters, kernel):
        return max(abs(_corr(filters[:, :, f], kernel)) for f in range(filters.shape[-1]))

    # Some filter responds to horizontal edges and some to vertical ones.
    assert best(w, EDGE_H) > 0.55 and best(w, EDGE_H.T) > 0.55


def test_convnetjs_net_trains_on_shapes(client):
    spec = PRESETS["cnn-convnetjs"]["spec"]
    spec = {**spec, "dataset": {**spec["dataset"], "n": 600}}
    body, auth = _create(client, spec)
    assert [layer["output_shape"] for layer in body["architecture"]["layers"]] == [
        [28, 28, 8],
        [14, 14, 8],
        [14, 14, 16],
        [4, 4, 16],
    ]
    first = body["metrics"]["test_accuracy"]
    state = _train(client, body, auth, 4)
    assert state["metrics"]["test_accuracy"] > max(0.6, first + 0.2)  # 4 classes: chance is 0.25


@pytest.mark.parametrize(
    ("layers", "index", "words"),
    [
        (
            [{"type": "conv", "kernel": 7, "padding": "valid"}, {"type": "conv", "kernel": 5, "padding": "valid"}],
            1,
            "5×5",
        ),
        ([{"type": "pool", "size": 4}, {"type": "pool", "size": 4}], 1, "larger than its input"),
        ([{"type": "flatten"}, {"type": "conv"}], 1, "after a flatten"),
    ],
)
def test_impossible_geometry_is_422_naming_the_layer(client, layers, index, words):
    r = client.post(
        "/api/v1/sessions", json={"dataset": {"name": "digits"}, "network": {"kind": "cnn", "layers": layers}}
    )
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "network", "layers", index]
    assert words in error["msg"] and f"layer {index}" in error["msg"]


@pytest.mark.parametrize(
    ("spec", "loc"),
    [
        ({"dataset": {"name": "digits"}}, ["body", "network", "kind"]),
        ({"network": {"kind": "cnn"}}, ["body", "dataset", "name"]),
        ({"dataset": {"name": "digits", "n": 5000}, "network": {"kind": "cnn"}}, ["body", "dataset", "n"]),
        (
            {"dataset": {"name": "digits", "image_size": 28}, "network": {"kind": "cnn"}},
            ["body", "dataset", "image_size"],
        ),
        (
            {"dataset": {"name": "bars"}, "network": {"kind": "cnn", "layers": [{"type": "conv", "filters": 65}]}},
            ["body", "network", "layers", 0, "conv", "filters"],
        ),
        (
            {"dataset": {"name": "bars", "augment": {"rotate": 90}}, "network": {"kind": "cnn"}},
            ["body", "dataset", "augment", "rotate"],
        ),
        (
            {"dataset": {"name": "bars", "augment": {"shift": 5}}, "network": {"kind": "cnn"}},
            ["body", "dataset", "augment", "shift"],
        ),
        ({"dataset": {"name": "xor", "augment": {"shift": 1}}}, ["body", "dataset", "augment"]),
    ],
)
def test_image_spec_errors_name_the_field(client, spec, loc):
    r = client.post("/api/v1/sessions", json=spec)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == loc


def test_adding_a_filter_keeps_every_old_filter(client):
    spec = {
        "dataset": {"name": "bars", "n": 200},
        "network": {"kind": "cnn", "layers": [{"type": "conv", "filters": 3}, {"type": "pool", "size": 4}]},
        "training": {"optimizer": "adam", "learning_rate": 0.01},
    }
    body, auth = _create(client, spec)
    _train(client, body, auth, 2)
    old = client.get(f"/api/v1/sessions/{body['id']}/weights").json()["layers"]
    layers = [{"type": "conv", "filters": 4}, {"type": "pool", "size": 4}]
    r = client.patch(f"/api/v1/sessions/{body['id']}", json={"network": {"layers": layers}}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["epoch"] == 2 and r.json()["changes"]["reset"] is False
    new = client.get(f"/api/v1/sessions/{body['id']}/weights").json()["layers"]
    w_old, w_new = np.array(old[0]["w"]), np.array(new[0]["w"])
    assert w_new.shape == (3, 3, 1, 4)
    np.testing.assert_array_equal(w_new[..., :3], w_old)  # the three trained filters, exactly
    np.testing.assert_array_equal(np.array(new[0]["b"])[:3], np.array(old[0]["b"]))
    # the head reads 4 × 4 × 4 features now; the rows of the old 3 channels are the old numbers
    assert np.array(new[2]["w"]).shape == (64, 2)
    state = _train(client, body, auth, 1)
    assert state["epoch"] == 3


def test_predict_takes_images_of_the_right_size(client):
    body, _ = _create(client, {"dataset": {"name": "digits", "n": 100}, "network": {"kind": "cnn"}})
    url = f"/api/v1/sessions/{body['id']}/predict"
    blank = [[0.0] * 8] * 8
    r = client.post(url, json={"images": [blank, blank]})
    assert r.status_code == 200
    out = r.json()
    assert np.array(out["outputs"]).shape == (2, 10) and len(out["classes"]) == 2
    assert np.allclose(np.array(out["outputs"]).sum(axis=1), 1, atol=1e-5)
    assert out["feature_maps"] is None
    r = client.post(url, json={"images": [[[0.0] * 5] * 5]})
    assert r.status_code == 422 and "8×8×1" in r.json()["detail"][0]["msg"]
    assert r.json()["detail"][0]["loc"][-1] == "images"
    assert client.post(url, json={"inputs": [[0, 0]]}).status_code == 422
    # A drawing's feature maps: the same layers, shapes and quantization as a frame's maps of a test image.
    sid = body["id"]
    frame = client.get(f"/api/v1/sessions/{sid}/frame", params={"encoding": "list"}).json()
    test_image = np.array(frame["examples"]["data"][0][0]) / 255.0  # (H, W) of the first example
    r = client.post(url, json={"images": [test_image.tolist()], "feature_maps": True})
    assert r.status_code == 200, r.text
    maps = r.json()["feature_maps"]
    layers = [k for k in frame if k.startswith("maps")]
    assert sorted(k for k in maps if k.startswith("maps")) == sorted(layers) and layers
    for key in layers:
        rkey = key.replace("maps", "map_ranges")
        mine, theirs = np.array(maps[key]["data"]), np.array(frame[key]["data"])[:1]
        assert mine.shape == theirs.shape
        ranges, their_ranges = np.array(maps[rkey]["data"]), np.array(frame[rkey]["data"])[:1]
        assert ranges.shape == (*mine.shape[:2], 2) and np.all(ranges[..., 0] <= ranges[..., 1])

        def values(q, r):
            return r[..., :1, None] + q.reshape(*q.shape[:2], -1) / 255.0 * (r[..., 1:, None] - r[..., :1, None])

        # the same values, up to the test image having gone through bytes once more
        scale = np.abs(their_ranges).max() + 1e-6
        assert np.abs(values(mine, ranges) - values(theirs, their_ranges)).max() <= 0.05 * scale


def test_cnn_session_streams_binary_frames(client):
    body, _ = _create(client, {"dataset": {"name": "bars", "n": 100}, "network": {"kind": "cnn"}})
    with client.websocket_connect(f"/ws/sessions/{body['id']}?token={body['token']}") as ws:
        assert ws.receive_json()["type"] == "hello"
        header, arrays = decode_binary(ws.receive_bytes())
        assert header["kind"] == "cnn" and header["class_names"] == ["horizontal", "vertical"]
        assert arrays["maps0"].shape == (8, 8, 16, 16) and arrays["w0"].shape == (3, 3, 1, 8)
        ws.send_json({"action": "step", "ref": 1})
        while True:
            message = ws.receive()
            if message.get("bytes"):
                header, _ = decode_binary(message["bytes"])
                if header["epoch"] == 1:
                    break
        assert header["metrics"]["test_accuracy"] is not None


def test_actmax_and_saliency_views(client, new_session):
    body, auth = _create(client, {"dataset": {"name": "bars", "n": 200}, "network": {"kind": "cnn"}})
    _train(client, body, auth, 2)
    url = f"/api/v1/sessions/{body['id']}"
    r = client.get(f"{url}/actmax", params={"layer": 0, "steps": 20, "encoding": "list"})
    assert r.status_code == 200, r.text
    out = r.json()
    images = np.array(out["images"]["data"])
    assert images.shape == (8, 1, 16, 16) and images.min() >= 0 and images.max() <= 255
    start, end = np.array(out["start"]["data"]), np.array(out["end"]["data"])
    alive = start > 1e-6  # a ReLU filter dead on grey has no gradient to climb
    assert alive.any() and np.all(end[alive] > start[alive])
    assert client.get(f"{url}/actmax", params={"layer": 9}).status_code == 422
    r = client.get(f"{url}/saliency", params={"examples": [0, 3], "encoding": "list"})
    assert r.status_code == 200
    maps = np.array(r.json()["maps"]["data"])
    assert maps.shape == (2, 16, 16) and maps.max() == 255
    assert client.get(f"{url}/saliency", params={"examples": [10_000]}).status_code == 422
    r = client.get(f"{url}/convolution", params={"layer": 0, "filter": 3, "example": 2})
    assert r.status_code == 200, r.text
    walk = r.json()
    assert walk["filter"] == 3 and walk["example"] == 2 and np.array(walk["image"]).shape == (16, 16)
    assert np.allclose(walk["outputs"], walk["feature_map"], atol=1e-5) and walk["pool"]["kind"] == "max"
    for params, field in (({"layer": 1}, "layer"), ({"filter": 8}, "filter"), ({"example": 10_000}, "example")):
        r = client.get(f"{url}/convolution", params=params)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == field, r.text
    mlp, _ = new_session()
    r = client.get(f"/api/v1/sessions/{mlp}/actmax")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "kind"


def test_memory_limits_for_cnn_sessions_answer_422(make_client):
    small = make_client(max_image_pixels=100 * 64, max_cnn_parameters=5000)
    r = small.post("/api/v1/sessions", json={"dataset": {"name": "digits", "n": 200}, "network": {"kind": "cnn"}})
    assert r.status_code == 422 and "at most 100 images of 8×8" in r.json()["detail"][0]["msg"]
    big = {"type": "dense", "units": 256}
    spec = {"dataset": {"name": "digits", "n": 100}, "network": {"kind": "cnn", "layers": [{"type": "conv"}, big]}}
    r = small.post("/api/v1/sessions", json=spec)
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"][-2:] == ["network", "layers"] and "parameters" in error["msg"]
    ok = small.post("/api/v1/sessions", json={"dataset": {"name": "digits", "n": 100}, "network": {"kind": "cnn"}})
    assert ok.status_code == 201


def test_augmentation_is_a_live_edit(client):
    spec = {"dataset": {"name": "bars", "n": 200}, "network": {"kind": "cnn"}, "training": {"optimizer": "adam"}}
    body, auth = _create(client, spec)
    first = _train(client, body, auth, 2)
    url = f"/api/v1/sessions/{body['id']}"
    w0 = np.array(client.get(f"{url}/weights").json()["layers"][0]["w"])
    r = client.patch(url, json={"dataset": {"augment": {"shift": 2, "rotate": 15, "erase": 0.3}}}, headers=auth)
    assert r.status_code == 200, r.text
    state = r.json()
    assert state["epoch"] == first["epoch"] and state["spec"]["dataset"]["augment"] == {
        "shift": 2,
        "rotate": 15,
        "erase": 0.3,
    }
    np.testing.assert_array_equal(np.array(client.get(f"{url}/weights").json()["layers"][0]["w"]), w0)
    after = _train(client, body, auth, 3)
    assert after["epoch"] == first["epoch"] + 3 and after["metrics"]["test_accuracy"] > 0.8


def test_changing_a_dropout_rate_keeps_weights_and_compiled_program(client):
    from server.ml import cnn

    layers = [{"type": "conv", "filters": 4}, {"type": "pool"}, {"type": "dropout", "rate": 0.2}]
    spec = {"dataset": {"name": "bars", "n": 200}, "network": {"kind": "cnn", "layers": layers}}
    body, auth = _create(client, spec)
    first = _train(client, body, auth, 2)
    url = f"/api/v1/sessions/{body['id']}"
    w0 = np.array(client.get(f"{url}/weights").json()["layers"][0]["w"])
    compiled = cnn.train_cnn_epochs._cache_size()
    layers[2]["rate"] = 0.6
    r = client.patch(url, json={"network": {"layers": layers}}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["epoch"] == first["epoch"] and r.json()["spec"]["network"]["layers"][2]["rate"] == 0.6
    np.testing.assert_array_equal(np.array(client.get(f"{url}/weights").json()["layers"][0]["w"]), w0)
    assert _train(client, body, auth, 2)["epoch"] == first["epoch"] + 2
    assert cnn.train_cnn_epochs._cache_size() == compiled  # the new rate is a traced number: no recompile


def test_mnist_from_idx_files_in_the_data_folder(make_client, tmp_path):
    from server.ml.images import write_idx

    rng = np.random.default_rng(0)
    labels = np.arange(120) % 10
    pictures = (rng.uniform(0, 60, (120, 28, 28)) + 150 * (labels[:, None, None] > 4)).astype(np.uint8)
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_idx(pictures, folder / "train-images-idx3-ubyte.gz")
    write_idx(labels.astype(np.uint8), folder / "train-labels-idx1-ubyte.gz")
    client = make_client(data_dir=tmp_path)
    spec = {"dataset": {"name": "mnist", "n": 100}, "network": {"kind": "cnn"}}
    body, auth = _create(client, spec)
    assert body["architecture"]["inputs"] == ["28×28×1 image"] and body["architecture"]["output"]["units"] == 10
    assert body["architecture"]["n_train"] + body["architecture"]["n_test"] == 100
    assert _train(client, body, auth, 2)["epoch"] == 2
    # No files (and no downloading): a 422 at dataset.name that says where the files go; nothing else breaks.
    r = client.post(
        "/api/v1/sessions", json={"dataset": {"name": "fashion_mnist", "n": 100}, "network": {"kind": "cnn"}}
    )
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"][-1] == "name" and "fashion_mnist/train-images-idx3-ubyte.gz is missing" in detail["msg"]
    r = client.patch(f"/api/v1/sessions/{body['id']}", json={"dataset": {"name": "fashion_mnist"}}, headers=auth)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "name"
    assert client.get(f"/api/v1/sessions/{body['id']}").json()["spec"]["dataset"]["name"] == "mnist"
