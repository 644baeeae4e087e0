"""A playground page's first action, without a browser: a visit shows a preview (no session); the page's first
action posts its ``data-create`` with its ``data-spec`` and works on the session that answers."""

from __future__ import annotations

import html as markup
import re

from fastapi.testclient import TestClient


def attribute(page: str, name: str) -> str | None:
    found = re.search(rf'<body[^>]*\s{name}="([^"]*)"', page)
    return markup.unescape(found.group(1)) if found else None


def start(client: TestClient, page: str) -> str:
    """The session of a page: a preview's is created as its first action would (the client then holds its token
    cookie); a session's own page (/s/{id}, a saved experiment) names it already."""
    if attribute(page, "data-draft") is None:
        sid = attribute(page, "data-session")
        assert sid, "the page names no session"
        return sid
    r = client.post(attribute(page, "data-create") or "", data={"spec": attribute(page, "data-spec") or ""})
    assert r.status_code == 201, r.text
    sid: str = r.json()["id"]
    return sid
