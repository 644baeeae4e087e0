"""The top bar's "more settings" in a real browser: schedules, stop conditions, init, momentum, and the layout."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_page import EPOCH, epoch, open_page, press_play, state

pytestmark = pytest.mark.e2e


def open_more(page: Page) -> None:
    page.click("#more-settings > summary")
    expect(page.locator("#schedule")).to_be_visible()


SETTLED = "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"


@contextmanager
def patched(page: Page) -> Iterator[None]:
    """Wait for the settings form's PATCH that the actions in the block send, and for the form it answers to be
    swapped in and settled: a control changed while the old form is being replaced would change nothing."""
    with page.expect_response(lambda r: r.request.method == "PATCH" and "/ui/sessions/" in r.url):
        yield
    page.wait_for_function(SETTLED)


def commit(page: Page, selector: str, value: str) -> None:
    """Type a value and leave the field: the change PATCHes the session and the form comes back showing it."""
    with patched(page):
        page.fill(selector, value)
        page.press(selector, "Tab")
    expect(page.locator(selector)).to_have_value(value)


def choose(page: Page, selector: str, value: str) -> None:
    with patched(page):
        page.select_option(selector, value)


# Every 20 ms, the epoch counter and what is written beside the learning rate (a frame sets both at once), kept in
# window.__rates: the page's own record of what it showed at each epoch, however briefly, whatever the test's pace.
WATCH_RATES = """() => {
  window.__rates = [];
  setInterval(() => {
    const e = +document.getElementById("epoch").value.replace(/,/g, "");
    const now = document.getElementById("lr-now");
    window.__rates.push([e, now && !now.hidden ? now.textContent : ""]);
  }, 20);
}"""


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
    page.evaluate(WATCH_RATES)
    press_play(page)
    # the first chunk compiles first (slow on a busy machine); then 60 epochs take some six seconds
    page.wait_for_function(f"() => {EPOCH} >= 60", timeout=120_000)
    page.click("#play-btn")
    expect(page.locator("#run-buttons")).to_have_attribute("data-status", "paused")
    # what the page showed at each epoch: nothing while the rate is the base rate, then halved every 20 epochs
    shown = {(e, text) for e, text in page.evaluate("window.__rates") if e < 60}
    wanted = {e: "" if e < 20 else "now 0.015" if e < 40 else "now 0.0075" for e in range(60)}
    assert {text for e, text in shown if 20 <= e < 40} == {"now 0.015"}, sorted(shown)
    assert all(text == wanted[e] for e, text in shown), sorted(shown)
    assert all(any(lo <= e < lo + 20 for e, _ in shown) for lo in (0, 20, 40)), sorted(shown)  # every step seen
    # paused: the rate beside the field is the one the session will train its next epoch with
    s = state(base_url, sid)
    rate = s["learning_rate_now"]
    assert s["status"] == "paused" and rate == pytest.approx(0.03 * 0.5 ** (s["epoch"] // 20))
    expect(page.locator("#lr-now")).to_have_text(f"now {float(f'{rate:.3g}'):g}")
    assert rate < 0.03 and page.input_value("#lr") == "0.03"  # the base rate stays what it was


def tab_to(page: Page, selector: str, most: int = 40) -> None:
    """Press Tab until the focus is on `selector` (failing if `most` presses never get there)."""
    target = page.locator(selector)
    for _ in range(most):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    pytest.fail(f"{most} presses of Tab never reached {selector}")


def focus_shows(page: Page, selector: str) -> None:
    """The focus is on `selector`, and it shows: a keyboard focus with an outline."""
    expect(page.locator(selector)).to_be_focused()
    visible, outline = page.locator(selector).evaluate(
        "el => [el.matches(':focus-visible'), getComputedStyle(el).outlineStyle]"
    )
    assert visible and outline != "none", (selector, visible, outline)


def test_more_settings_work_by_keyboard_alone(page: Page, base_url: str) -> None:
    sid = open_page(page)
    more = page.locator("#more-settings")
    tab_to(page, "#more-settings > summary")  # from the top of the page, through the top bar
    focus_shows(page, "#more-settings > summary")
    page.keyboard.press("Space")  # Space on the disclosure opens it: it does not play the session
    expect(more).to_have_attribute("open", "")
    expect(page.locator("#run-buttons")).to_have_attribute("data-status", "paused")
    page.keyboard.press("Tab")
    focus_shows(page, "#loss")  # the opened panel's first control comes next
    with patched(page):
        page.keyboard.press("ArrowDown")  # mean squared error → cross entropy
    expect(page.locator("#loss")).to_have_value("cross_entropy")
    expect(more).to_have_attribute("open", "")
    focus_shows(page, "#loss")  # the form came back with the change; the focus is where it was
    tab_to(page, "#schedule", 10)
    with patched(page):
        page.keyboard.press("ArrowDown")  # constant → step decay
    expect(page.locator("#every")).to_be_visible()  # its fields appear after it, next in the Tab order
    focus_shows(page, "#schedule")
    tab_to(page, "#every", 3)
    page.keyboard.press("Control+a")
    page.keyboard.type("20")
    with patched(page):
        page.keyboard.press("Tab")  # leaving the field commits it
    expect(page.locator("#every")).to_have_value("20")
    focus_shows(page, "#factor")  # Tab's own move survives the form coming back
    spec = state(base_url, sid)["spec"]
    assert spec["training"]["loss"] == "cross_entropy"
    assert (spec["training"]["schedule"]["kind"], spec["training"]["schedule"]["every"]) == ("step", 20)
    expect(page.locator("#more-settings summary")).to_contain_text("step schedule")
    page.keyboard.press("Shift+Tab")
    focus_shows(page, "#every")  # and back, the other way


def test_stop_at_an_epoch_pauses_there_and_says_why(page: Page, base_url: str) -> None:
    sid = open_page(page)
    open_more(page)
    commit(page, "#stop-epoch", "300")
    expect(page.locator("#more-settings summary")).to_contain_text("stop at epoch 300")
    page.click("#play-btn")  # not press_play: 300 epochs may be over before "running" could be seen
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


COUNT_SETTLES = """() => {
  window.__settles = 0;
  document.addEventListener("htmx:afterSettle", () => window.__settles++);
}"""


def _typed(page: Page, text: str) -> None:
    """Replace the focused field's text by keyboard and leave it with Tab: the change PATCHes the session, and
    the form comes back with it (waited for: a key pressed while the form is being swapped has no place to go)."""
    page.keyboard.press("Control+a")
    page.keyboard.type(text)
    settled = page.evaluate("window.__settles")
    with patched(page):
        page.keyboard.press("Tab")
    page.wait_for_function("n => window.__settles > n", arg=settled)


def _keyed(page: Page, key: str) -> None:
    with patched(page):
        page.keyboard.press(key)


# Every control of "more settings", in the order Tab reaches it from the disclosure, with what the keyboard does to
# it and where that lands in the spec: (selector, action, text or key, spec path, the value it then holds).
EVERY_CONTROL = [
    ("#loss", "key", "ArrowDown", "training.loss", "cross_entropy"),
    ("#algorithm", None, None, "training.algorithm", "backprop"),  # perceptron needs no hidden layers: tried below
    ("#momentum", "type", "0.5", "training.momentum", 0.5),
    ("#dropout", "type", "0.1", "training.dropout", 0.1),
    ("#batch-norm", "key", "Space", "training.batch_norm", True),
    ("#init", "key", "ArrowDown", "network.init", "he"),
    ("#schedule", "key", "End", "training.schedule.kind", "cosine"),
    ("#warmup", "type", "5", "training.schedule.warmup_epochs", 5),
    ("#cosine-epochs", "type", "400", "training.schedule.epochs", 400),
    ("#floor", "type", "0.1", "training.schedule.floor", 0.1),
    ("#stop-epoch", "type", "5000", "stop.at_epoch", 5000),
    ("#stop-loss", "type", "0.001", "stop.test_loss_below", 0.001),
    ("#patience", "type", "200", "stop.patience", 200),
    ("#restore-best", "key", "Space", "stop.restore_best", True),
    ("#data-seed", "type", "3", "dataset.seed", 3),
    ("#weight-seed", "type", "7", "seed", 7),
]


def _at(spec: dict, path: str):
    for part in path.split("."):
        spec = spec[part]
    return spec


def test_every_more_setting_is_reached_and_set_by_keyboard_live(page: Page, base_url: str) -> None:
    """Tab walks the disclosure's controls in the order they are drawn, each shows its focus and takes a value from
    the keyboard alone; the session takes each one live: it stays at its epoch, paused, its weights untouched."""
    sid = open_page(page)
    with patched(page):
        page.focus("#optimizer")
        page.keyboard.press("ArrowDown")  # sgd → momentum: the momentum field is then enabled (and in the Tab order)
    page.click("#play-btn")
    page.wait_for_function(f"() => {EPOCH} >= 30", timeout=120_000)
    page.click("#play-btn")
    expect(page.locator("#run-buttons")).to_have_attribute("data-status", "paused")
    before = state(base_url, sid)
    weights = state(base_url, sid, "/weights")
    page.evaluate(COUNT_SETTLES)
    tab_to(page, "#more-settings > summary", 60)
    page.keyboard.press("Enter")
    expect(page.locator("#more-settings")).to_have_attribute("open", "")
    for i, (selector, action, text, path, value) in enumerate(EVERY_CONTROL):
        page.keyboard.press("Tab")
        focus_shows(page, selector)  # the next Tab lands here: nothing is skipped, nothing jumps ahead
        if action == "type":
            _typed(page, text)
            if i + 1 < len(EVERY_CONTROL):
                focus_shows(page, EVERY_CONTROL[i + 1][0])  # Tab's move survives the form coming back
            page.keyboard.press("Shift+Tab")
            focus_shows(page, selector)
        elif action == "key":
            _keyed(page, text)
            focus_shows(page, selector)
        spec = state(base_url, sid)["spec"]
        assert _at(spec, path) == (pytest.approx(value) if isinstance(value, float) else value), (selector, spec)
    after = state(base_url, sid)
    assert (after["epoch"], after["status"]) == (before["epoch"], "paused")  # live: nothing was reset
    kept = state(base_url, sid, "/weights")
    assert [layer["w"] for layer in kept["layers"]] == [layer["w"] for layer in weights["layers"]]
    summary = page.locator("#more-settings summary")
    for words in ("cosine schedule", "warm-up", "stop at epoch 5,000", "early stopping", "dropout", "batch norm"):
        expect(summary).to_contain_text(words)
    # the one choice the keyboard cannot make here: the perceptron rule with hidden layers is refused beside it
    page.focus("#algorithm")
    _keyed(page, "ArrowDown")
    expect(page.locator("#algorithm-error")).to_be_visible()
    assert state(base_url, sid)["spec"]["training"]["algorithm"] == "backprop"
