"""Requests the server cannot honour, with the HTTP status routes answer them with and the field they are
about (``loc``, as pydantic's). Raised by the engines and the sessions; turned into answers by the routes."""

from __future__ import annotations


class SessionError(Exception):
    """A request the session cannot honour; routes turn it into an HTTP status."""

    status_code = 400

    def __init__(self, message: str, loc: tuple[str | int, ...] = ()):
        super().__init__(message)
        self.message, self.loc = message, loc


class Forbidden(SessionError):
    status_code = 403


class Unavailable(SessionError):
    """The store could not be read or written: this request failed, nothing saved before is lost."""

    status_code = 503


class NotFound(SessionError):
    status_code = 404


class TooMany(SessionError):
    status_code = 429


class Invalid(SessionError):
    status_code = 422


class Conflict(SessionError):
    status_code = 409
