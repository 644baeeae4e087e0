"""A page visit shows a preview (no session): tests that drive the session's REST API start it first."""

from __future__ import annotations

from playwright.sync_api import Page

STARTED = "!document.body.dataset.draft && !document.body.dataset.session.startsWith('draft-')"


def started(page: Page) -> str:
    """The page's session, created now if the page is still a preview (as its first action would, through
    the page: its token in this browser's cookie, the stream connected); its id."""
    page.evaluate("document.body.dispatchEvent(new Event('ng:start'))")
    page.wait_for_function(STARTED)
    sid = page.locator("body").get_attribute("data-session")
    assert sid
    return sid
