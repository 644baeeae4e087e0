"""Security headers on every answer (server/security.py): a Content-Security-Policy that runs no inline script,
nosniff and a referrer policy; embed views framed by any site (or the configured ones), other pages only by
this server's; FastAPI's own docs pages without the policy (they carry inline script)."""

from __future__ import annotations

import re

import pytest


def _csp(r) -> dict[str, str]:
    return {
        d.split(" ", 1)[0]: d.split(" ", 1)[1]
        for d in (p.strip() for p in r.headers["content-security-policy"].split(";"))
    }


@pytest.mark.parametrize(
    "path", ["/", "/lessons", "/healthz", "/api/v1/sessions/nope", "/static/css/page.css", "/join"]
)
def test_every_answer_carries_the_headers(client, path: str) -> None:
    r = client.get(path)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    policy = _csp(r)
    assert policy["script-src"] == "'self'" and "unsafe" not in policy["script-src"]
    assert policy["connect-src"] == "'self'" and policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'self'"


def test_an_embed_view_may_be_framed_by_the_sites_configured(client, make_client) -> None:
    assert _csp(client.get("/?embed=1"))["frame-ancestors"] == "*"
    course = make_client(embed_frame_ancestors="https://course.example.org")
    assert _csp(course.get("/lessons/perceptron?embed=1"))["frame-ancestors"] == "https://course.example.org"
    assert _csp(course.get("/lessons/perceptron"))["frame-ancestors"] == "'self'"


def test_the_pages_hold_no_inline_script(client) -> None:
    """What the policy would refuse: inline event handlers and script elements that run (JSON data blocks
    do not run)."""
    for path in ("/", "/presets/cnn-lenet-digits", "/lessons/perceptron", "/sweeps", "/experiments", "/join"):
        html = client.get(path).text
        assert not re.search(r"\son[a-z]+\s*=", html), path
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)


def test_the_api_docs_keep_their_own_inline_script(client) -> None:
    r = client.get("/docs")
    assert r.status_code == 200 and "content-security-policy" not in r.headers
    assert r.headers["x-content-type-options"] == "nosniff"
