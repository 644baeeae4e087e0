"""Saved work in a real browser: save from the top bar, find it on /experiments, open a copy at the same
epoch, the share page in another browser (read-only, "make it mine"), rename and delete as the owner,
download the file and open it again; the CNN page saves too; the pages fit a phone."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.lazy import started

pytestmark = pytest.mark.e2e

EPOCH = "+document.getElementById('epoch').value.replace(/,/g, '')"


@pytest.fixture
def browsers(chromium: Browser, base_url: str) -> Iterator[tuple[BrowserContext, BrowserContext]]:
    """Two browsers (cookie jars): the one that saves, and a visitor who gets the share link."""
    made = [chromium.new_context(base_url=base_url, viewport={"width": 1366, "height": 900}) for _ in range(2)]
    for context in made:
        context.set_default_timeout(30_000)
    yield made[0], made[1]
    for context in made:
        context.close()


def epoch(page: Page) -> int:
    return page.evaluate(EPOCH)


def open_playground(page: Page, path: str = "/") -> str:
    page.goto(path)
    page.wait_for_selector("#output-map[data-painted]")
    return started(page)


def step(page: Page, times: int) -> None:
    """Train `times` epochs with the ⏭ button, each answered before the next."""
    start = epoch(page)
    for i in range(1, times + 1):
        page.click("#step-btn")
        page.wait_for_function(f"n => {EPOCH} === n", arg=start + i)


def landed_on_own_session(page: Page, at_epoch: int) -> None:
    """The browser is on a session page of its own (/s/{id}, owner), painted, at ``at_epoch``."""
    page.wait_for_url(re.compile(r"/s/[\w-]+$"))
    page.wait_for_selector("#output-map[data-painted]")
    assert epoch(page) == at_epoch
    expect(page.locator("body")).to_have_attribute("data-role", "owner")


def save_from_top_bar(page: Page, name: str, description: str = "") -> str:
    """Open the save popover, save under `name`; returns the share link it answers."""
    page.click("#save-btn")
    expect(page.locator("#save-pop")).to_be_visible()
    expect(page.locator("#save-name")).to_be_focused()  # type the name at once
    page.fill("#save-name", name)
    page.fill("#save-description", description)
    page.click("#save-submit")
    expect(page.locator("#saved-note")).to_be_visible()
    return page.input_value("#saved-link")


def search(page: Page, text: str) -> None:
    """Type into the experiments page's search box; wait for the list that answers it."""
    page.locator("#search").press_sequentially(text, delay=20)
    expect(page.locator("#experiment-list")).to_have_attribute("data-url", re.compile(re.escape(f"q={text}")))


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width}px wide"


def test_save_find_open_share_rename_delete(browsers, base_url: str, artifacts: Path) -> None:
    owner_context, visitor_context = browsers
    page = owner_context.new_page()
    open_playground(page)
    step(page, 3)
    name = f"circle after three epochs {uuid.uuid4().hex[:6]}"

    # An empty name is refused beside the field, in words; nothing is saved.
    page.click("#save-btn")
    page.fill("#save-name", "")
    page.click("#save-submit")
    expect(page.locator("#save-name-error")).to_have_text(re.compile("give it a name"))
    expect(page.locator("#save-name")).to_have_attribute("aria-invalid", "true")
    pop, button = page.locator("#save-pop").bounding_box(), page.locator("#save-btn").bounding_box()
    assert pop["y"] >= button["y"] + button["height"] and pop["x"] + pop["width"] <= 1366  # under it, on screen
    page.keyboard.press("Escape")
    expect(page.locator("#save-pop")).to_be_hidden()

    link = save_from_top_bar(page, name, "the default network")
    expect(page.locator("#saved-note")).to_contain_text(f"saved as {name} · epoch 3")
    assert re.fullmatch(re.escape(base_url) + r"/e/[\w-]+", link)
    page.screenshot(path=str(artifacts / "saved-work-save.png"))

    # Find it on /experiments by searching; open a copy: the page continues at epoch 3.
    page.click("#experiments-link")
    search(page, name[-6:])
    cards = page.locator(".card")
    expect(cards).to_have_count(1)
    expect(cards.locator(".card-name")).to_have_text(name)
    expect(cards.locator(".card-epoch")).to_have_text("3")
    expect(page).to_have_url(re.compile(r"/experiments\?q=\w+&page=1$"))  # a reload keeps the search
    expect(cards.locator("summary", has_text="rename")).to_be_visible()  # this browser saved it
    cards.get_by_role("button", name="open a copy").click()
    landed_on_own_session(page, 3)
    step(page, 1)  # it is this browser's own live session, continuing

    # The visitor opens the share link: read-only, the saved network, and "make it mine".
    guest = visitor_context.new_page()
    guest.goto(link)
    guest.wait_for_selector("#output-map[data-painted]")
    banner = guest.locator("#saved-banner")
    expect(banner).to_contain_text(f"saved experiment {name}")
    expect(banner).to_contain_text(re.compile(r"saved on \d{1,2} \w+ \d{4}\s+· epoch 3 ·"))
    expect(banner).to_contain_text("the default network")
    assert epoch(guest) == 3
    expect(guest.locator("#play-btn")).to_be_disabled()
    expect(guest.locator("#save-btn")).to_have_count(0)
    guest.screenshot(path=str(artifacts / "saved-work-share.png"))
    guest.click("#make-mine")
    landed_on_own_session(guest, 3)
    expect(guest.locator("#play-btn")).to_be_enabled()
    step(guest, 2)
    # ... and on /experiments the visitor may open it but not rename or delete it.
    guest.goto("/experiments")
    search(guest, name[-6:])
    expect(guest.locator(".card .open-copy")).to_have_count(1)
    expect(guest.locator(".card summary")).to_have_count(0)
    expect(guest.locator(".card .delete")).to_have_count(0)

    # The owner renames it (inline) and deletes it (after a confirm); the share link then says so in words.
    page.goto("/experiments")
    search(page, name[-6:])
    card = page.locator(".card")
    card.locator("summary", has_text="rename").click()
    card.get_by_label("new name").fill(f"{name} renamed")
    card.get_by_role("button", name="save name").click()
    expect(page.locator(".card .card-name")).to_have_text(f"{name} renamed")
    expect(page.locator(".card .card-note")).to_have_text("renamed")
    found = httpx.get(f"{base_url}/api/v1/experiments", params={"q": name}).json()["items"]
    assert [e["name"] for e in found] == [f"{name} renamed"]
    page.once("dialog", lambda d: d.accept() if "Delete" in d.message else d.dismiss())
    page.locator(".card .delete").click()
    expect(page.locator(".card")).to_have_count(0)
    assert httpx.get(f"{base_url}/api/v1/experiments", params={"q": name}).json()["total"] == 0
    guest.goto(link)
    expect(guest.locator(".page-error")).to_have_text(re.compile("There is no saved experiment at this link"))


