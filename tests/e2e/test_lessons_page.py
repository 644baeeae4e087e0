"""The lessons in a real browser: the gallery opens a lesson whose text sits beside the playground (above it on a
phone) without covering a panel; show why opens and closes; a variant changes the controls and the network;
play trains; start over brings the lesson's settings back at epoch 0; the top bar's menu works by keyboard; the
outlined panels are outlined whole (no clipping ancestor cuts the outline off). Two lessons are followed to what
their text says: the landscape lesson's path runs downhill on the PCA slice and small batches end in a far flatter
minimum; the vanishing-gradients lesson's first layer gets almost nothing until ReLU and He init."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from server.lessons import LESSONS
from server.routes.lessons import PANEL_SELECTORS
from tests.e2e.lazy import started

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


# The highlighted elements whose outline an ancestor cuts off (an ancestor that clips its overflow, smaller than the
# element with its outline around it): each as its id or class and the clipping ancestor's.
CLIPPED = """() => {
  const out = [];
  for (const el of document.querySelectorAll(".lesson-highlight")) {
    const css = getComputedStyle(el);
    const reach = parseFloat(css.outlineWidth) + parseFloat(css.outlineOffset);
    const r = el.getBoundingClientRect();
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.overflowX === "visible" && s.overflowY === "visible") continue;
      const b = a.getBoundingClientRect();
      const cut = r.left - reach < b.left - 1 || r.right + reach > b.right + 1;
      if (cut || r.top - reach < b.top - 1 || r.bottom + reach > b.bottom + 1) {
        out.push(`${el.id || el.className} in ${a.id || a.className}`);
      }
    }
  }
  return out;
}"""


def _outlined_panels_exist(page: Page, kind: str) -> None:
    for key, selector in PANEL_SELECTORS[kind].items():
        assert page.locator(selector).count() > 0, f"the {kind} page has nothing for the panel {key!r} ({selector})"
    lesson = LESSONS[page.locator("#lesson-aside").get_attribute("data-slug")]
    for key in lesson.panels:
        expect(page.locator(PANEL_SELECTORS[kind][key]).first).to_have_class(re.compile(r"\blesson-highlight\b"))
    assert page.evaluate(CLIPPED) == [], "an outline is cut off"


def _spec(base_url: str, page: Page) -> dict:
    sid = started(page)
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
        arg=f"/api/v1/sessions/{started(page)}",
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


# ------------------------------------------------------------------------------- the landscape lesson

# The colour of one pixel of the slice's canvas.
PIXEL = "([x, y]) => [...document.getElementById('landscape').getContext('2d').getImageData(x, y, 1, 1).data]"
SHARPNESS = re.compile(r"top eigenvalue (\S+); plain gradient descent is stable below 2 / learning rate = ([\d.e+-]+)")


def _train_and_pause(page: Page, base_url: str, above: int) -> int:
    """Play until the counter passes `above` epochs, pause; the session's epoch once it has stopped."""
    page.click("#play-btn")
    expect(page.locator("#run-buttons")).to_have_attribute("data-status", "running")
    page.wait_for_function(f"n => {EPOCH} > n", arg=above, timeout=120_000)
    page.click("#play-btn")
    expect(page.locator("#run-buttons")).to_have_attribute("data-status", "paused")
    sid = started(page)
    return httpx.get(f"{base_url}/api/v1/sessions/{sid}").json()["epoch"]


def _open_pca_slice(page: Page, base_url: str, open_it) -> dict:
    """Open the landscape panel with `open_it` (it shows the PCA directions); once the page has drawn the PCA
    slice (it comes on the session's socket), the same slice as the REST view answers it."""
    open_it()
    canvas = page.locator("#landscape")
    expect(canvas).to_have_attribute("data-directions", "pca", timeout=120_000)
    expect(canvas).to_have_attribute("data-state", "drawn", timeout=120_000)
    sid = started(page)
    query = {"directions": "pca", "resolution": canvas.get_attribute("data-resolution")}
    out = httpx.get(f"{base_url}/api/v1/sessions/{sid}/landscape", params=query, timeout=120).json()
    expect(canvas).to_have_attribute("data-epoch", str(out["epoch"]))
    return out


