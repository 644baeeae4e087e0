"""``SessionManager``: the one object routes hold — a thin facade over the registry, the runner, the editor,
the views and the broadcast, under the names users' scripts and the routes rely on."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.config import Settings
from server.errors import Conflict, Unavailable
from server.sessions import broadcast
from server.sessions import public as answers
from server.sessions.classes import Classes
from server.sessions.edits import Editor
from server.sessions.landscape_feed import LandscapeFeed
from server.sessions.library import Library
from server.sessions.previews import Previews
from server.sessions.registry import Registry
from server.sessions.runner import Runner, Workers
from server.sessions.session import Session
from server.sessions.sweeps import Sweeps
from server.sessions.views import Views
from server.spec import ExperimentSpec
from server.store import Store


class SessionManager:
    """Creates, finds, trains, edits and shows sessions."""

    def __init__(self, settings: Settings, store: Store | None = None):
        self.settings = settings
        self.workers = Workers(settings)
        self.runner = Runner(settings, self.workers)
        self.registry = Registry(settings, self.runner)
        self.editor = Editor(self.registry, self.runner)
        self.views = Views(settings, self.workers)
        self.landscape_feed = LandscapeFeed(self.views)  # the landscape panel's snapshots on the sockets
        self.sessions = self.registry.sessions
        self.library = Library(settings, store, self.registry, self.workers) if store is not None else None
        self.sweeps = Sweeps(settings, self.registry, self.workers, store)
        self.classes = Classes(settings, self.registry, self.runner, self.workers, self.library, store)
        self.previews = Previews(self.registry, self.views)  # what a page shows before its visitor acts

    @property
    def saved(self) -> Library:
        """Saved work (experiments, files, live snapshots); Unavailable when the server runs without a store."""
        if self.library is None:
            raise Unavailable("this server runs without a store: saved work is off")
        return self.library

    # lifecycle
    async def create(self, spec: ExperimentSpec) -> Session:
        return await self.registry.create(spec)

    def get(self, session_id: str) -> Session:
        return self.registry.get(session_id)

    async def delete(self, s: Session) -> None:
        await self.registry.delete(s)
        if self.library is not None:
            await self.library.forget(s.id)

    async def start(self) -> None:
        """Bring back the live sessions of the last run and start writing them as they change."""
        if self.library is not None:
            await self.library.restore_all()
            self.library.start()
        await self.classes.start()
        await self.sweeps.start()

    async def close(self) -> None:
        """At shutdown: stop every loop and sweep, write every live session one last time, then let them go."""
        await self.sweeps.close()
        await self.landscape_feed.close()
        for s in list(self.sessions.values()):
            await self.runner.stop(s)
        if self.library is not None:
            await self.library.stop()
        await self.registry.close()

    async def reap_idle(self) -> int:
        return await self.registry.reap_idle()

    # training
    def _may_train(self, s: Session) -> None:
        """A student's own session trains only while their class is released: a lock brings everyone back to
        following the presenter, and it holds for every client, not only the class's pages."""
        found = self.classes.class_of(s.id)
        if found is not None and found[0].mode != "released":
            raise Conflict("the teacher has locked the class: your own copy trains again once they release it")

    async def train(self, s: Session, epochs: int) -> None:
        self._may_train(s)
        await self.runner.train(s, epochs)

    async def play(self, s: Session, watched: bool = True) -> None:
        self._may_train(s)
        await self.runner.play(s, watched)

    async def pause(self, s: Session) -> None:
        await self.runner.pause(s)

    async def step(self, s: Session) -> None:
        self._may_train(s)
        await self.runner.step(s)

    # edits
    async def reset(self, s: Session) -> None:
        await self.editor.reset(s)

    async def patch(self, s: Session, patch: dict[str, Any]) -> dict[str, Any]:
        return await self.editor.patch(s, patch)

    async def restore(self, s: Session, epoch: int) -> None:
        await self.editor.restore(s, epoch)

    async def checkpoint_frame(self, s: Session, epoch: int) -> broadcast.Message:
        return await self.views.checkpoint_frame(s, epoch)

    async def set_weights(self, s: Session, layers: list[dict[str, Any]]) -> None:
        await self.editor.set_weights(s, layers)

    async def edit_weight(self, s: Session, layer: Any, param: Any, index: Any, value: Any) -> None:
        await self.editor.edit_weight(s, layer, param, index, value)

    # views
    async def predict(self, s: Session, inputs: np.ndarray) -> np.ndarray:
        return await self.views.predict(s, inputs)

    async def view(self, s: Session, name: str, **params: Any) -> dict[str, Any]:
        return await self.views.engine_view(s, name, **params)

    async def frame(self, s: Session) -> broadcast.Message:
        return await self.views.frame(s)

    async def landscape(
        self, s: Session, directions: str, resolution: int, span: float | None, seed: int
    ) -> dict[str, Any]:
        return await self.views.landscape(s, directions, resolution, span, seed)

    async def interpolation(self, s: Session, steps: int, start: Any = None, end: Any = None) -> dict[str, Any]:
        return await self.views.interpolation(s, steps, start, end)

    async def gradients(self, s: Session) -> dict[str, Any]:
        return await self.views.gradients(s)

    async def sharpness(self, s: Session, iters: int) -> dict[str, Any]:
        return await self.views.sharpness(s, iters)

    async def race(
        self, s: Session, runs: list[dict[str, Any]], epochs: int, resolution: int, center: Any
    ) -> dict[str, Any]:
        return await self.views.race(s, runs, epochs, resolution, center)

    # watchers
    def subscribe(self, s: Session) -> broadcast.Mailbox:
        self.runner.watched(s)
        return broadcast.subscribe(s)

    def unsubscribe(self, s: Session, box: broadcast.Mailbox) -> None:
        broadcast.unsubscribe(s, box)
        if not s.subscribers:
            self.runner.unwatched(s)

    # what routes answer
    public = staticmethod(answers.public)
    data = staticmethod(answers.data)
    weights = staticmethod(answers.weights)
    history = staticmethod(answers.history)
    checkpoints = staticmethod(answers.checkpoints)
