"""The top bar's "more settings" in a real browser: schedules, stop conditions, init, momentum, and the layout."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_page import epoch, open_page, press_play, state

pytestmark = pytest.mark.e2e


def open_more(page: Page) -> None:
    page.click("#more-settings > summary")
    expect(page.locator("#schedule")).to_be_visible()


def patched(page: Page):
    """Wait for the settings form's PATCH that the actions in the block send (a change re-renders the form)."""
    return page.expect_response(lambda r: r.request.method == "PATCH" and "/ui/sessions/" in r.url)


def commit(page: Page, selector: str, value: str) -> None:
    """Type a value and leave the field: the change PATCHes the session and the form comes back showing it."""
    with patched(page):
        page.fill(selector, value)
        page.press(selector, "Tab")
    expect(page.locator(selector)).to_have_value(value)


def choose(page: Page, selector: str, value: str) -> None:
    with patched(page):
        page.select_option(selector, value)


def test_a_step_schedule_shows_the_rate_it_gives_as_it_trains(page: Page, base_url: str) -> None:
    sid = open_page(page)
    open_more(page)
    expect(page.locator("#lr-now")).to_be_hidden()  # constant: nothing beside the base rate
    choose(page, "#schedule", "step")
    expect(page.locator("#every")).to_be_visible()  # the fields of a step schedule appear
    expect(page.locator("#floor")).to_have_count(0)
    commit(page, "#every", "20")
    expect(page.locator("#more-settings")).to_have_attribute("open", "")  # it stays open across re-renders
    choose(page, "#speed", "10")  # 10 epochs/s: two seconds per step of the schedule
    press_play(page)
    expect(page.locator("#lr-now")).to_have_text("now 0.015")  # halved after 20 epochs: 0.03 → 0.015
    page.click("#play-btn")
    expect(page.locator("#lr-now")).to_be_visible()
    rate = state(base_url, sid)["learning_rate_now"]
    expect(page.locator("#lr-now")).to_have_text(f"now {float(f'{rate:.3g}'):g}")
    assert rate < 0.03 and page.input_value("#lr") == "0.03"  # the base rate stays what it was


def test_stop_at_an_epoch_pauses_there_and_says_why(page: Page, base_url: str) -> None:
    sid = open_page(page)
    open_more(page)
    commit(page, "#stop-epoch", "300")
    expect(page.locator("#more-settings summary")).to_contain_text("stop at epoch 300")
    press_play(page)
    expect(page.locator("#status")).to_have_text("paused — stopped at epoch 300, as asked")
    expect(page.locator("#run-buttons")).to_have_attribute("data-status", "paused")
    assert epoch(page) == 300 and state(base_url, sid)["epoch"] == 300
    commit(page, "#stop-epoch", "")  # empty = off: play trains on, and the reason goes away
    expect(page.locator("#more-settings summary")).not_to_contain_text("stop at epoch")
    assert state(base_url, sid)["spec"]["stop"]["at_epoch"] is None
    press_play(page)
    expect(page.locator("#status")).to_have_text("running")


def test_changing_the_initialisation_says_it_applies_at_reset(page: Page, base_url: str) -> None:
    sid = open_page(page)
    open_more(page)
    expect(page.locator("label[for=init]")).to_contain_text("applies at reset")
    choose(page, "#init", "tfplayground")
    expect(page.locator("#change-note")).to_contain_text("the initialisation takes effect at the next reset")
    assert state(base_url, sid)["spec"]["network"]["init"] == "tfplayground"


def test_momentum_is_off_with_the_reason_for_adam(page: Page) -> None:
    open_page(page)
    open_more(page)
    choose(page, "#optimizer", "momentum")
    expect(page.locator("#momentum")).to_be_enabled()
    choose(page, "#optimizer", "adam")
    expect(page.locator("#momentum")).to_be_disabled()
    expect(page.locator("#momentum-hint")).to_have_text("only momentum and nesterov use it; adam does not")


def _overflow(page: Page) -> list[str]:
    """Every visible control of the settings row (and its disclosure) that reaches past the viewport's width."""
    return page.evaluate(
        """() => {
          const w = document.documentElement.clientWidth;
          const out = [];
          const sw = document.documentElement.scrollWidth;
          if (sw > w) out.push(`page scrolls sideways: ${sw} > ${w}`);
          const controls = "input:not([type=hidden]), select, button, summary, label";
          for (const el of document.querySelectorAll(controls.split(", ").map((c) => `.settings ${c}`).join(", "))) {
            const r = el.getBoundingClientRect();
            if (r.width === 0 && r.height === 0) continue;
            const name = el.id || el.textContent.trim();
            if (r.left < 0 || r.right > w + 0.5) out.push(`${name}: ${r.left}–${r.right} of ${w}`);
          }
          return out;
        }"""
    )


@pytest.mark.parametrize(("width", "height"), [(1366, 900), (390, 844)])
def test_the_settings_row_and_more_settings_fit(chromium: Browser, base_url: str, width: int, height: int) -> None:
    context = chromium.new_context(base_url=base_url, viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        open_page(page)
        assert _overflow(page) == []
        open_more(page)
        choose(page, "#schedule", "exponential")  # the schedule with the most fields
        expect(page.locator("#floor")).to_be_visible()
        assert _overflow(page) == []
        # the row keeps the most used settings on one line at desktop width; the disclosure's groups sit side by side
        if width == 1366:
            tops = {round(page.locator(s).bounding_box()["y"]) for s in ("#lr", "#optimizer", "#speed")}
            assert len(tops) == 1, tops
            groups = page.locator(".more-grid > .group")
            assert len({round(groups.nth(i).bounding_box()["y"]) for i in range(groups.count())}) == 1
    finally:
        context.close()
