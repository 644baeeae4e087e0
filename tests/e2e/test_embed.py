"""?embed=1&hide=...: the page for an iframe shows only what it is not told to hide (TF Playground's names and
the page's own), says which names it does not know, and makes no session until used."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from server.lessons import LESSONS

pytestmark = pytest.mark.e2e

HIDE = "learningRate,regularization,data,showTestData,charts,nosuchpanel,filters"
GONE = ["#lr", "#regularization", "#data-panel", "#show-test", "#loss-chart", ".topbar .brand", "#lessons-menu"]
KEPT = ["#play-btn", "#step-btn", "#optimizer", "#output-map", "#network-form", "#discretize", "#epoch"]
WIDE = "document.documentElement.scrollWidth > document.documentElement.clientWidth"


@pytest.mark.parametrize("width,height", [(1366, 900), (390, 844)])
def test_the_embed_view_hides_exactly_what_it_is_told(page: Page, artifacts: Path, width: int, height: int) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"/?embed=1&hide={HIDE}")
    page.wait_for_selector("#output-map[data-painted]")
    for selector in GONE:
        expect(page.locator(selector).first).to_be_hidden()
    for selector in KEPT:
        expect(page.locator(selector).first).to_be_visible()
    note = page.locator("#embed-note")
    expect(note).to_contain_text("nosuchpanel")
    expect(note).to_contain_text("not on this page: filters")
    assert not page.evaluate(WIDE), "the embed view scrolls sideways"
    assert page.locator("body").get_attribute("data-draft"), "an embed makes no session until used"
    page.screenshot(path=str(artifacts / f"embed-{width}.png"), full_page=True)

    page.click("#play-btn")  # used: its session, and the page stays embedded
    page.wait_for_function("!document.body.dataset.session.startsWith('draft-')")
    page.wait_for_function("+document.getElementById('epoch').value.replace(/,/g, '') > 0", timeout=60_000)
    page.click("#play-btn")
    assert "embed=1" in page.url and "hide=" in page.url
    expect(page.locator("#lr")).to_be_hidden()


def test_a_cnn_page_and_a_lesson_embed_the_same_way(page: Page, artifacts: Path) -> None:
    page.goto("/presets/cnn-lenet-digits?embed=1&hide=actmax,maps,learningRate")
    page.wait_for_selector("#filters canvas[data-painted]", timeout=60_000)
    for selector in ["#actmax", "#actmax-h", "#maps", "#lr", ".topbar nav.share"]:
        expect(page.locator(selector).first).to_be_hidden()
    for selector in ["#filters", "#saliency", "#play-btn", "#image-set"]:
        expect(page.locator(selector).first).to_be_visible()
    assert page.locator("#embed-note").count() == 0  # every name known here
    slug = next(s for s, lesson in LESSONS.items() if lesson.status == "ready" and lesson.kind == "mlp")
    page.goto(f"/lessons/{slug}?embed=1&hide=text,charts")
    page.wait_for_selector("#output-map[data-painted]")
    expect(page.locator("#lesson-aside")).to_be_hidden()
    expect(page.locator("#charts")).to_be_hidden()
    expect(page.locator("#output-map")).to_be_visible()
    assert page.url.endswith(f"/lessons/{slug}?embed=1&hide=text%2Ccharts")
    page.screenshot(path=str(artifacts / "embed-lesson.png"), full_page=True)


def test_a_lesson_embedded_in_another_sites_page_plays_and_takes_edits(page: Page, base_url: str) -> None:
    """A course page on another site (here localhost, the server being 127.0.0.1) embeds a lesson: the browser
    keeps the iframe's cookies apart, so the embedded page presents its session's token itself — play trains,
    a changed learning rate reaches the session, and nothing says "you can only watch"."""
    import httpx

    other_site = base_url.replace("127.0.0.1", "localhost")
    page.goto(f"{other_site}/healthz")
    page.set_content(f'<iframe id="lesson" src="{base_url}/lessons/perceptron?embed=1" width="1200" height="800">')
    frame = page.frame_locator("#lesson")
    inner = next(f for f in page.frames if f.url.startswith(base_url))
    inner.wait_for_selector("#output-map[data-painted]", state="attached")
    frame.locator("#play-btn").click()
    expect(frame.locator("#run-buttons")).to_have_attribute("data-status", "running")
    inner.wait_for_function("+document.getElementById('epoch').value.replace(/,/g, '') > 0")
    sid = inner.get_attribute("body", "data-session")
    assert sid and not sid.startswith("draft")
    frame.locator("#lr").fill("0.1")
    with page.expect_response(lambda r: r.request.method == "PATCH" and sid in r.url) as patched:
        frame.locator("#lr").press("Tab")
    assert patched.value.status == 200
    assert httpx.get(f"{base_url}/api/v1/sessions/{sid}").json()["spec"]["training"]["learning_rate"] == 0.1
    frame.locator("#play-btn").click()
    expect(frame.locator("#run-buttons")).to_have_attribute("data-status", "paused")
    alerts = inner.evaluate("[...document.querySelectorAll('[role=alert]')].map(e => e.textContent.trim())")
    assert not [a for a in alerts if a], alerts
