"""Frames to watchers: each subscriber has a latest-only mailbox (a slow client skips stale frames and never
slows training or other clients); a frame message is built once and handed to every mailbox."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import numpy as np

from server.engines.base import sanitize

if TYPE_CHECKING:
    from server.sessions.session import Session, Snapshot

Message = tuple[dict[str, Any], dict[str, np.ndarray]]  # header (JSON-able) and arrays


class Mailbox:
    """Latest-only mailbox: put() replaces what the reader has not taken yet."""

    def __init__(self) -> None:
        self._item: Any = None
        self._event = asyncio.Event()

    def put(self, item: Any) -> None:
        self._item = item
        self._event.set()

    async def get(self) -> Any:
        await self._event.wait()
        self._event.clear()
        item, self._item = self._item, None
        return item


def frame_message(s: Session, snap: Snapshot, arrays: dict[str, Any]) -> Message:
    """Header and arrays of a snapshot's frame (docs/frames.md): the common fields, then the engine's."""
    header = {
        "type": "frame",
        "id": s.id,
        "epoch": snap.epoch,
        "step": snap.step,
        "status": snap.status,
        "spec_version": snap.spec_version,
        "metrics": sanitize(arrays, snap.spec.problem),
    }
    more, payload = snap.engine.frame(snap.spec, snap.cfg, snap.state, snap.data, arrays)
    return header | more, payload


def publish(s: Session, message: Message) -> None:
    for box in s.subscribers:
        box.put(message)


def subscribe(s: Session) -> Mailbox:
    box = Mailbox()
    s.subscribers.add(box)
    return box


def unsubscribe(s: Session, box: Mailbox) -> None:
    s.subscribers.discard(box)
