"""What a session looks like from outside: its state (GET and every mutation's answer), its data and its
weights, as the REST answers give them."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from server.sessions.session import Session


def public(s: Session) -> dict[str, Any]:
    """The session's state as GET returns it (and every mutation answers with)."""
    return {
        "id": s.id,
        "spec": s.spec.model_dump(),
        "status": s.status,
        "epoch": s.epoch,
        "step": s.step,
        "spec_version": s.spec_version,
        "metrics": s.metrics,
        "notes": s.engine.notes_for(s.spec),
        "architecture": s.engine.architecture(s.spec, s.cfg, s.state, s.data),
        "learning_rate_now": s.learning_rate_now,
        "stopped": s.stopped,
    }


def data(s: Session) -> dict[str, Any]:
    """The examples being learned, for drawing: points or image labels, train and test."""
    return {"spec_version": s.spec_version, **s.engine.data_public(s.spec, s.data)}


def weights(s: Session) -> dict[str, Any]:
    layers = [{k: np.asarray(v).tolist() for k, v in layer.items()} for layer in jax.device_get(s.state.params)]
    inputs = s.engine.weight_inputs(s.spec)
    return {"epoch": s.epoch, "spec_version": s.spec_version, "inputs": inputs, "layers": layers}


def history(s: Session) -> dict[str, Any]:
    return {"records": list(s.history.items)}


def checkpoints(s: Session) -> dict[str, Any]:
    """The moments a session can go back to, oldest first."""
    return {
        "epoch": s.epoch,
        "limit": s.checkpoints.limit,
        "checkpoints": [
            {"epoch": c.epoch, "step": c.step, "spec_version": c.spec_version, "metrics": c.metrics}
            for c in s.checkpoints.items
        ],
    }
