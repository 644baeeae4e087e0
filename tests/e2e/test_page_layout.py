"""The playground's layout with small and wide networks: every neuron and the metrics in view, nothing cut off."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.e2e

ALL_FEATURES = ["x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2"]
TEN_LAYERS = {"features": ALL_FEATURES, "network": {"hidden": [{"units": 8, "activation": "tanh"}] * 10}}
NETS = {
    "default": "/",
    "spiral 6x8": "/presets/spiral-deep",
    "10 layers": "/?spec=" + base64.urlsafe_b64encode(json.dumps(TEN_LAYERS).encode()).decode().rstrip("="),
}

# Each neuron canvas's box against the network panel's visible box (the wrap's client box), the metrics table's box
# against its panel and the viewport, and the page's own horizontal overflow.
MEASURE = """() => {
  const wrap = document.getElementById('network-wrap');
  const w = wrap.getBoundingClientRect();
  const visible = {left: w.left + wrap.clientLeft, right: w.left + wrap.clientLeft + wrap.clientWidth};
  const cut = [...document.querySelectorAll('#network-form canvas.map')]
    .map((c) => c.getBoundingClientRect())
    .filter((r) => r.width === 0 || r.left < visible.left - 0.5 || r.right > visible.right + 0.5).length;
  const m = document.querySelector('.output-col .metrics').getBoundingClientRect();
  const out = document.querySelector('.output-col').getBoundingClientRect();
  const note = document.querySelector('#network-form .scroll-note');
  return {
    canvases: document.querySelectorAll('#network-form canvas.map').length,
    cut,
    scrolls: wrap.scrollWidth > wrap.clientWidth + 1,
    note: note !== null && !note.hidden && note.getBoundingClientRect().width > 0,
    metrics: {left: m.left, right: m.right, width: m.width},
    outputPanel: {left: out.left, right: out.right},
    pageWidth: document.scrollingElement.scrollWidth,
    viewport: innerWidth,
  };
}"""


@pytest.fixture(params=[(1366, 900), (390, 844)], ids=["1366x900", "390x844"])
def sized(request: pytest.FixtureRequest, chromium: Browser, base_url: str) -> Iterator[Page]:
    width, height = request.param
    context = chromium.new_context(base_url=base_url, viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


@pytest.mark.parametrize("net", list(NETS))
def test_every_neuron_and_the_metrics_are_in_view(sized: Page, net: str) -> None:
    sized.goto(NETS[net])
    sized.wait_for_selector("#output-map[data-painted]")
    sized.wait_for_timeout(300)  # the diagram fits itself to the panel on the next layout
    got = sized.evaluate(MEASURE)
    wide = sized.viewport_size["width"] >= 1000
    assert got["canvases"] >= 10
    assert got["pageWidth"] <= got["viewport"], f"the page scrolls sideways: {got}"
    m, panel = got["metrics"], got["outputPanel"]
    assert m["width"] > 0 and m["left"] >= panel["left"] and m["right"] <= panel["right"] + 0.5, got
    assert m["right"] <= got["viewport"], got
    if wide or not got["scrolls"]:
        assert got["cut"] == 0, f"{got['cut']} neuron maps cut off by the network panel: {got}"
        assert not got["scrolls"], f"the network panel scrolls sideways: {got}"
        assert not got["note"], "a note asks to scroll a network that fits"
    else:
        # on a phone a very wide network may scroll inside its panel, but says so
        assert got["note"], f"the network is cut off on a phone without saying it scrolls: {got}"


def test_the_wide_network_grows_back_when_layers_are_removed(page: Page) -> None:
    page.goto(NETS["10 layers"])
    page.wait_for_selector("#output-map[data-painted]")
    small = page.eval_on_selector("#network-form canvas[data-layer='0']", "c => c.getBoundingClientRect().width")
    for _ in range(8):
        count = page.locator(".layers-count").inner_text()
        page.click("#remove-layer")
        page.wait_for_function("t => document.querySelector('.layers-count').textContent !== t", arg=count)
    page.wait_for_timeout(300)
    big = page.eval_on_selector("#network-form canvas[data-layer='0']", "c => c.getBoundingClientRect().width")
    assert big > small * 1.3, (small, big)
    assert page.evaluate(MEASURE)["cut"] == 0