def test_download_the_file_and_open_it_again(browsers, tmp_path: Path) -> None:
    page = browsers[0].new_page()
    open_playground(page, "/?spec=eyJkYXRhc2V0Ijp7Im5hbWUiOiJ4b3IifX0")  # xor
    step(page, 2)
    page.click("#save-btn")
    with page.expect_download() as caught:
        page.click("#download-link")
    download = caught.value
    assert download.suggested_filename == "neuroglass-mlp-epoch2.safetensors"
    file = tmp_path / download.suggested_filename
    download.save_as(file)
    # A file that is not one is refused beside the button, in words; the page stays.
    junk = tmp_path / "notes.safetensors"
    junk.write_bytes(b"PK\x03\x04 a zip, not a saved session")
    before = page.url
    page.set_input_files("#open-file", junk)
    expect(page.locator("#open-file-error")).to_contain_text("notes.safetensors cannot be opened")
    assert page.url == before
    # The real file opens as a new session of this browser's, at epoch 2, with xor's data.
    page.set_input_files("#open-file", file)
    landed_on_own_session(page, 2)
    expect(page.locator("#dataset-xor")).to_be_checked()
    step(page, 1)


def test_the_cnn_page_saves_too(browsers, base_url: str) -> None:
    page = browsers[0].new_page()
    page.goto("/presets/cnn-lenet-digits")
    page.wait_for_selector("#filters canvas[data-painted]", timeout=60_000)
    page.click("#step-btn")
    page.wait_for_function(f"{EPOCH} === 1", timeout=60_000)
    name = f"lenet digits {uuid.uuid4().hex[:6]}"
    link = save_from_top_bar(page, name)
    expect(page.locator("#saved-note")).to_contain_text(f"saved as {name} · epoch 1")
    found = httpx.get(f"{base_url}/api/v1/experiments", params={"q": name}).json()["items"]
    assert [(e["kind"], e["epoch"]) for e in found] == [("cnn", 1)]
    guest = browsers[1].new_page()
    guest.goto(link)
    guest.wait_for_selector("#filters canvas[data-painted]", timeout=60_000)
    expect(guest.locator("body")).to_have_attribute("data-kind", "cnn")
    expect(guest.locator("#saved-banner")).to_contain_text(f"saved experiment {name}")
    assert epoch(guest) == 1


def test_the_pages_fit_a_phone(chromium: Browser, base_url: str, artifacts: Path) -> None:
    context = chromium.new_context(base_url=base_url, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        open_playground(page)
        link = save_from_top_bar(page, f"phone {uuid.uuid4().hex[:6]}")
        pop = page.locator("#save-pop").bounding_box()
        assert pop["x"] >= 0 and pop["x"] + pop["width"] <= 390
        no_horizontal_scroll(page)
        page.screenshot(path=str(artifacts / "saved-work-save-390.png"))
        page.goto("/experiments")
        expect(page.locator(".card").first).to_be_visible()
        no_horizontal_scroll(page)
        boxes = [page.locator(".card").nth(i).bounding_box() for i in range(min(3, page.locator(".card").count()))]
        assert len({round(b["x"]) for b in boxes}) == 1  # one column: the cards stack
        assert all(b["x"] + b["width"] <= 390 for b in boxes)
        page.screenshot(path=str(artifacts / "saved-work-experiments-390.png"), full_page=True)
        page.goto(link)
        page.wait_for_selector("#output-map[data-painted]")
        no_horizontal_scroll(page)
        expect(page.locator("#make-mine")).to_be_in_viewport()
    finally:
        context.close()
