"""The binary envelope and JSON frames: what users' own clients read."""

from __future__ import annotations

import base64
import json
import struct

import numpy as np

from server.frames import clean, decode_binary, encode_binary, encode_json


def _arrays():
    return {
        "output": np.arange(100 * 100, dtype=np.int64).reshape(100, 100).astype(np.uint8),
        "grad_norms": np.array([0.5, 1e-7, 3.0], np.float32),
        "w0": np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4),
    }


def test_binary_envelope_layout_and_round_trip():
    header = {"type": "frame", "epoch": 12, "metrics": {"train_loss": float("nan")}}
    message = encode_binary(header, _arrays())
    (n,) = struct.unpack_from("<I", message)
    head = json.loads(message[4 : 4 + n])  # the header is plain UTF-8 JSON
    assert head["type"] == "frame" and head["epoch"] == 12
    assert head["metrics"]["train_loss"] is None  # never NaN on the wire
    names = [a["name"] for a in head["arrays"]]
    assert names == ["output", "grad_norms", "w0"]
    assert head["arrays"][0] == {"name": "output", "dtype": "uint8", "shape": [100, 100], "offset": 0, "nbytes": 10000}
    assert head["arrays"][1]["offset"] == 10000 and head["arrays"][2]["offset"] == 10012
    assert len(message) == 4 + n + 10000 + 12 + 32
    decoded_header, arrays = decode_binary(message)
    assert decoded_header["epoch"] == 12
    for name, arr in _arrays().items():
        np.testing.assert_array_equal(arrays[name], arr)


def test_json_encodings():
    arrays = _arrays()
    as_b64 = encode_json({"type": "frame"}, arrays)
    out = as_b64["output"]
    assert out["dtype"] == "uint8" and out["shape"] == [100, 100] and out["encoding"] == "base64"
    np.testing.assert_array_equal(
        np.frombuffer(base64.b64decode(out["data"]), np.uint8).reshape(100, 100), arrays["output"]
    )
    g = as_b64["grad_norms"]
    np.testing.assert_array_equal(np.frombuffer(base64.b64decode(g["data"]), "<f4"), arrays["grad_norms"])
    as_list = encode_json({"type": "frame"}, arrays, "list")
    assert as_list["w0"]["data"] == arrays["w0"].tolist()
    json.dumps(as_list, allow_nan=False)


def test_clean_replaces_non_finite_numbers():
    value = {"a": [1.0, float("inf"), np.float32("nan")], "b": np.float64(2.5), "c": (np.int32(3),)}
    assert clean(value) == {"a": [1.0, None, None], "b": 2.5, "c": [3]}


def test_headers_are_written_at_once_yet_never_carry_nan_and_big_endian_arrays_go_little():
    from server.frames import dumps

    plain = {"epoch": np.int64(3), "rate": np.float32(0.5), "layers": (4, 2), "text": "no NaN here", "m": {"x": 1.5}}
    assert json.loads(dumps(plain)) == {
        "epoch": 3,
        "rate": 0.5,
        "layers": [4, 2],
        "text": "no NaN here",
        "m": {"x": 1.5},
    }
    bad = {"loss": np.float32("nan"), "deep": [{"v": float("-inf")}], "ok": 1.0}
    text = dumps(bad)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"loss": None, "deep": [{"v": None}], "ok": 1.0}
    big = np.arange(3, dtype=">f4")
    _, arrays = decode_binary(encode_binary({"type": "frame"}, {"w": big}))
    np.testing.assert_array_equal(arrays["w"], [0.0, 1.0, 2.0])
