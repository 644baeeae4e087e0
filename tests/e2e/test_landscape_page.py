"""The "inside the optimization" panel in a real browser: the loss landscape draws and follows training, the
gradient-health table diagnoses a vanishing gradient, and its one-click fix applies without a reset."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

EPOCH = "+document.getElementById('epoch').value.replace(/,/g, '')"
DEEP_SIGMOID = {
    "dataset": {"name": "circle"},
    "network": {"hidden": [{"units": 8, "activation": "sigmoid"}] * 6, "init": "normal"},
}


def open_spec(page: Page, spec: dict) -> str:
    text = base64.urlsafe_b64encode(json.dumps(spec).encode()).decode().rstrip("=")
    page.goto(f"/?spec={text}")
    page.wait_for_selector("#output-map[data-painted]")
    return page.locator("body").get_attribute("data-session")


def test_the_landscape_panel_draws_and_follows_training(page: Page, base_url: str, artifacts: Path) -> None:
    open_spec(page, {"dataset": {"name": "xor"}, "network": {"hidden": [{"units": 6, "activation": "relu"}] * 2}})
    expect(page.locator("#optimization")).to_be_hidden()
    page.click("#landscape-tab")
    expect(page.locator("#landscape-tab")).to_have_attribute("aria-expanded", "true")
    canvas = page.locator("#landscape")
    expect(canvas).to_have_attribute("data-resolution", "51")  # paused: the fine slice
    expect(page.locator("#ls-caption")).to_contain_text("epoch 0: loss")
    first = canvas.evaluate("c => c.toDataURL()")
    page.click("#play-btn")
    expect(canvas).to_have_attribute("data-resolution", "31")  # training: the live, coarser slice
    page.wait_for_function("+document.getElementById('landscape').dataset.epoch > 50", timeout=60_000)
    seen = canvas.get_attribute("data-epoch")  # and it keeps following while training goes on
    page.wait_for_function("e => document.getElementById('landscape').dataset.epoch !== e", arg=seen)
    assert canvas.evaluate("c => c.toDataURL()") != first
    expect(page.locator("#ls-caption")).to_contain_text("off this plane")  # the path's honesty
    page.click("#play-btn")  # pause: the fine slice again, at the final weights
    expect(canvas).to_have_attribute("data-resolution", "51", timeout=30_000)
    # Other directions: PCA of the path says how much of the movement its plane holds.
    page.select_option("#ls-directions", "pca")
    expect(canvas).to_have_attribute("data-directions", "pca")
    expect(page.locator("#ls-caption")).to_contain_text(re.compile(r"explain \d+ %"))
    expect(page.locator("#sharp-note")).to_contain_text("2 / learning rate")
    expect(page.locator("#gradients table.health tbody tr")).to_have_count(3)
    # The race: three copies from these weights, their paths on one plane, their loss curves.
    page.fill("#race-epochs", "40")
    page.click("#race-btn")
    expect(page.locator("#race-plane")).to_have_attribute("data-runs", "3", timeout=60_000)
    expect(page.locator("#race-note")).to_contain_text("sgd (learning rate 0.03): loss")
    page.select_option("#race-center", "2")
    page.click("#race-btn")
    expect(page.locator("#race-note")).to_contain_text("centred on adam", timeout=60_000)
    page.locator("#optimization").screenshot(path=artifacts / "landscape-desktop.png")
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#optimization").screenshot(path=artifacts / "landscape-phone.png")


def test_a_vanishing_gradient_is_diagnosed_and_its_fix_applies_without_reset(page: Page, base_url: str) -> None:
    open_spec(page, DEEP_SIGMOID)
    expect(page.locator("#grad-note")).to_contain_text("layer 1 gets 10")  # every frame's diagnosis
    page.click("#landscape-tab")
    finding = page.locator('#findings .finding[data-kind="vanishing"]')
    expect(finding).to_contain_text("layer 1 gets 10")
    page.click("#step-btn")
    page.wait_for_function(f"{EPOCH} >= 1", timeout=60_000)
    sid = page.locator("body").get_attribute("data-session")  # the session exists once the visitor acted
    before = httpx.get(f"{base_url}/api/v1/sessions/{sid}").json()["epoch"]
    finding.locator("button.fix", has_text="activation relu").click()
    expect(page.locator("#change-note")).to_contain_text("without a reset")
    spec = httpx.get(f"{base_url}/api/v1/sessions/{sid}").json()
    assert [layer["activation"] for layer in spec["spec"]["network"]["hidden"]] == ["relu"] * 6
    assert spec["epoch"] == before and spec["spec"]["network"]["init"] == "he"
    expect(page.locator("#gradients tbody tr").first).to_contain_text("relu")  # the table follows the fix


DEEP_SIGMOID_CNN = {
    "dataset": {"name": "digits", "n": 200},
    "network": {
        "kind": "cnn",
        "layers": [
            *[{"type": "conv", "filters": 2, "kernel": 3, "activation": "sigmoid"}] * 4,
            {"type": "flatten"},
        ],
    },
}


def test_the_cnn_page_has_the_landscape_panel_and_its_fixes(page: Page, base_url: str, artifacts: Path) -> None:
    text = base64.urlsafe_b64encode(json.dumps(DEEP_SIGMOID_CNN).encode()).decode().rstrip("=")
    page.goto(f"/?spec={text}")
    page.wait_for_selector("#filters canvas")
    expect(page.locator("#grad-note")).to_contain_text("layer 1 gets 10")  # every CNN frame's diagnosis too
    page.click("#landscape-tab")
    canvas = page.locator("#landscape")
    expect(canvas).to_have_attribute("data-resolution", "21", timeout=60_000)  # a CNN's fine slice: coarser
    expect(page.locator("#ls-caption")).to_contain_text("epoch 0: loss")
    expect(page.locator("#gradients table.health tbody tr")).to_have_count(5)  # four convs and the head
    finding = page.locator('#findings .finding[data-kind="vanishing"]')
    expect(finding).to_contain_text("layer 1 gets 10")
    page.click("#step-btn")
    page.wait_for_function(f"{EPOCH} >= 1", timeout=60_000)
    sid = page.locator("body").get_attribute("data-session")
    before = httpx.get(f"{base_url}/api/v1/sessions/{sid}").json()["epoch"]
    finding.locator("button.fix", has_text="relu").first.click()
    expect(page.locator("#change-note")).to_contain_text("without a reset")
    spec = httpx.get(f"{base_url}/api/v1/sessions/{sid}").json()
    convs = [layer for layer in spec["spec"]["network"]["layers"] if layer["type"] == "conv"]
    assert [layer["activation"] for layer in convs] == ["relu"] * 4 and spec["epoch"] == before
    expect(page.locator("#gradients tbody tr").first).to_contain_text("relu")  # the table follows the fix
    page.click("#play-btn")
    expect(canvas).to_have_attribute("data-resolution", "11", timeout=60_000)  # training: the live slice
    page.wait_for_function("+document.getElementById('landscape').dataset.epoch > 0", timeout=60_000)
    page.click("#play-btn")
    page.locator("#optimization").screenshot(path=artifacts / "landscape-cnn-desktop.png")


def test_the_first_slice_says_it_is_computing_until_it_arrives(page: Page) -> None:
    # a network of its own shape: its landscape program is compiled for the first time here
    open_spec(page, {"dataset": {"name": "moons"}, "network": {"hidden": [{"units": 5, "activation": "tanh"}] * 3}})
    page.click("#landscape-tab")
    caption = page.locator("#ls-caption")
    expect(caption).to_contain_text("computing the loss on a 51×51 plane", timeout=500)
    expect(caption).to_have_class(re.compile(r"\bbusy\b"), timeout=500)
    expect(page.locator("#landscape")).to_have_attribute("data-state", "computing", timeout=500)
    expect(page.locator("#path-note")).to_contain_text("computing", timeout=500)
    # the slice arrives: the picture and its sentence replace the waiting
    expect(page.locator("#landscape")).to_have_attribute("data-state", "drawn", timeout=60_000)
    expect(caption).to_contain_text("epoch 0: loss")
    expect(caption).not_to_have_class(re.compile(r"\bbusy\b"))
    expect(page.locator("#path-note")).to_have_text("")
    expect(page.locator("#sharp-note")).to_contain_text("2 / learning rate", timeout=60_000)
    expect(page.locator("#line-note")).to_have_text("")


def refuse_landscape_watch(ws) -> None:
    """Pass the page's socket through to the server, but answer its ``watch_landscape`` with a refusal."""
    server = ws.connect_to_server()

    def from_page(message) -> None:
        msg = json.loads(message) if isinstance(message, str) else {}
        if msg.get("action") == "watch_landscape" and msg.get("open"):
            ws.send(json.dumps({"type": "error", "ref": msg["ref"], "message": "span must be > 0"}))
        else:
            server.send(message)

    ws.on_message(from_page)
    server.on_message(ws.send)


