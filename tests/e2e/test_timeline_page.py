"""Time travel in a real browser: the timeline under the loss chart scrubs the page back to a checkpoint
(the decision map as it was then), "back to live" returns, and "continue from here" makes that moment the
present, from which training goes on."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.lazy import started

pytestmark = pytest.mark.e2e

EPOCH = "+document.getElementById('epoch').value.replace(/,/g, '')"
MAP = "document.getElementById('output-map').toDataURL()"


def _step_to(page: Page, n: int) -> dict[int, str]:
    """Step one epoch at a time up to ``n``; the decision map as painted at each epoch."""
    maps = {}
    start = page.evaluate(EPOCH)
    for e in range(start + 1, n + 1):
        page.click("#step-btn")
        page.wait_for_function(f"n => {EPOCH} === n", arg=e)
        page.wait_for_function("e => document.getElementById('output-map').dataset.painted == e", arg=e)
        maps[e] = page.evaluate(MAP)
    return maps


def _scrub_to(page: Page, index: int) -> None:
    """Keyboard on the slider: Home (the first checkpoint), then → ``index`` times."""
    with page.expect_response(lambda r: r.url.endswith("/checkpoints")):
        page.focus("#timeline-range")  # the slider takes the checkpoints there are now
    page.wait_for_function("() => +document.getElementById('timeline-range').max > 0")
    page.keyboard.press("Home")
    for _ in range(index):
        page.keyboard.press("ArrowRight")


def test_scrub_back_and_continue_from_a_checkpoint(page: Page, base_url: str, artifacts):
    page.goto("/")
    page.wait_for_selector("#output-map[data-painted]")
    session = started(page)
    maps = _step_to(page, 6)
    expect(page.locator("#timeline-epoch")).to_have_text("live · epoch 6")

    _scrub_to(page, 2)  # checkpoints at epochs 0, 1, ..., 6: the third is epoch 2
    banner = page.locator("#timeline-banner")
    expect(banner).to_be_visible()
    expect(page.locator("#timeline-text")).to_contain_text("viewing epoch 2 (it is at epoch 6 now)")
    expect(page.locator("#timeline-epoch")).to_have_text("epoch 2")
    page.wait_for_function(f"m => {MAP} === m", arg=maps[2])  # the map as it was at epoch 2
    assert page.evaluate(EPOCH) == 6  # the counter says where the session is
    page.set_viewport_size({"width": 1366, "height": 900})
    page.locator(".output-col").screenshot(path=str(artifacts / "timeline-1366.png"))

    page.click("#timeline-live")
    expect(banner).to_be_hidden()
    page.wait_for_function(f"m => {MAP} === m", arg=maps[6])

    _scrub_to(page, 3)
    page.wait_for_function(f"m => {MAP} === m", arg=maps[3])
    page.click("#timeline-continue")
    expect(page.locator("#change-note")).to_contain_text("Back at epoch 3")
    page.wait_for_function(f"() => {EPOCH} === 3")
    expect(banner).to_be_hidden()
    expect(page.locator("#timeline-epoch")).to_have_text("live · epoch 3")
    history = httpx.get(f"{base_url}/api/v1/sessions/{session}/history").json()["records"]
    assert [r["epoch"] for r in history] == [0, 1, 2, 3]  # the later run is gone
    again = _step_to(page, 4)
    assert again[4] == maps[4]  # training on from epoch 3 retraces the run

    page.set_viewport_size({"width": 390, "height": 844})
    _scrub_to(page, 1)
    expect(banner).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at 390 px: {width}"
    box = page.locator("#timeline-range").bounding_box()
    assert box and box["width"] >= 150 and box["x"] + box["width"] <= 390
    page.locator(".output-col").screenshot(path=str(artifacts / "timeline-390.png"))


def test_a_viewer_scrubs_but_cannot_continue(page: Page, base_url: str):
    made = httpx.post(f"{base_url}/api/v1/sessions", json={}).json()
    auth = {"Authorization": f"Bearer {made['token']}"}
    for _ in range(3):
        httpx.post(f"{base_url}/api/v1/sessions/{made['id']}/step", headers=auth)
    page.goto(f"/watch/{made['id']}")
    page.wait_for_selector("#output-map[data-painted]")
    _scrub_to(page, 1)
    expect(page.locator("#timeline-banner")).to_be_visible()
    expect(page.locator("#timeline-continue")).to_have_count(0)
    expect(page.locator("#timeline-live")).to_be_visible()
