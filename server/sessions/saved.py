"""A session as one safetensors file, and back: the one format of saved experiments, live-session snapshots,
checkpoints and the download.

Tensors: the training state (``params.*``, ``opt_state.*``, ``bn_state.*``, ``key``) and the weights training
started from (``init_params.*``), named by their place in the state (``params.0.w``: layer 0's weights).
Metadata (safetensors keeps strings): ``format``, and JSON for ``spec``, ``architecture``, ``history`` (with
its thinning stride), ``epoch`` and ``step``. Reading rebuilds the state around the spec's own structure,
so a file whose tensors do not fit its spec is refused with words, never loaded half-way; nothing is
unpickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors

from server.engines import Engine, engine_for
from server.errors import Invalid
from server.ml.train import TrainState
from server.spec import ExperimentSpec

FORMAT = "neuroglass-session/1"


@dataclass(frozen=True)
class Saved:
    """What a file holds, read back: everything a session continues from."""

    spec: ExperimentSpec
    state: TrainState
    init_params: Any  # None when the file has none
    epoch: int
    step: int
    history: list[dict[str, Any]]
    history_stride: int
    metrics: dict[str, float | None] | None  # the session's metrics when it was written (None: compute them)


def _name(path: tuple[Any, ...]) -> str:
    """A pytree path as a dotted tensor name: (GetAttrKey('opt_state'), SequenceKey(0), ...) → 'opt_state.0'."""
    parts = []
    for k in path:
        for attr in ("name", "key", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
    return ".".join(parts)


def _named(prefix: str, tree: Any) -> dict[str, np.ndarray]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {".".join(filter(None, (prefix, _name(p)))): np.asarray(v) for p, v in leaves}


def dump(
    spec: ExperimentSpec,
    state: TrainState,
    *,
    epoch: int,
    step: int,
    history: list[dict[str, Any]],
    history_stride: int = 1,
    init_params: Any = None,
    architecture: dict[str, Any] | None = None,
    metrics: dict[str, float | None] | None = None,
) -> bytes:
    """One file of a session's state (see the module's docstring)."""
    tensors = {
        **_named("params", state.params),
        **_named("opt_state", state.opt_state),
        **_named("bn_state", state.bn_state),
        "key": np.asarray(state.key),
    }
    if init_params is not None:
        tensors |= _named("init_params", init_params)
    meta = {
        "format": FORMAT,
        "spec": spec.model_dump_json(),
        "architecture": json.dumps(architecture or {}),
        "history": json.dumps(history, allow_nan=False),
        "history_stride": str(history_stride),
        "epoch": str(epoch),
        "step": str(step),
    }
    if metrics is not None:
        meta["metrics"] = json.dumps(metrics, allow_nan=False)
    return save_tensors({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=meta)


def metadata(blob: bytes) -> dict[str, str]:
    """A file's metadata, without reading its tensors; Invalid (at ``file``) if it is not one of ours."""
    if len(blob) < 8:
        raise Invalid("the file is not a safetensors file (it is too short)", ("file",))
    size = int.from_bytes(blob[:8], "little")
    if size > len(blob) - 8 or size > 100_000_000:
        raise Invalid("the file is not a safetensors file (its header does not fit it)", ("file",))
    try:
        header = json.loads(blob[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Invalid("the file is not a safetensors file (its header is not JSON)", ("file",)) from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise Invalid(f"the file is safetensors but not a saved Neuroglass session ({FORMAT})", ("file",))
    return {str(k): str(v) for k, v in meta.items()}


def load(blob: bytes, engine_of: Any = engine_for) -> Saved:
    """Read a file back into a state of its spec's shapes; Invalid (at ``file``) saying what does not fit."""
    meta = metadata(blob)
    try:
        spec = ExperimentSpec.model_validate_json(meta["spec"])
    except KeyError:
        raise Invalid("the file has no spec in its metadata", ("file",)) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Invalid(f"the file's spec is not valid here: {where}: {first['msg']}", ("file",)) from None
    try:
        tensors = load_tensors(blob)
    except (SafetensorError, ValueError) as exc:
        raise Invalid(f"the file's tensors cannot be read: {exc}", ("file",)) from None
    engine: Engine = engine_of(spec)
    cfg = engine.config_for(spec)
    template = jax.eval_shape(lambda: engine.init_train_state(spec, cfg))  # structure, shapes, dtypes: no compute
    state = TrainState(
        params=_fill("params", template.params, tensors),
        opt_state=_fill("opt_state", template.opt_state, tensors),
        bn_state=_fill("bn_state", template.bn_state, tensors),
        key=_fill("key", template.key, tensors),
    )
    has_init = any(k.startswith("init_params.") for k in tensors)
    try:
        history = json.loads(meta.get("history", "[]"))
        epoch, step = int(meta.get("epoch", "0")), int(meta.get("step", "0"))
        stride = max(1, int(meta.get("history_stride", "1")))
        metrics = json.loads(meta["metrics"]) if "metrics" in meta else None
    except (json.JSONDecodeError, ValueError):
        raise Invalid("the file's history, epoch or step metadata is malformed", ("file",)) from None
    if not isinstance(history, list) or not all(isinstance(r, dict) and "epoch" in r for r in history):
        raise Invalid("the file's history is not a list of records with an epoch", ("file",))
    numbers = (int, float, type(None))
    if metrics is not None and not (
        isinstance(metrics, dict) and all(isinstance(v, numbers) and not isinstance(v, bool) for v in metrics.values())
    ):
        metrics = None  # not numbers: computed again from the weights instead
    return Saved(
        spec=spec,
        state=state,
        init_params=_fill("init_params", template.params, tensors) if has_init else None,
        epoch=max(0, epoch),
        step=max(0, step),
        history=history,
        history_stride=stride,
        metrics=metrics,
    )


def _fill(prefix: str, template: Any, tensors: dict[str, np.ndarray]) -> Any:
    """``template``'s structure with every leaf taken from ``tensors`` by name, shapes and finiteness checked."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    filled = []
    for path, like in leaves:
        name = ".".join(filter(None, (prefix, _name(path))))
        if name not in tensors:
            raise Invalid(f"the file has no tensor '{name}', which its spec's network needs", ("file",))
        value = tensors[name]
        if like.shape == () and value.shape == (1,):  # safetensors writes a scalar as one element
            value = value.reshape(())
        if value.shape != tuple(like.shape):
            shape = "×".join(map(str, value.shape)) or "a scalar"
            want = "×".join(map(str, like.shape)) or "a scalar"
            raise Invalid(f"tensor '{name}' is {shape} but its spec's network needs {want}", ("file",))
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            raise Invalid(f"tensor '{name}' holds NaN or infinite numbers", ("file",))
        filled.append(jnp.asarray(value, dtype=like.dtype))
    return jax.tree_util.tree_unflatten(treedef, filled)
