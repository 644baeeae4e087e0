"""A page visit creates no session: the page paints its spec's preview; the first action creates one session,
owned by this browser, and carries out the action (no reload, nothing typed lost)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

EPOCH = "+document.getElementById('epoch').value.replace(/,/g, '')"


def _tokens(page: Page) -> list[str]:
    return [c["name"] for c in page.context.cookies() if c["name"].startswith("neuroglass_")]


def test_visit_change_the_learning_rate_play(page: Page, base_url: str) -> None:
    creates: list[int] = []
    page.on("response", lambda r: creates.append(r.status) if r.url.endswith("/ui/sessions") else None)
    page.goto("/")
    page.wait_for_selector("#output-map[data-painted]")  # the preview's frame
    body = page.locator("body")
    draft = body.get_attribute("data-draft")
    assert draft and body.get_attribute("data-session") == draft
    page.wait_for_timeout(500)
    assert creates == [] and _tokens(page) == []  # looking creates nothing
    page.evaluate("() => { window.__loads = (window.__loads || 0) + 1; }")

    page.fill("#lr", "0.3")
    page.press("#lr", "Enter")
    page.wait_for_function("!document.body.dataset.session.startsWith('draft-')")
    sid = body.get_attribute("data-session")
    assert _tokens(page) == [f"neuroglass_{sid}"] and creates == [201]
    expect(page.locator("#lr")).to_have_value("0.3")  # what the visitor chose stays, and took effect
    spec = httpx.get(f"{base_url}/api/v1/sessions/{sid}").json()["spec"]
    assert spec["training"]["learning_rate"] == 0.3

    page.click("#play-btn")
    page.wait_for_function(f"{EPOCH} > 20", timeout=60_000)  # frames arrive over the session's stream
    page.click("#play-btn")
    expect(page.locator("#run-buttons")).to_have_attribute("data-status", "paused")
    assert page.evaluate("window.__loads") == 1, "the page was reloaded"
    assert creates == [201] and _tokens(page) == [f"neuroglass_{sid}"]  # one session, this browser's
    assert draft not in page.content()  # every address names the session now
