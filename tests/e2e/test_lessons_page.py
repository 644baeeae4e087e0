"""The lessons in a real browser: the gallery opens a lesson whose text sits beside the playground (above it on a
phone) without covering a panel; show why opens and closes; a variant changes the controls and the network;
play trains; start over brings the lesson's settings back at epoch 0; the top bar's menu works by keyboard."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from server.lessons import LESSONS
from server.routes.lessons import PANEL_SELECTORS

pytestmark = pytest.mark.e2e

EPOCH = "+document.getElementById('epoch').value.replace(/,/g, '')"

# Every box of the aside and of the playground's columns, and how wide the page and each column scroll.
LAYOUT = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; };
  const cols = [...document.querySelectorAll("main.playground > *")].filter((el) => el.offsetParent);
  return {
    aside: box(document.getElementById("lesson-aside")),
    cols: cols.map(box),
    overflowing: cols.filter((el) => el.scrollWidth > el.clientWidth + 1).map((el) => el.className),
    page: document.documentElement.scrollWidth,
  };
}"""


def _overlap(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["w"] - 1
        and b["x"] < a["x"] + a["w"] - 1
        and a["y"] < b["y"] + b["h"] - 1
        and (b["y"] < a["y"] + a["h"] - 1)
    )


def _layout(page: Page, width: int) -> dict:
    layout = page.evaluate(LAYOUT)
    assert layout["page"] <= width, f"the page is {layout['page']} px wide at {width} px"
    assert not layout["overflowing"], f"cut off inside: {layout['overflowing']}"
    for col in layout["cols"]:
        assert not _overlap(layout["aside"], col), f"the lesson covers a panel: {layout['aside']} / {col}"
        assert col["x"] >= 0 and col["x"] + col["w"] <= width + 1
    assert layout["aside"]["x"] >= 0 and layout["aside"]["x"] + layout["aside"]["w"] <= width
    return layout


def _outlined_panels_exist(page: Page, kind: str) -> None:
    for key, selector in PANEL_SELECTORS[kind].items():
        assert page.locator(selector).count() > 0, f"the {kind} page has nothing for the panel {key!r} ({selector})"
    lesson = LESSONS[page.locator("#lesson-aside").get_attribute("data-slug")]
    for key in lesson.panels:
        expect(page.locator(PANEL_SELECTORS[kind][key]).first).to_have_class(re.compile(r"\blesson-highlight\b"))


def _spec(base_url: str, page: Page) -> dict:
    sid = page.locator("body").get_attribute("data-session")
    return httpx.get(f"{base_url}/api/v1/sessions/{sid}").json()["spec"]


def test_a_lesson_from_the_gallery_variant_play_start_over(page: Page, base_url: str, artifacts: Path) -> None:
    page.goto("/lessons")
    page.get_by_role("link", name="Activation functions side by side").click()
    expect(page).to_have_url(f"{base_url}/lessons/activation-functions")
    page.wait_for_selector("#output-map[data-painted]")
    aside = page.locator("#lesson-aside")
    expect(aside.locator("#lesson-question")).to_have_text(LESSONS["activation-functions"].question)
    layout = _layout(page, 1366)
    first = min(layout["cols"], key=lambda c: c["x"])
    assert layout["aside"]["x"] + layout["aside"]["w"] <= first["x"], "the text is not beside the playground"
    _outlined_panels_exist(page, "mlp")

    why = page.locator("#lesson-why")
    expect(why.locator("p")).to_be_hidden()
    why.locator("summary").click()
    expect(why.locator("p")).to_be_visible()
    why.locator("summary").click()
    expect(why.locator("p")).to_be_hidden()

    page.fill("#lr", "0.03")  # the student's own change, which start over must undo
    page.press("#lr", "Enter")
    page.wait_for_function(
        "u => fetch(u).then(r => r.json()).then(s => s.spec.training.learning_rate === 0.03)",
        arg=f"/api/v1/sessions/{page.locator('body').get_attribute('data-session')}",
    )
    activation = page.locator('#network-form select[name="activation"]').first
    expect(activation).to_have_value("tanh")
    page.get_by_role("button", name="try: relu").click()
    expect(activation).to_have_value("relu")
    expect(page.get_by_role("button", name="try: relu")).to_have_attribute("aria-pressed", "true")
    spec = _spec(base_url, page)
    assert [layer["activation"] for layer in spec["network"]["hidden"]] == ["relu"]
    assert spec["training"]["learning_rate"] == 0.1  # merged into the lesson's settings, not the student's
    expect(page.locator("#lr")).to_have_value("0.1")

    page.click("#play-btn")
    page.wait_for_function(f"() => {EPOCH} > 20")
    page.click("#lesson-start-over")
    page.wait_for_function(f"() => {EPOCH} === 0")
    expect(activation).to_have_value("tanh")
    expect(page.locator("#run-buttons")).to_have_attribute("data-status", "paused")
    assert _spec(base_url, page)["network"]["hidden"] == [{"units": 6, "activation": "tanh"}]
    expect(page).to_have_url(f"{base_url}/lessons/activation-functions")
    page.screenshot(path=str(artifacts / "lesson-mlp-1366.png"))


