"""The pages under their Content-Security-Policy in a real browser: playing, the landscape panel, the CNN page,
a lesson, the classroom bar and an embed run without one refusal (the policy runs no inline script)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

pytestmark = pytest.mark.e2e


def test_the_pages_run_without_a_policy_refusal(chromium: Browser, base_url: str) -> None:
    context = chromium.new_context(base_url=base_url, viewport={"width": 1366, "height": 900}, bypass_csp=False)
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        page.goto("/")
        page.wait_for_selector("#output-map[data-painted]")
        page.click("#play-btn")  # the first action: the session is made, its socket opens, it trains
        expect(page.locator("#run-buttons")).to_have_attribute("data-status", "running")
        page.click("#landscape-tab")
        page.wait_for_selector("#landscape[data-resolution]", state="attached", timeout=120_000)  # a slice drawn
        page.click("#play-btn")
        expect(page.locator("#run-buttons")).to_have_attribute("data-status", "paused")
        for path in ("/lessons/perceptron", "/sweeps", "/experiments", "/join", "/?embed=1"):
            page.goto(path)
            page.wait_for_load_state("networkidle")
        page.goto("/presets/cnn-lenet-digits")
        page.fill("#noise", "20")
        page.dispatch_event("#noise", "input")
        expect(page.locator("#noise-value")).to_have_value("20")  # the slider shows its value, with no inline JS
        assert refused == []
    finally:
        context.close()
