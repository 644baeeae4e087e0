"""Previews: what a playground page shows before its visitor acts. A page visit creates no session; it shows
its spec at epoch 0 — the network, the data and the first frame — computed once per distinct spec and kept
(at most ``limit`` specs, the least recently used dropped). The visitor's first action (play, step, an edit)
creates the real session from the same spec, which starts from the same weights (the spec's seed).

A preview's session is never registered: it has no loop, no subscribers, and nobody holds its token; its id,
``draft-<key>``, stands in the page's URLs until the real one replaces it."""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from server.sessions import broadcast
from server.sessions.registry import Registry
from server.sessions.session import Session
from server.sessions.views import Views
from server.spec import ExperimentSpec

PREVIEWS = 64  # distinct specs kept
DRAFT = "draft-"  # the prefix of a preview's stand-in session id


@dataclass(frozen=True)
class Preview:
    """A spec at epoch 0: a session nobody trains, and its frame in the binary envelope."""

    key: str
    session: Session
    frame: bytes

    @property
    def id(self) -> str:
        return self.session.id


def key_of(spec: ExperimentSpec) -> str:
    """A short digest of the whole spec: equal specs share a preview."""
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:20]


class Previews:
    """The previews of the specs pages were visited with (bounded, least recently used dropped)."""

    def __init__(self, registry: Registry, views: Views, limit: int = PREVIEWS):
        self.registry, self.views, self.limit = registry, views, limit
        self.items: OrderedDict[str, Preview] = OrderedDict()
        self.lock = asyncio.Lock()  # one preview computed at a time: a crowd opening one link computes it once

    async def of(self, spec: ExperimentSpec) -> Preview:
        """The spec's preview, computed now if it is not kept. Raises what creating a session would (a spec
        beyond this server's limits, data that cannot be loaded) — but never TooMany: no session is made."""
        key = key_of(spec)
        async with self.lock:
            kept = self.find(key)
            if kept is not None:
                return kept
            self.registry.check_limits(spec)
            s = await self.registry.runner.workers.run(self.registry._new, spec)
            s.id = DRAFT + key
            frame = broadcast.wire(await self.views.frame(s))
            preview = self.items[key] = Preview(key, s, frame)
            while len(self.items) > self.limit:
                self.items.popitem(last=False)
            return preview

    def find(self, key: str) -> Preview | None:
        """A kept preview by its key (or by its stand-in id ``draft-<key>``); None when it is not kept."""
        preview = self.items.get(key.removeprefix(DRAFT))
        if preview is not None:
            self.items.move_to_end(preview.key)
        return preview
