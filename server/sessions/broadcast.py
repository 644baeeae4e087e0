"""Frames to watchers: each subscriber has a latest-only mailbox (a slow client skips stale frames and never
slows training or other clients); a frame message is built once, handed to every mailbox, and encoded once
for every socket (``Frame.wire``)."""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Any

import numpy as np

from server.engines.base import sanitize
from server.frames import encode_binary

if TYPE_CHECKING:
    from server.sessions.session import Session, Snapshot

Message = tuple[dict[str, Any], dict[str, np.ndarray]]  # header (JSON-able) and arrays


class Frame(tuple[dict[str, Any], dict[str, np.ndarray]]):
    """A published frame: unpacks as (header, arrays) like any message; its binary envelope is made by the
    first socket that sends it, and every other socket sends the same bytes."""

    def wire(self) -> bytes:
        data: bytes | None = self.__dict__.get("wire_bytes")
        if data is None:
            data = self.__dict__["wire_bytes"] = encode_binary(*self)
        return data


def wire(message: Message) -> bytes:
    """The binary envelope of a message: made once per published frame, fresh for any other."""
    return message.wire() if isinstance(message, Frame) else encode_binary(*message)


MAX_NOTES = 16  # undelivered notes a mailbox keeps (the oldest go first)


class Mailbox:
    """Latest-only mailbox for frames: put() replaces the frame the reader has not taken yet. Notes (JSON
    messages such as ``status`` and ``stopped``) are few and each matters: they queue, and come out before
    the frame that follows them."""

    def __init__(self) -> None:
        self._item: Any = None
        self._notes: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_NOTES)
        self._event = asyncio.Event()

    def put(self, item: Any) -> None:
        self._item = item
        self._event.set()

    def note(self, message: dict[str, Any]) -> None:
        self._notes.append(message)
        self._event.set()

    async def get(self) -> Any:
        """The latest frame (header, arrays); notes stay queued (a reader that wants them uses ``next``)."""
        while True:
            await self._event.wait()
            self._event.clear()
            if self._item is not None:
                item, self._item = self._item, None
                return item

    async def next(self) -> Any:
        """The next note (a dict), else the latest frame (header, arrays)."""
        while True:
            await self._event.wait()
            if self._notes:
                note = self._notes.popleft()
                if not self._notes and self._item is None:
                    self._event.clear()
                return note
            self._event.clear()
            if self._item is not None:
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
        "learning_rate_now": snap.cfg.schedule.rate(snap.spec.training.learning_rate, snap.epoch),
        "stopped": s.stopped,
    }
    more, payload = snap.engine.frame(snap.spec, snap.cfg, snap.state, snap.data, arrays)
    return header | more, payload


def publish(s: Session, message: Message) -> None:
    """Hand a frame to every mailbox (a ``Frame`` keeps the wire bytes it may have been encoded to already)."""
    frame = message if isinstance(message, Frame) else Frame(message)
    for box in s.subscribers:
        box.put(frame)


def notify(s: Session, message: dict[str, Any]) -> None:
    """A JSON message to every watcher (``status``, ``stopped``: docs/websocket.md)."""
    for box in s.subscribers:
        box.note(message)


def subscribe(s: Session) -> Mailbox:
    box = Mailbox()
    s.subscribers.add(box)
    return box


def unsubscribe(s: Session, box: Mailbox) -> None:
    s.subscribers.discard(box)