def test_a_landscape_the_socket_cannot_compute_says_why(page: Page) -> None:
    page.route_web_socket(re.compile(r"/ws/sessions/"), refuse_landscape_watch)
    open_spec(page, {"dataset": {"name": "xor"}})
    refusal = {"detail": [{"msg": "span must be > 0"}]}  # the server refuses the same settings over HTTP too
    page.route("**/landscape?*", lambda route: route.fulfill(status=422, json=refusal))
    page.click("#landscape-tab")
    caption = page.locator("#ls-caption")
    expect(caption).to_contain_text("the loss landscape could not be computed: span must be > 0")
    expect(caption).to_have_class(re.compile(r"\berror\b"))


def no_socket(ws) -> None:
    ws.close(code=1011, reason="refused by the test")


def test_a_landscape_http_cannot_compute_says_why(page: Page) -> None:
    # without a socket the panel asks the REST views: their refusal is said the same way
    page.route_web_socket(re.compile(r"/ws/sessions/"), no_socket)
    open_spec(page, {"dataset": {"name": "xor"}})
    refusal = {"detail": [{"msg": "span must be > 0"}]}
    page.route("**/landscape?*", lambda route: route.fulfill(status=422, json=refusal))
    page.click("#landscape-tab")
    caption = page.locator("#ls-caption")
    expect(caption).to_contain_text("the loss landscape could not be computed: span must be > 0")
    expect(caption).to_have_class(re.compile(r"\berror\b"))


