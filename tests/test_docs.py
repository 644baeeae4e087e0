"""The docs list what the server really has: every REST endpoint in docs/api.md, every websocket action,
message type and close code in docs/websocket.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.app import create_app
from server.routes import stream
from tests.conftest import make_settings

DOCS = Path(__file__).resolve().parents[1] / "docs"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# In a table row's first cell: `GET /api/v1/sessions/{id}/frame` (several per cell allowed).
ENDPOINT = re.compile(r"`(" + "|".join(METHODS) + r") (/[^`\s?]*)[^`]*`")


def _normal(path: str) -> str:
    """Path parameters by position only: /sessions/{id} and /sessions/{session_id} are the same path."""
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip("/") or "/")


def _documented(text: str) -> set[tuple[str, str]]:
    """(method, path) of every table row of docs/api.md that names an endpoint in its first cell."""
    found = set()
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        first_cell = line.split("|")[1]
        found |= {(method, _normal(path)) for method, path in ENDPOINT.findall(first_cell)}
    return found


def _served() -> set[tuple[str, str]]:
    """(method, path) of every /api/v1 and /healthz operation in the app's OpenAPI schema."""
    paths = create_app(make_settings()).openapi()["paths"]
    return {
        (method.upper(), _normal(path))
        for path, operations in paths.items()
        if path.startswith("/api/v1") or path == "/healthz"
        for method in operations
        if method.upper() in METHODS
    }


def test_the_parser_reads_table_rows():
    rows = "| `GET /api/v1/sessions/{id}/frame` | – |\n| `POST /api/v1/x` and `PUT /api/v1/x?y=1` | a |\nGET /no"
    assert _documented(rows) == {("GET", "/api/v1/sessions/{}/frame"), ("POST", "/api/v1/x"), ("PUT", "/api/v1/x")}


def test_api_md_lists_every_endpoint_and_no_other():
    served, documented = _served(), _documented((DOCS / "api.md").read_text())
    missing = sorted(served - documented, key=lambda e: (e[1], e[0]))
    extra = sorted(documented - served, key=lambda e: (e[1], e[0]))
    assert not missing and not extra, (
        "docs/api.md disagrees with the app's routes.\n"
        f"missing from docs/api.md ({len(missing)}): {[' '.join(e) for e in missing]}\n"
        f"in docs/api.md but not served ({len(extra)}): {[' '.join(e) for e in extra]}"
    )


def _sent_types() -> set[str]:
    """Message types the stream sends: its declared list and every "type": "..." literal in its source."""
    source = Path(stream.__file__).read_text()
    return set(stream.MESSAGE_TYPES) | set(re.findall(r'"type": "(\w+)"', source))


@pytest.mark.parametrize("action", stream.ACTIONS)
def test_websocket_md_shows_every_action(action):
    text = (DOCS / "websocket.md").read_text()
    assert f'"action": "{action}"' in text, f'docs/websocket.md has no example with "action": "{action}"'


@pytest.mark.parametrize("kind", sorted(_sent_types()))
def test_websocket_md_shows_every_message_type_the_server_sends(kind):
    text = (DOCS / "websocket.md").read_text()
    assert f'"type": "{kind}"' in text, f'docs/websocket.md has no example of a "type": "{kind}" message'


def test_websocket_md_names_every_close_code_the_server_uses():
    codes = set(re.findall(r"code=(\d+)", Path(stream.__file__).read_text()))
    text = (DOCS / "websocket.md").read_text()
    assert codes and all(code in text for code in codes), codes
