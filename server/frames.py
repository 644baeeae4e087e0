"""Frame messages: what a session looks like right now, as JSON or as the binary envelope.

Binary envelope (a contract): 4-byte little-endian length N, N bytes of UTF-8 JSON header, then the packed
arrays the header's ``arrays`` list describes (name, dtype, shape, offset relative to the end of the
header, byte length). JSON frames carry the same arrays base64-encoded (or as nested lists on request).
"""

from __future__ import annotations

import base64
import json
import math
import struct
from typing import Any

import numpy as np


def clean(value: Any) -> Any:
    """A JSON-safe copy: numpy scalars to Python numbers, NaN/Inf to None (JSON has neither)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def encode_json(header: dict[str, Any], arrays: dict[str, np.ndarray], encoding: str = "base64") -> dict[str, Any]:
    """The header with each array attached under its name: {"dtype", "shape", "data"}; data is base64 of the
    little-endian bytes, or nested lists when ``encoding == "list"``."""
    out = dict(header)
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        if encoding == "list":
            data: Any = clean(arr)
        else:
            data = base64.b64encode(arr.astype(arr.dtype.newbyteorder("<")).tobytes()).decode("ascii")
        out[name] = {"dtype": arr.dtype.name, "shape": list(arr.shape), "encoding": encoding, "data": data}
    cleaned: dict[str, Any] = clean(out)  # clean keeps a dict a dict
    return cleaned


def _plain(value: Any) -> Any:
    """What ``json`` cannot write itself: numpy scalars and arrays as Python numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps(value: Any) -> str:
    """Compact JSON of a message header, NaN and ±Inf as null. Written at once when there is no such number
    (the header of every frame: the walk of ``clean`` costs more than the writing), else cleaned first."""
    text = json.dumps(value, separators=(",", ":"), default=_plain)
    if "NaN" in text or "Infinity" in text:  # (or a string that says so: cleaning it changes nothing)
        text = json.dumps(clean(value), separators=(",", ":"))
    return text


def _little(arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr)
    little = arr.dtype.newbyteorder("<")
    return (arr if arr.dtype == little else arr.astype(little)).tobytes()


def encode_binary(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """The binary envelope: length-prefixed JSON header, then the arrays back to back."""
    chunks, descr, offset = [], [], 0
    for name, arr in arrays.items():
        raw = _little(arr)
        descr.append(
            {"name": name, "dtype": arr.dtype.name, "shape": list(arr.shape), "offset": offset, "nbytes": len(raw)}
        )
        chunks.append(raw)
        offset += len(raw)
    head = dumps({**header, "arrays": descr}).encode()
    return struct.pack("<I", len(head)) + head + b"".join(chunks)


def decode_binary(message: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a binary envelope back (what a client does)."""
    (n,) = struct.unpack_from("<I", message)
    header = json.loads(message[4 : 4 + n])
    body = memoryview(message)[4 + n :]
    arrays = {
        a["name"]: np.frombuffer(
            body[a["offset"] : a["offset"] + a["nbytes"]], dtype=np.dtype(a["dtype"]).newbyteorder("<")
        ).reshape(a["shape"])
        for a in header["arrays"]
    }
    return header, arrays
