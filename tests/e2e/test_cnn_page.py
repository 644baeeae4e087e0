"""The CNN page in a real browser: it trains live, paints filters and feature maps, edits without reset."""

from __future__ import annotations

import json
import re
import struct
import time
import zlib
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from tests.e2e.hooks import keep_sockets, send_raw
from tests.e2e.lazy import started

pytestmark = pytest.mark.e2e

EPOCH = "+document.getElementById('epoch').value.replace(/,/g, '')"
PAINTED = "#filters canvas[data-painted]"  # a CNN frame has been painted


def open_cnn(page: Page, preset: str = "cnn-lenet-digits") -> str:
    page.goto(f"/presets/{preset}")
    page.wait_for_selector(PAINTED, timeout=60_000)
    return started(page)


def test_the_cnn_page_trains_and_shows_what_the_filters_learn(page: Page, base_url: str) -> None:
    sid = open_cnn(page)
    expect(page.locator("body")).to_have_attribute("data-kind", "cnn")
    first = page.eval_on_selector('#filters canvas[data-key="conv0"]', "c => c.toDataURL()")
    page.click("#play-btn")
    page.wait_for_function(f"{EPOCH} >= 3", timeout=60_000)
    page.wait_for_function(
        "before => document.querySelector('#filters canvas[data-key=\"conv0\"]').toDataURL() !== before", arg=first
    )
    conv0, conv2 = page.locator('#filters canvas[data-key="conv0"]'), page.locator('#filters canvas[data-key="conv2"]')
    expect(conv0).to_have_attribute("aria-label", re.compile("8 filters 3×3"))
    expect(conv2).to_have_attribute("aria-label", re.compile("over 8 channels"))
    # The confusion matrix counts every test image; accuracy shows as a percentage.
    n_test = httpx.get(f"{base_url}/api/v1/sessions/{sid}").json()["architecture"]["n_test"]
    expect(page.locator("#confusion")).to_have_attribute("data-total", str(n_test))
    expect(page.locator("#test-acc")).to_have_text(re.compile(r"\d+\.\d %"))
    expect(page.locator("#wrong")).to_have_attribute("data-count", re.compile(r"^[0-8]$"))
    # Choosing a test image shows its feature maps.
    page.click('.example[data-example="3"]')
    expect(page.locator('.example[data-example="3"]')).to_have_attribute("aria-selected", "true")
    expect(page.locator('#maps canvas[data-key="maps0"]')).to_have_attribute("data-example", "3")
    expect(page.locator("#example-caption")).to_contain_text("test image 4")
    expect(page.locator("#saliency")).to_have_attribute("data-example", "3")  # and what its answer depends on
    # The feature maps' colour scale: per map, per layer or one for all.
    maps0 = page.locator('#maps canvas[data-key="maps0"]')
    per_map = maps0.evaluate("c => c.toDataURL()")
    page.select_option("#map-scale", "global")
    expect(maps0).to_have_attribute("data-scale", "global")
    assert maps0.evaluate("c => c.toDataURL()") != per_map
    # What the first layer's filters want to see, computed while the network trains.
    page.click("#actmax-btn")
    expect(page.locator("#actmax-note")).to_contain_text("computing")
    # (its first call compiles a program while training and frames go on: on a busy 2-core machine, a while)
    expect(page.locator("#actmax canvas")).to_have_attribute("data-layer", "0", timeout=120_000)
    expect(page.locator("#actmax-note")).to_have_text("")
    expect(page.locator("#actmax figcaption")).to_contain_text("8 filters")
    # One more filter while training: the layer list and the filter picture follow, the epoch never goes back.
    before = page.evaluate(EPOCH)
    page.click("#add-filter-0")
    expect(page.locator('.layer-row[data-layer="0"] .count')).to_have_text("9 filters 3×3")
    expect(page.locator("#change-note")).to_contain_text("without a reset")
    expect(conv0).to_have_attribute("aria-label", re.compile("9 filters"))
    assert page.evaluate(EPOCH) >= before
    spec = httpx.get(f"{base_url}/api/v1/sessions/{sid}").json()["spec"]
    assert spec["network"]["layers"][0]["filters"] == 9
    # An out-of-range learning rate is refused beside the field.
    page.fill("#lr", "50")
    page.press("#lr", "Tab")
    expect(page.locator("#lr-error")).to_contain_text("at most 10")
    page.click("#play-btn")  # pause
    expect(page.locator("#status")).to_have_text("paused")