# The slice canvas's colours, sampled on a grid: how many distinct ones, and the share of the commonest.
COLOURS = """c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const seen = new Map();
  let n = 0;
  for (let y = 4; y < c.height; y += 8) for (let x = 4; x < c.width; x += 8, n++) {
    const k = (y * c.width + x) * 4;
    const key = `${d[k] >> 3},${d[k + 1] >> 3},${d[k + 2] >> 3}`;
    seen.set(key, (seen.get(key) || 0) + 1);
  }
  return {distinct: seen.size, commonest: Math.max(...seen.values()) / n};
}"""


def test_a_slice_over_many_decades_is_coloured_on_a_log_scale(page: Page) -> None:
    page.route_web_socket(re.compile(r"/ws/sessions/"), no_socket)  # the slice from the REST view, rewritten
    open_spec(page, {"dataset": {"name": "xor"}})

    def many_decades(route) -> None:  # the real slice, its losses replaced by 1e-13 … 1 across the plane
        response = route.fetch()
        body = response.json()
        n = len(body["loss"])
        body["loss"] = [[10 ** (-13 + 13 * (i + j) / (2 * (n - 1))) for j in range(n)] for i in range(n)]
        route.fulfill(response=response, json=body)

    page.route("**/landscape?*", many_decades)
    page.click("#landscape-tab")
    canvas = page.locator("#landscape")
    expect(canvas).to_have_attribute("data-state", "drawn", timeout=60_000)
    toggle = page.locator("#ls-log")
    expect(toggle).to_be_checked()  # chosen by itself: the losses span 13 decades
    expect(page.locator("#ls-ticks")).to_have_attribute("data-scale", "log")
    ticks = page.locator("#ls-ticks span").all_inner_texts()
    assert len(ticks) == 5 and ticks[0] == "1.0e-13", ticks  # the legend's values, the lowest at the bottom
    log = canvas.evaluate(COLOURS)
    assert log["distinct"] > 20 and log["commonest"] < 0.2, log
    expect(page.locator("#ls-caption")).to_contain_text("log scale")
    page.get_by_label("log colour scale").uncheck()  # back to linear: the tiny losses are all one colour
    expect(page.locator("#ls-ticks")).to_have_attribute("data-scale", "linear")
    linear = canvas.evaluate(COLOURS)
    assert linear["commonest"] > 0.6, linear  # most of the plane is one colour
    expect(page.locator("#ls-caption")).to_contain_text("linear scale")
    expect(page.locator("#ls-ticks span").first).to_have_text("1.0e-13")


def test_a_slice_within_two_decades_stays_linear(page: Page) -> None:
    open_spec(page, {"dataset": {"name": "xor"}})

    def narrow(route) -> None:
        response = route.fetch()
        body = response.json()
        n = len(body["loss"])
        body["loss"] = [[0.5 + (i + j) / (2 * (n - 1)) for j in range(n)] for i in range(n)]
        route.fulfill(response=response, json=body)

    page.route("**/landscape?*", narrow)
    page.click("#landscape-tab")
    expect(page.locator("#landscape")).to_have_attribute("data-state", "drawn", timeout=60_000)
    expect(page.locator("#ls-log")).not_to_be_checked()
    expect(page.locator("#ls-ticks")).to_have_attribute("data-scale", "linear")
    assert page.locator("#landscape").evaluate(COLOURS)["distinct"] > 20