def _path_runs_downhill_on_the_slice(page: Page, out: dict) -> None:
    """The path the page drew: from a start high up down into the valley at the centre, and it stays there.
    Judged as a whole (steps at the rate 1.0 bounce from one epoch to the next, and where a run pauses varies):
    never back up to the start's height, its second half far lower than its first, its last tenth all low."""
    path = out["trajectory"]
    loss = path["true_loss"]
    n = len(loss)
    assert n >= 10 and path["epochs"][-1] == out["epoch"], path["epochs"]
    assert loss[-1] < 0.1 * loss[0], (loss[0], loss[-1])
    assert max(loss[n // 10 :]) < loss[0], loss
    assert statistics.median(loss[n // 2 :]) < 0.5 * statistics.median(loss[: n // 2]), loss
    assert max(loss[-(n // 10) :]) < 0.1 * loss[0], loss
    assert path["plane_loss"][-1] < path["plane_loss"][0], "on the slice the path does not end lower than it starts"
    caption = page.locator("#ls-caption")
    expect(caption).to_contain_text("the path (white, from ○)")
    expect(caption).to_contain_text(re.compile(r"the two PCA directions explain \d+ %"))
    here = float(re.search(r"loss (\S+) here", caption.inner_text()).group(1))
    assert here == pytest.approx(out["center_loss"], rel=1e-3) and here < 0.1 * loss[0]
    # on the canvas: the path's start disc, white, away from the current weights' disc at the centre
    span, size = out["span"], 320
    x = round((path["alpha"][0] + span) / (2 * span) * size)
    y = round(size - (path["beta"][0] + span) / (2 * span) * size)
    assert 0 <= x < size and 0 <= y < size, "the path starts off the slice"
    assert abs(x - size / 2) + abs(y - size / 2) > 12, "the path starts where it ends"
    assert min(page.evaluate(PIXEL, [x, y])[:3]) > 240, "no white start disc where the path starts"
    assert min(page.evaluate(PIXEL, [size // 2, size // 2])[:3]) > 240, "no white disc at the current weights"


def _sharpness(page: Page, before: str = "") -> tuple[float, float]:
    """The top eigenvalue and 2 / learning rate the sharpness note says, once it says something new."""
    page.wait_for_function(
        "before => { const t = document.getElementById('sharp-note').textContent;"
        " return t !== before && t.startsWith('top eigenvalue'); }",
        arg=before,
        timeout=120_000,
    )
    top, limit = SHARPNESS.search(page.locator("#sharp-note").inner_text()).groups()
    return float(top), float(limit)


def test_the_landscape_lesson_path_runs_downhill_and_small_batches_end_flatter(
    page: Page, base_url: str, artifacts: Path
) -> None:
    page.goto("/lessons/loss-landscape")
    page.wait_for_selector("#output-map[data-painted]")
    expect(page.locator("#lesson-h")).to_have_text(LESSONS["loss-landscape"].title)
    _outlined_panels_exist(page, "mlp")  # the landscape tab, the loss chart and the settings
    expect(page.locator("#optimization")).to_be_hidden()
    _layout(page, 1366)

    # whole batches: play a few seconds, pause, open the landscape with the PCA directions
    first = _train_and_pause(page, base_url, 200)
    page.screenshot(path=str(artifacts / "lesson-landscape-1366.png"))
    page.click("#landscape-tab")
    expect(page.locator("#optimization")).to_be_visible()
    out = _open_pca_slice(page, base_url, lambda: page.select_option("#ls-directions", "pca"))
    assert out["epoch"] == first
    _path_runs_downhill_on_the_slice(page, out)
    whole, limit = _sharpness(page)
    assert limit == pytest.approx(2.0)  # 2 / learning rate 1.0
    page.locator("#optimization").screenshot(path=str(artifacts / "lesson-landscape-panel-1366.png"))

    # small batches, from fresh weights: the same path downhill, into a far flatter minimum
    said = page.locator("#sharp-note").inner_text()
    page.click("#landscape-tab")
    expect(page.locator("#optimization")).to_be_hidden()
    page.get_by_role("button", name="try: small batches").click()
    expect(page.locator("#lr")).to_have_value("0.1")
    page.wait_for_function(f"() => {EPOCH} === 0")
    spec = _spec(base_url, page)
    assert (spec["training"]["batch_size"], spec["training"]["learning_rate"]) == (1, 0.1)
    second = _train_and_pause(page, base_url, 200)
    out = _open_pca_slice(page, base_url, lambda: page.click("#landscape-tab"))
    assert out["epoch"] == second
    _path_runs_downhill_on_the_slice(page, out)
    small, limit = _sharpness(page, said)
    assert limit == pytest.approx(20.0)  # 2 / learning rate 0.1
    assert small < 0.1 * whole, (small, whole)


# ------------------------------------------------------------------------------- the vanishing-gradients lesson


def _grad_norms(page: Page) -> list[float]:
    """The gradient norms the gradients panel draws, per layer, the output's last (its label spells them out)."""
    label = page.locator("#grad-strip").get_attribute("aria-label")
    return [float(v) for v in label.removeprefix("gradient norm per layer: ").split(", ")]


def _train_loss(base_url: str, page: Page) -> float:
    sid = started(page)
    return httpx.get(f"{base_url}/api/v1/sessions/{sid}").json()["metrics"]["train_loss"]


def test_the_vanishing_gradients_lesson_starves_the_first_layer_until_relu_and_he(page: Page, base_url: str) -> None:
    page.goto("/lessons/vanishing-gradients")
    page.wait_for_selector("#output-map[data-painted]")
    _outlined_panels_exist(page, "mlp")  # the gradients panel, the loss chart and the network
    start = _train_loss(base_url, page)
    _train_and_pause(page, base_url, 100)
    norms = _grad_norms(page)
    assert len(norms) == 7, norms  # six sigmoid layers and the output
    assert 0 < norms[0] < 1e-4 * norms[-1], norms  # "many powers of ten shorter" than the last one's bar
    assert all(a <= b for a, b in zip(norms, norms[1:], strict=False)), norms  # shrinking on its way back
    note = page.locator("#grad-note")
    expect(note).to_have_class(re.compile(r"\bwarn\b"))
    expect(note).to_contain_text("layer 1 gets 10")
    assert abs(_train_loss(base_url, page) - start) < 0.01  # the loss stays flat: the network learns nothing

    page.get_by_role("button", name="try: ReLU + He init").click()
    page.wait_for_function(f"() => {EPOCH} === 0")
    assert all(layer["activation"] == "relu" for layer in _spec(base_url, page)["network"]["hidden"])
    fresh = _train_loss(base_url, page)
    _train_and_pause(page, base_url, 100)
    norms = _grad_norms(page)
    assert min(norms) > 0.01 * max(norms), norms  # the gradient arrives whole: every bar within two decades
    expect(note).to_have_text("the gradient reaches every layer (no sign of vanishing).")
    expect(note).not_to_have_class(re.compile(r"\bwarn\b"))
    assert _train_loss(base_url, page) < 0.6 * fresh  # and the network learns


def test_the_double_descent_lesson_runs_its_sweep_and_shows_the_curve(page: Page, base_url: str) -> None:
    """Lesson 16: "run the sweep" starts the lesson's 64 networks and opens the sweep's page, where the final
    test loss against the width (the chart's first choice) climbs to a peak inside the range of widths and
    falls again."""
    page.set_default_timeout(30_000)
    page.goto(f"{base_url}/lessons/double-descent")
    expect(page.locator("#lesson-h")).to_contain_text("Double descent")
    button = page.locator("#lesson-run-sweep")
    expect(button).to_have_text("run the sweep (8 × 8 networks)")
    button.click()
    page.wait_for_url(re.compile(r"/sweeps/[\w-]+$"))
    page.wait_for_function("() => document.body.dataset.sweepStatus === 'done'", timeout=180_000)
    expect(page.locator("#sweep-counts")).to_have_text("64 done")
    expect(page.locator("#chart-x")).to_have_value("network.hidden")
    expect(page.locator("#sweep-grid .tile")).to_have_count(64)
    sweep = httpx.get(f"{base_url}/api/v1/sweeps/{page.url.rsplit('/', 1)[1]}", params={"history": False}).json()
    assert sweep["request"]["grid"] == LESSONS["double-descent"].sweep["grid"]
    by_width: dict[int, list[float]] = {}
    for c in sweep["configurations"]:
        by_width.setdefault(c["params"]["network.hidden"][0], []).append(c["final"]["test_loss"])
    curve = [statistics.mean(v) for _, v in sorted(by_width.items())]
    peak = curve.index(max(curve))
    assert 0 < peak < len(curve) - 1 and curve[peak] > 1.3 * curve[0] and curve[-1] < 0.75 * curve[peak], curve