def test_the_cnn_page_learns_the_status_from_the_stream_without_polling(page: Page, base_url: str) -> None:
    keep_sockets(page)
    sid = open_cnn(page)
    token = next(c["value"] for c in page.context.cookies() if c["name"] == f"neuroglass_{sid}")
    rest = httpx.Client(base_url=f"{base_url}/api/v1/sessions/{sid}", headers={"Authorization": f"Bearer {token}"})
    asked: list[tuple[float, str]] = []  # (when, url) of every REST call the page makes about its session

    def seen(request: Request) -> None:
        if f"/api/v1/sessions/{sid}" in request.url:
            asked.append((time.monotonic(), request.url))

    page.on("request", seen)
    status = page.locator("#status")
    page.check("#actmax-live")  # "refresh while training" follows the frames, not a timer
    page.click("#play-btn")
    expect(status).to_have_text("running")
    page.wait_for_function(f"{EPOCH} >= 2", timeout=60_000)
    # Paused by someone else (a script): the page learns it from the play loop's last frame.
    assert rest.post("/pause").json()["status"] == "paused"
    expect(status).to_have_text("paused")
    expect(page.locator("#run-buttons")).to_have_attribute("data-status", "paused")
    # Played again from outside: the frames say so; paused through the page's socket: its ack says so.
    assert rest.post("/play").json()["status"] == "running"
    expect(status).to_have_text("running")
    send_raw(page, json.dumps({"action": "pause", "ref": "test"}))
    expect(status).to_have_text("paused")
    page.wait_for_timeout(500)  # the views that follow a pause (saliency) ask once
    idle = time.monotonic()
    page.wait_for_timeout(2500)
    assert [url for when, url in asked if when >= idle] == []  # nothing asked while idle
    assert f"{base_url}/api/v1/sessions/{sid}" not in [url for _, url in asked]  # never the session's state
    expect(status).to_have_text("paused")
    rest.close()


def test_the_tabs_switch_between_mlp_and_cnn(page: Page) -> None:
    page.goto("/")
    page.wait_for_selector("#output-map[data-painted]")
    page.click("#cnn-tab")
    page.wait_for_selector(PAINTED, timeout=60_000)
    expect(page.locator("#image-set")).to_have_value("digits")
    page.click('.kinds a:has-text("MLP")')
    page.wait_for_selector("#output-map[data-painted]")


