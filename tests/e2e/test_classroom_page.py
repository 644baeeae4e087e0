"""A class in real browsers, each its own visitor: the teacher starts a class from the playground, two
students join with the code (one on a phone), follow the teacher's training and the panel they open, make
it theirs once released (continuing from the teacher's weights, not epoch 0), meet a challenge set on the
dashboard (the leaderboard and the student's bar say so), go back to following when the teacher locks, and
one is spotlighted to the class and another removed. The code is readable from the back of a room and the
bars fit a 390 px phone."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.test_accessibility import _violations

pytestmark = pytest.mark.e2e

EPOCH = "+document.getElementById('epoch').value.replace(/,/g, '')"
FITS = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"


@pytest.fixture
def contexts(chromium: Browser, base_url: str) -> Iterator[Callable[[int], BrowserContext]]:
    made: list[BrowserContext] = []

    def make(width: int) -> BrowserContext:
        ctx = chromium.new_context(base_url=base_url, viewport={"width": width, "height": 900})
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


def _page(ctx: BrowserContext) -> Page:
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    return page


def _join(page: Page, code: str, name: str) -> None:
    page.goto(f"/join?code={code}")
    expect(page.locator("#join-code")).to_have_value(code)
    page.fill("#join-name", name)
    page.click("#join-btn")
    page.wait_for_url(re.compile(r"/class/[\w-]+$"))
    expect(page.locator("#class-bar")).to_have_attribute("data-role", "student")


def test_a_class_follows_forks_competes_and_is_locked(contexts: Callable[[int], BrowserContext]) -> None:
    teacher = _page(contexts(1366))
    teacher.goto("/")
    teacher.click("#class-start")
    expect(teacher.locator("#class-bar")).to_have_attribute("data-role", "teacher")
    assert re.search(r"/s/[\w-]+$", teacher.url)  # the presenter's page keeps its own address
    code = teacher.locator("#class-code").inner_text()
    assert re.fullmatch(r"[A-Z0-9]{6}", code)
    size = teacher.eval_on_selector("#class-code", "e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 40  # read from the back of the room
    teacher.click("#class-qr")  # the code full screen
    big = teacher.eval_on_selector(".class-big-code", "e => parseFloat(getComputedStyle(e).fontSize)")
    assert big >= 100
    teacher.keyboard.press("Escape")

    ada = _page(contexts(390))
    wrong = ada
    wrong.goto("/join")
    wrong.fill("#join-code", "QQQQQQ")
    wrong.fill("#join-name", "Ada")
    wrong.click("#join-btn")
    expect(wrong.locator("#join-error")).to_contain_text("no class has the code")
    assert not _violations(wrong), _violations(wrong)
    _join(ada, code, "<b>Ada</b>")
    expect(ada.locator("#class-me")).to_have_text("<b>Ada</b>")  # typed, shown as text
    assert ada.evaluate(FITS)
    grace = _page(contexts(1366))
    _join(grace, code, "Grace")
    expect(teacher.locator("#class-students")).to_have_text("2 students")
    assert not _violations(teacher), _violations(teacher)

    # following: the teacher trains and opens a panel; the students' pages do the same
    teacher.click("#play-btn")
    ada.wait_for_function(f"{EPOCH} > 0")
    expect(ada.locator("#class-fork")).to_be_disabled()
    teacher.click("#landscape-tab")
    expect(ada.locator("#landscape-tab")).to_have_attribute("aria-expanded", "true")
    teacher.click("#landscape-tab")
    expect(ada.locator("#landscape-tab")).to_have_attribute("aria-expanded", "false")

    # released: Ada makes it hers, going on from the teacher's weights
    teacher.click("#class-release")
    expect(ada.locator("#class-fork")).to_be_enabled()
    seen = ada.evaluate(EPOCH)
    ada.click("#class-fork")
    ada.wait_for_url(re.compile(r"/s/[\w-]+$"))
    expect(ada.locator("#class-bar")).to_have_attribute("data-forked", "true")
    assert ada.evaluate(EPOCH) >= seen > 0
    assert ada.get_attribute("body", "data-role") == "owner"
    assert ada.evaluate(FITS)

    # a challenge on the dashboard that Ada's copy meets at once
    dash = teacher.context.new_page()
    dash.goto(f"/classes/{teacher.get_attribute('#class-bar', 'data-class')}")
    expect(dash.locator("#roster tbody tr")).to_have_count(2)
    dash.select_option("#ch-metric", "test_loss")
    dash.select_option("#ch-comparison", "<")
    dash.fill("#ch-value", "5")
    dash.click("#ch-set")
    goal = "test loss < 5 on circle (500 points, noise 0, 50 % training, data seed 0)"  # the class's data kept
    expect(dash.locator("#challenge-now")).to_have_text(goal)
    expect(dash.locator("#board li").first).to_contain_text("met ✓")
    expect(dash.locator("#board li").first).to_contain_text("<b>Ada</b>")
    expect(dash.locator("#maps img")).to_have_count(1)  # Ada's own copy's decision map
    expect(ada.locator("#class-rank")).to_contain_text("goal met ✓")
    expect(ada.locator("#class-challenge")).to_have_text(f"goal: {goal}")
    assert not _violations(dash), _violations(dash)
    assert not _violations(ada), _violations(ada)

    # spotlight Ada: Grace's page now shows Ada's session
    dash.get_by_role("button", name="spotlight: <b>Ada</b>").click()
    expect(grace.locator("#class-where")).to_contain_text("<b>Ada</b>")
    assert grace.get_attribute("body", "data-session") == ada.get_attribute("body", "data-session")
    dash.click("#dash-unspot")
    expect(grace.locator("#class-where")).to_have_text("following the teacher")

    # Grace makes it hers too: two copies on the dashboard, both on the leaderboard, Ada first
    grace.click("#class-fork")
    grace.wait_for_url(re.compile(r"/s/[\w-]+$"))
    expect(grace.locator("#class-bar")).to_have_attribute("data-forked", "true")
    expect(dash.locator("#maps img")).to_have_count(2)
    expect(dash.locator("#board li")).to_have_count(2)
    expect(dash.locator("#board li").first).to_contain_text("<b>Ada</b>")

    # locked: both are taken back to following, and their copies do not train
    teacher.click("#class-lock")
    ada.wait_for_url(re.compile(r"/class/[\w-]+$"))
    grace.wait_for_url(re.compile(r"/class/[\w-]+$"))
    expect(ada.locator("#class-fork")).to_be_disabled()

    # removed: Grace is told, and her page stops
    dash.once("dialog", lambda d: d.accept())
    dash.get_by_role("button", name="remove Grace").click()
    expect(grace.locator("#class-error")).to_have_text("The teacher removed you from the class.")
    expect(dash.locator("#roster tbody tr")).to_have_count(1)
    expect(teacher.locator("#class-students")).to_have_text("1 student")

    # ended: next week, the teacher's browser finds the class with its results, and reopens it
    dash.once("dialog", lambda d: d.accept())
    dash.click("#dash-end")
    expect(dash.locator("#dash-status")).to_have_text("ended")
    listed = teacher.context.new_page()
    listed.goto("/classes")
    item = listed.locator("#class-list > li").first
    expect(item).to_have_attribute("data-status", "ended")
    expect(item).to_contain_text("1 student")
    expect(item.locator(".class-rounds li")).to_have_text([f"{goal} — met by 1, first <b>Ada</b> after 0 s"])
    assert listed.evaluate(FITS)
    assert not _violations(listed), _violations(listed)
    item.get_by_role("link", name="results and reopen").click()
    expect(listed.locator("#rounds")).to_contain_text(goal)
    expect(listed.locator("#roster tbody tr")).to_have_count(1)  # who came: Ada (Grace was removed)
    listed.click("#dash-reopen")
    expect(listed.locator("#dash-status")).to_have_text("open")
    expect(listed.locator("#class-code")).to_have_text(re.compile(r"^[A-Z0-9]{6}$"))
