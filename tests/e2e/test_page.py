"""The page in a real browser: live training, live edits, share links, watchers, errors, screenshots."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.hooks import keep_sockets, send_raw
from tests.e2e.lazy import started

pytestmark = pytest.mark.e2e

EPOCH = "+document.getElementById('epoch').value.replace(/,/g, '')"


def open_page(page: Page, path: str = "/") -> str:
    """Open the playground; returns its session id once the first frame is painted."""
    page.goto(path)
    page.wait_for_selector("#output-map[data-painted]")
    return started(page)


def epoch(page: Page) -> int:
    return page.evaluate(EPOCH)


def wait_epoch_above(page: Page, n: int, timeout: float = 30_000) -> int:
    page.wait_for_function(f"n => {EPOCH} > n", arg=n, timeout=timeout)
    return epoch(page)


def pixels(page: Page, selector: str = "#output-map") -> str:
    return page.eval_on_selector(selector, "c => c.toDataURL()")


def spec_in_url(page: Page) -> dict:
    text = parse_qs(urlparse(page.url).query)["spec"][0]
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def state(base_url: str, sid: str, what: str = "") -> dict:
    return httpx.get(f"{base_url}/api/v1/sessions/{sid}{what}").json()


def press_play(page: Page) -> None:
    page.click("#play-btn")
    expect(page.locator("#run-buttons")).to_have_attribute("data-status", "running")


def test_play_trains_and_repaints_the_output(page: Page) -> None:
    open_page(page)
    assert epoch(page) == 0
    before = pixels(page)
    press_play(page)
    wait_epoch_above(page, 50)
    page.wait_for_function("before => document.getElementById('output-map').toDataURL() !== before", arg=before)
    expect(page.locator("#train-loss")).not_to_have_text("–")
    page.click("#play-btn")  # pause
    expect(page.locator("#status")).to_have_text("paused")


def test_learning_rate_changes_while_running_without_going_back(page: Page, base_url: str) -> None:
    keep_sockets(page)
    sid = open_page(page)
    press_play(page)
    before = wait_epoch_above(page, 20)
    page.fill("#lr", "0.1")
    page.press("#lr", "Tab")
    expect(page.locator("#change-note")).to_contain_text("without a reset")
    assert epoch(page) >= before
    wait_epoch_above(page, epoch(page))  # still training
    s = state(base_url, sid)
    assert s["spec"]["training"]["learning_rate"] == 0.1 and s["status"] == "running"
    assert spec_in_url(page)["training"]["learning_rate"] == 0.1
    # Out of range: the error appears beside the field, training goes on with the old value.
    page.fill("#lr", "50")
    page.press("#lr", "Tab")
    expect(page.locator("#lr-error")).to_contain_text("at most 10")
    expect(page.locator("#lr")).to_have_attribute("aria-invalid", "true")
    wait_epoch_above(page, epoch(page))
    assert state(base_url, sid)["spec"]["training"]["learning_rate"] == 0.1
    # Malformed and unknown control messages get an answer in words; training goes on.
    send_raw(page, "{oops")
    expect(page.locator("#stream-error")).to_contain_text("messages must be JSON")
    send_raw(page, json.dumps({"action": "explode"}))
    expect(page.locator("#stream-error")).to_contain_text("unknown action 'explode'")
    wait_epoch_above(page, epoch(page))


def test_adding_a_layer_and_a_neuron_updates_the_diagram_without_reset(page: Page, base_url: str) -> None:
    sid = open_page(page)
    press_play(page)
    before = wait_epoch_above(page, 20)
    page.click("#add-layer")
    expect(page.locator(".hidden-layer")).to_have_count(3)
    page.click("#add-unit-0")
    expect(page.locator('canvas[data-layer="0"]:not([data-output])')).to_have_count(5)
    # The new neuron's map and the new layer are painted by later frames; the epoch never went back.
    new_neuron = page.locator('canvas[data-layer="0"][data-unit="4"]')
    expect(new_neuron).to_have_attribute("data-painted", re.compile(r"\d+"))
    assert int(new_neuron.get_attribute("data-painted")) >= before
    expect(page.locator('canvas[data-layer="2"][data-unit="1"]:not([data-output])')).to_have_attribute(
        "data-painted", re.compile(r"\d+")
    )
    assert epoch(page) >= before
    # Links follow the new architecture: 2×5 + 5×2 + 2×2 + 2×1 weights.
    expect(page.locator("svg.links path.hit")).to_have_count(2 * 5 + 5 * 2 + 2 * 2 + 2 * 1)
    assert [layer["units"] for layer in state(base_url, sid)["spec"]["network"]["hidden"]] == [5, 2, 2]


def test_clicking_a_link_edits_its_weight(page: Page, base_url: str) -> None:
    sid = open_page(page)
    before = pixels(page)
    link = page.locator('svg.links path.hit[data-layer="2"][data-row="0"][data-col="0"]')
    link.click()
    expect(page.locator("#weight-editor")).to_be_visible()
    page.fill("#weight-value", "")  # not a number: the server's refusal shows in the editor
    page.press("#weight-value", "Enter")
    expect(page.locator("#weight-error")).to_have_text("type a number, e.g. −1.5")
    page.fill("#weight-value", "-8")
    page.press("#weight-value", "Enter")
    expect(page.locator("#weight-editor")).to_be_hidden()
    page.wait_for_function("before => document.getElementById('output-map').toDataURL() !== before", arg=before)
    assert state(base_url, sid, "/weights")["layers"][2]["w"][0][0] == -8
    # A bias: the output's, by keyboard this time.
    page.focus('button.bias[data-layer="2"][data-unit="0"]')
    page.keyboard.press("Enter")
    page.fill("#weight-value", "0.5")
    page.press("#weight-value", "Enter")
    expect(page.locator("#weight-editor")).to_be_hidden()
    assert state(base_url, sid, "/weights")["layers"][2]["b"] == [0.5]


def test_clicking_the_map_adds_a_point_of_the_chosen_class(page: Page, base_url: str) -> None:
    sid = open_page(page)
    page.check("#add-class-0")
    page.click("#output-map", position={"x": 20, "y": 20})
    expect(page.locator("#points-form .added")).to_have_text("1 added")
    ((x1, x2, label),) = state(base_url, sid)["spec"]["dataset"]["added"]
    assert x1 < -4 and x2 > 4 and label == 0
    assert spec_in_url(page)["dataset"]["added"] == [[x1, x2, label]]
    expect(page.locator("#add-class-0")).to_be_checked()  # the chosen class stays chosen


def test_a_copied_url_reopens_the_same_experiment(page: Page, chromium: Browser, base_url: str) -> None:
    sid = open_page(page)
    page.click('label[for="dataset-xor"]')
    expect(page.locator("#dataset-xor")).to_be_checked()
    page.fill("#lr", "0.3")
    page.press("#lr", "Tab")
    expect(page.locator("#lr")).to_have_value("0.3")
    page.click("#add-unit-1")
    expect(page.locator('canvas[data-layer="1"]:not([data-output])')).to_have_count(3)
    with page.expect_response(lambda r: r.url.endswith("/run/reset")):
        page.click("#reset-btn")  # fresh weights from the seed: what a new session from the link starts with
    url = page.url
    other = chromium.new_page()
    try:
        sid2 = open_page(other, url)
        assert sid2 != sid
        first, second = state(base_url, sid), state(base_url, sid2)
        assert second["spec"] == first["spec"]
        assert second["spec"]["dataset"]["name"] == "xor"
        assert second["spec"]["network"]["hidden"][1]["units"] == 3
        assert state(base_url, sid2, "/weights")["layers"] == state(base_url, sid, "/weights")["layers"]
        assert state(base_url, sid2, "/data") == {**state(base_url, sid, "/data"), "spec_version": 0}
        expect(other.locator("#lr")).to_have_value("0.3")
    finally:
        other.close()


def test_a_broken_link_shows_why_and_opens_the_defaults(page: Page) -> None:
    open_page(page, "/?spec=eyJ0cmFpbmluZyI6eyJsZWFybmluZ19yYXRlIjo1MH19")  # {"training":{"learning_rate":50}}
    expect(page.locator("#link-error")).to_contain_text("learning rate can be at most 10")
    expect(page.locator("#lr")).to_have_value("0.03")


def test_a_watcher_follows_live_and_cannot_control(page: Page, chromium: Browser, base_url: str) -> None:
    sid = open_page(page)
    viewer_context = chromium.new_context(viewport={"width": 1366, "height": 900})  # another person's browser
    viewer = viewer_context.new_page()
    keep_sockets(viewer)
    try:
        viewer.goto(page.locator("#share-link").get_attribute("href").replace("/", f"{base_url}/", 1))
        viewer.wait_for_selector("#output-map[data-painted]")
        expect(viewer.locator("#watch-badge")).to_have_text("watching — read only")
        for control in ("#play-btn", "#step-btn", "#reset-btn", "#lr", "#add-layer", "#dataset-xor", "#csv-file"):
            expect(viewer.locator(control)).to_be_disabled()
        press_play(page)
        wait_epoch_above(viewer, 30)
        # The presenter changes the architecture: the watcher's diagram follows.
        page.click("#add-unit-0")
        expect(viewer.locator('canvas[data-layer="0"]:not([data-output])')).to_have_count(5)
        expect(viewer.locator("#add-unit-0")).to_be_disabled()
        # A control message forced through the watcher's socket is refused, in words, and changes nothing.
        send_raw(viewer, json.dumps({"action": "pause"}))
        expect(viewer.locator("#stream-error")).to_contain_text("read-only")
        assert state(base_url, sid)["status"] == "running"
        # Nor can the watcher's browser use the forms.
        r = viewer.request.post(f"{base_url}/ui/sessions/{sid}/run/pause")
        assert r.status == 403
    finally:
        viewer_context.close()


def test_a_bad_csv_shows_its_error_beside_the_upload(page: Page, base_url: str) -> None:
    sid = open_page(page)
    bad = b"x1,x2,label\n1.0,2.0,0\n3.0,oops,1\n"
    page.set_input_files("#csv-file", files=[{"name": "mine.csv", "mimeType": "text/csv", "buffer": bad}])
    error = page.locator("#csv-form #csv-error")
    expect(error).to_contain_text("line 3")
    expect(error).to_contain_text("'oops' is not a number")
    assert state(base_url, sid)["spec"]["dataset"]["name"] == "circle"
    good = b"x1,x2,label\n1,1,1\n-1,-1,0\n2,2,1\n-2,-2,0\n"
    page.set_input_files("#csv-file", files=[{"name": "mine.csv", "mimeType": "text/csv", "buffer": good}])
    expect(page.locator("#dataset-custom")).to_be_checked()
    assert state(base_url, sid)["spec"]["dataset"]["points"] == [[1, 1, 1], [-1, -1, 0], [2, 2, 1], [-2, -2, 0]]


def test_screenshots_of_the_running_page(page: Page, artifacts: Path) -> None:
    open_page(page)
    page.click('label[for="feature-x1_sq"]')
    expect(page.locator("#feature-x1_sq")).to_be_checked()
    press_play(page)
    wait_epoch_above(page, 300)
    page.locator('canvas[data-layer="0"][data-unit="0"]').hover()  # a neuron's map, large on the output
    expect(page.locator("#map-caption")).to_contain_text("neuron 1 of hidden layer 1")
    page.mouse.move(0, 0)
    page.screenshot(path=artifacts / "page-desktop.png")
    page.screenshot(path=artifacts / "page-desktop-full.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)  # let the diagram re-lay its links for the new width (no event says when)
    page.screenshot(path=artifacts / "page-phone.png")
    page.screenshot(path=artifacts / "page-phone-full.png", full_page=True)
    for name in ("page-desktop.png", "page-phone.png"):
        assert (artifacts / name).stat().st_size > 10_000