def test_the_menu_opens_a_cnn_lesson_by_keyboard(page: Page, base_url: str, artifacts: Path) -> None:
    page.goto("/")
    page.wait_for_selector("#output-map[data-painted]")
    page.focus("#lessons-menu-btn")
    page.keyboard.press("Enter")
    expect(page.locator(".lessons-menu-pop")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator(".lessons-menu-pop")).to_be_hidden()
    expect(page.locator("#lessons-menu-btn")).to_be_focused()
    target = list(LESSONS).index("cnn-edge-filters")
    for _ in range(target + 1):
        page.keyboard.press("ArrowDown")
    expect(page.locator(":focus")).to_have_attribute("href", "/lessons/cnn-edge-filters")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base_url}/lessons/cnn-edge-filters")
    expect(page.locator("body")).to_have_attribute("data-kind", "cnn")
    expect(page.locator("#lesson-h")).to_have_text(LESSONS["cnn-edge-filters"].title)
    _outlined_panels_exist(page, "cnn")
    page.wait_for_selector("#examples .example canvas")  # the test images, with their class names, are in
    page.wait_for_selector("#wrong .example, #wrong-none:not([hidden])")
    layout = _layout(page, 1366)
    assert layout["aside"]["x"] + layout["aside"]["w"] <= min(c["x"] for c in layout["cols"])

    pools = page.locator("#cnn-layers .layer-kind", has_text="pool")
    assert pools.count() > 0
    page.get_by_role("button", name="try: no pooling").click()
    expect(pools).to_have_count(0)
    assert all(layer["type"] != "pool" for layer in _spec(base_url, page)["network"]["layers"])
    page.get_by_role("button", name="try: max pooling").click()
    expect(pools).not_to_have_count(0)
    page.screenshot(path=str(artifacts / "lesson-cnn-1366.png"))


def test_a_lesson_on_a_phone_puts_the_text_above(page: Page, artifacts: Path) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/lessons")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.goto("/lessons/perceptron")
    page.wait_for_selector("#output-map[data-painted]")
    layout = _layout(page, 390)
    assert layout["aside"]["y"] + layout["aside"]["h"] <= min(c["y"] for c in layout["cols"]), "text not above"
    page.locator("#lesson-why summary").click()
    expect(page.locator("#lesson-why p")).to_be_visible()
    _layout(page, 390)
    page.locator("#lessons-menu-btn").click()
    pop = page.locator(".lessons-menu-pop").bounding_box()
    assert pop is not None and pop["x"] >= 0 and pop["x"] + pop["width"] <= 390
    page.screenshot(path=str(artifacts / "lesson-390.png"))