def test_screenshots_of_the_cnn_page(page: Page, artifacts: Path) -> None:
    open_cnn(page)
    page.click("#play-btn")
    page.wait_for_function(f"{EPOCH} >= 5", timeout=60_000)
    page.screenshot(path=artifacts / "cnn-desktop.png")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    page.screenshot(path=artifacts / "cnn-phone-full.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways
    for name in ("cnn-desktop.png", "cnn-phone-full.png"):
        assert (artifacts / name).stat().st_size > 10_000


def _png(side: int = 20) -> bytes:
    """A grey PNG: a bright vertical stroke on black (written by hand: no imaging library needed)."""
    rows = b"".join(
        b"\x00" + bytes(255 if side // 3 <= x < side // 3 + 3 else 0 for x in range(side)) for _ in range(side)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_draw_or_upload_an_image_and_the_network_answers(page: Page) -> None:
    open_cnn(page)
    box = page.locator("#draw").bounding_box()
    page.mouse.move(box["x"] + 84, box["y"] + 30)
    page.mouse.down()
    for y in range(30, 140, 10):  # a vertical stroke: something like a one
        page.mouse.move(box["x"] + 84, box["y"] + y)
    page.mouse.up()
    expect(page.locator("#draw-probs .prob")).to_have_count(10)
    expect(page.locator("#draw")).to_have_attribute("data-drawn", re.compile(r"^\d$"))
    expect(page.locator("#draw-probs .prob.best")).to_have_count(1)
    # The feature maps panel now shows the drawing's maps; a click on a test image goes back to it.
    maps0 = page.locator('#maps canvas[data-key="maps0"]')
    expect(maps0).to_have_attribute("data-example", "drawing")
    expect(page.locator("#example-caption")).to_contain_text("your drawing: the network says")
    drawn = maps0.evaluate("c => c.toDataURL()")
    page.click('.example[data-example="1"]')
    expect(maps0).to_have_attribute("data-example", "1")
    assert maps0.evaluate("c => c.toDataURL()") != drawn
    # A file that is not a picture is refused in words; a picture is scaled down and classified.
    page.set_input_files("#draw-file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}])
    expect(page.locator("#draw-error")).to_contain_text("notes.txt is not a picture")
    page.click("#draw-clear")
    expect(page.locator("#draw-probs .prob")).to_have_count(0)
    page.set_input_files("#draw-file", files=[{"name": "one.png", "mimeType": "image/png", "buffer": _png()}])
    expect(page.locator("#draw-probs .prob")).to_have_count(10)


def test_a_watcher_follows_a_cnn_session(page: Page, chromium, base_url: str) -> None:
    sid = open_cnn(page)
    viewer_context = chromium.new_context(viewport={"width": 1366, "height": 900})
    viewer = viewer_context.new_page()
    try:
        viewer.goto(f"{base_url}/watch/{sid}")
        viewer.wait_for_selector(PAINTED, timeout=60_000)
        expect(viewer.locator("#watch-badge")).to_be_visible()
        for control in ("#play-btn", "#lr", "#add-filter-0", "#image-set"):
            expect(viewer.locator(control)).to_be_disabled()
        page.click("#add-filter-0")
        expect(page.locator('.layer-row[data-layer="0"] .count')).to_have_text("9 filters 3×3")
        expect(viewer.locator('.layer-row[data-layer="0"] .count')).to_have_text("9 filters 3×3")
        expect(viewer.locator("#add-filter-0")).to_be_disabled()
    finally:
        viewer_context.close()


def settled(page: Page) -> None:
    """Wait until htmx has swapped and processed the walkthrough (a change fired before its listeners are on
    the new form would go unseen — a window of milliseconds that a loaded test machine widens)."""
    page.wait_for_function(
        "!document.querySelector('#conv-walk.htmx-settling, #conv-walk .htmx-added, .htmx-request')"
        " && document.getElementById('conv-form')?.getAttribute('hx-get') && htmx.find('#conv-form')"
    )
    page.wait_for_timeout(50)


def test_how_a_convolution_works_steps_through_real_numbers(page: Page, base_url: str) -> None:
    sid = open_cnn(page)
    counter, eq = page.locator("#conv-counter"), page.locator("#conv-eq")
    expect(counter).to_have_text("step 1 of 20")  # 4 × 4 outputs of a 3 × 3 filter, then 4 max-pool windows
    expect(page.locator("#conv-patch tr")).to_have_count(6)
    expect(page.locator("#conv-filter-grid td")).to_have_count(9)
    expect(eq).to_contain_text("→ relu →")
    assert eq.inner_text().count("×") == 9  # nine products, then the bias
    filled = "document.querySelectorAll('#conv-out td:not(:empty)').length"
    assert page.evaluate(filled) == 1
    page.click("#conv-next")
    expect(counter).to_have_text("step 2 of 20")
    expect(eq).to_contain_text("output (1, 2)")
    assert page.evaluate(filled) == 2
    # The page's sum is the server's: the walkthrough's output equals the layer's real feature map there.
    layer, filter_ = page.input_value("#conv-layer"), page.input_value("#conv-filter")
    row, col = page.input_value("#conv-row"), page.input_value("#conv-col")
    walk = httpx.get(
        f"{base_url}/api/v1/sessions/{sid}/convolution",
        params={"layer": layer, "filter": filter_, "row": row, "col": col},
    ).json()
    shown = page.locator("#conv-out tr").nth(0).locator("td").nth(1).inner_text().replace("−", "-")
    assert float(shown) == pytest.approx(walk["feature_map"][0][1], abs=0.006)
    # After the 16 sums, the pooling: each step keeps the largest of a 2 × 2 block.
    for step in range(3, 18):
        page.click("#conv-next")
        expect(counter).to_have_text(f"step {step} of 20")
    expect(counter).to_have_text("step 17 of 20")
    expect(eq).to_contain_text("max pooling")
    expect(page.locator("#conv-out td.winner")).to_have_count(1)
    expect(page.locator("#conv-pool td:not(:empty)")).to_have_count(1)
    # Play steps on by itself; pause stops it.
    page.click("#conv-play")
    expect(page.locator("#conv-walk")).to_have_attribute("data-playing", "true")
    expect(counter).to_have_text("step 18 of 20")
    page.click("#conv-play")
    expect(page.locator("#conv-walk")).to_have_attribute("data-playing", "false")
    stopped = counter.inner_text()
    page.wait_for_timeout(1500)
    expect(counter).to_have_text(stopped)
    page.click("#conv-first")
    expect(counter).to_have_text("step 1 of 20")
    # Another filter, another image, a click on the image: the walkthrough follows.
    other = (int(filter_) + 1) % 8
    settled(page)
    page.select_option("#conv-filter", str(other))
    expect(page.locator("#conv-filter-grid")).to_have_attribute("aria-label", re.compile(f"filter {other + 1} weights"))
    expect(counter).to_have_text("step 1 of 20")
    settled(page)
    page.click('.example[data-example="2"]')
    expect(page.locator("#conv-example")).to_have_value("2")
    expect(page.locator("#conv-image")).to_have_attribute("aria-label", re.compile("test image 3"))
    settled(page)
    page.locator("#conv-image").click(position={"x": 2, "y": 2})
    expect(page.locator("#conv-picked")).to_have_value("1")
    expect(page.locator("#conv-row")).to_have_value("0")
    expect(page.locator("#conv-col")).to_have_value("0")
    expect(page.locator("#conv-patch td.pad").first).to_be_visible()  # the top-left patch reads the padding


def test_augmentation_and_dropout_are_live_edits(page: Page, base_url: str) -> None:
    sid = open_cnn(page, "cnn-shapes-tiny")
    page.click("#step-btn")
    page.wait_for_function(f"{EPOCH} >= 1", timeout=60_000)
    page.select_option("#aug-shift", "2")
    expect(page.locator("#change-note")).to_contain_text("without a reset")
    page.evaluate("document.getElementById('change-note').textContent = ''")
    page.select_option("#aug-rotate", "15")
    expect(page.locator("#change-note")).to_contain_text("without a reset")  # the server has it
    spec = httpx.get(f"{base_url}/api/v1/sessions/{sid}").json()["spec"]
    assert spec["dataset"]["augment"] == {"shift": 2, "rotate": 15, "erase": 0}
    assert page.evaluate(EPOCH) >= 1  # the epoch did not go back
    page.click("#step-btn")
    page.wait_for_function(f"{EPOCH} >= 2", timeout=60_000)
    # Dropout: a layer added at the end, its rate changed — the epoch carries on.
    page.click("#add-dropout")
    row = page.locator('.layer-row[data-layer="4"]')
    expect(row.locator(".layer-kind")).to_have_text("dropout")
    version = page.locator("#cnn-layers").get_attribute("data-spec-version")
    page.select_option("#rate-4", "0.5")
    # the layers panel comes back from the server re-rendered for the new spec version
    expect(page.locator("#cnn-layers")).not_to_have_attribute("data-spec-version", version)
    expect(page.locator("#rate-4")).to_have_value("0.5")
    layers = httpx.get(f"{base_url}/api/v1/sessions/{sid}").json()["spec"]["network"]["layers"]
    assert layers[-1] == {"type": "dropout", "rate": 0.5}
    assert page.evaluate(EPOCH) >= 2
