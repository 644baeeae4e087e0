"""Security headers on every HTTP answer (a pure ASGI middleware, so streamed and static answers get them too).

- Content-Security-Policy: scripts only from this server's own files (no inline script: the pages carry their
  data in ``<script type="application/json">`` blocks, which do not run), connections (fetch, websockets) only
  to this server, no plugins, forms and ``<base>`` only to this server. Styles may be inline: the pages colour
  cells with ``style`` attributes, and htmx adds its indicator style.
- ``frame-ancestors``: a page is framed only by this server's own pages, except an embed view
  (``?embed=1``, for slides and course pages), which any site may frame unless
  ``NEUROGLASS_EMBED_FRAME_ANCESTORS`` says otherwise.
- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin`` everywhere.

The interactive API docs (``/docs``, ``/redoc``) are FastAPI's own pages, with inline script: they get the
other headers but no Content-Security-Policy.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'"
)
UNPOLICED = ("/docs", "/redoc")  # FastAPI's interactive docs: inline script of their own


class SecurityHeaders:
    """Adds the headers above to every HTTP answer; ``embed_ancestors``: who may frame an embed view."""

    def __init__(self, app: ASGIApp, embed_ancestors: str = "*"):
        self.app, self.embed_ancestors = app, embed_ancestors

    def headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        out = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]
        path: str = scope.get("path", "")
        if not path.startswith(UNPOLICED):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            embed = query.get("embed", [""])[0] in ("1", "true")
            ancestors = self.embed_ancestors if embed else "'self'"
            out.append((b"content-security-policy", f"{POLICY}; frame-ancestors {ancestors}".encode()))
        return out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers(scope)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in extra if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, sending)
