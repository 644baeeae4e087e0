"""Live sessions: the only mutable state of the server.

A session holds a spec, its data, the training state, its recorded series and status. Every change to a
session happens under its lock, between training chunks; chunks run in worker threads (JAX releases the
GIL), so the event loop stays free. While playing, a session's loop trains a chunk, builds a frame and drops
it in each subscriber's latest-only mailbox (a slow client skips stale frames and never slows training).

Modules: ``session`` (the state and its snapshot), ``registry`` (sessions by id, limits), ``runner``
(threads, warm-up, the play loop, training), ``edits`` (patch, weights, reset), ``recording`` (thinned
series), ``broadcast`` (mailboxes, frame messages), ``views`` (views on a snapshot), ``public`` (answer
shapes), ``manager`` (the facade routes hold).
"""

from server.engines import Engine
from server.errors import Conflict, Invalid, NotFound, SessionError, TooMany
from server.sessions.broadcast import Mailbox
from server.sessions.manager import SessionManager
from server.sessions.session import Session, Snapshot

__all__ = [
    "Conflict",
    "Engine",
    "Invalid",
    "Mailbox",
    "NotFound",
    "SessionError",
    "SessionManager",
    "Session",
    "Snapshot",
    "TooMany",
]
