"""The sweeps page in a real browser: a sweep started from the form (learning rate 3 values × weight seed 2,
200 epochs) trains to the end with its progress bar, small decision maps appear, the table sorts, a
parallel-coordinates axis brushed filters the lines, rows and tiles, hovering highlights one configuration
everywhere, a configuration opens as a session at epoch 200 with its learning rate; the form fills ranges,
counts and says what the server refused beside the field; the page fits a phone; the axe audit passes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.lazy import started
from tests.e2e.test_accessibility import _violations

pytestmark = pytest.mark.e2e

RATES = [0.003, 0.03, 0.3]
SWEEP_TIMEOUT = 120_000  # the first sweep compiles its vmapped program (10-20 s on a busy 2-core machine)
EPOCH = "+document.getElementById('epoch').value.replace(/,/g, '')"


def fill_form(page: Page, rates: str, seeds: str, epochs: str) -> None:
    """The form with learning rate and weight seed swept."""
    page.goto("/sweeps")
    page.fill("#training-learning_rate-values", rates)
    page.select_option("#add-field", "seed")
    page.click("#add-field-btn")
    page.fill("#seed-values", seeds)
    page.fill("#sweep-epochs", epochs)


@pytest.fixture(scope="module")
def watched(chromium: Browser, base_url: str) -> Iterator[dict[str, Any]]:
    """A sweep started from the form and watched until it is done; what the page showed on the way."""
    context = chromium.new_context(base_url=base_url, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    fill_form(page, "0.003, 0.03, 0.3", "0, 1", "200")
    expect(page.locator("#sweep-count")).to_have_text("6 configurations × 200 epochs")
    page.click("#start-sweep")
    page.wait_for_url(re.compile(r"/sweeps/[\w-]+$"))
    expect(page.locator("#sweep-form-section")).to_be_hidden()
    fractions = []
    while page.get_attribute("body", "data-sweep-status") != "done":
        fractions.append(float(page.eval_on_selector("#sweep-progress", "p => p.value")))
        page.wait_for_timeout(200)
        assert len(fractions) < SWEEP_TIMEOUT / 200, "the sweep did not finish"
    page.wait_for_selector("#sweep-table tbody tr[data-status='done']")
    yield {"page": page, "id": page.url.rsplit("/", 1)[1], "fractions": fractions}
    context.close()


def tile_pixels(page: Page, index: int) -> dict[str, int]:
    """How many distinct colours, and how many non-grey pixels, tile `index`'s canvas holds."""
    script = """k => {
      const c = document.querySelector(`#sweep-grid .tile[data-index="${k}"] canvas`);
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const colours = new Set(); let coloured = 0;
      for (let i = 0; i < d.length; i += 4) {
        colours.add(`${d[i]},${d[i+1]},${d[i+2]}`);
        if (Math.abs(d[i] - d[i+2]) > 30) coloured++;
      }
      return {colours: colours.size, coloured, side: c.width};
    }"""
    result: dict[str, int] = page.evaluate(script, index)
    return result


def test_sweep_started_from_the_form_trains_to_done_with_maps(watched: dict[str, Any]) -> None:
    page: Page = watched["page"]
    assert watched["fractions"] == sorted(watched["fractions"]), "the progress bar went backwards"
    assert page.eval_on_selector("#sweep-progress", "p => p.value") == 1
    expect(page.locator("#sweep-percent")).to_have_text("100 %")
    expect(page.locator("#sweep-status")).to_have_text("done")
    expect(page.locator("#sweep-counts")).to_have_text("6 done")
    expect(page.locator("#cancel-sweep")).to_be_disabled()
    tiles = page.locator("#sweep-grid .tile")
    expect(tiles).to_have_count(6)
    expect(page.locator("#sweep-grid .tile[data-painted]")).to_have_count(6)
    for k in range(6):
        pixels = tile_pixels(page, k)
        assert pixels["side"] == 25
        assert pixels["colours"] > 3 and pixels["coloured"] > 50, f"tile {k} looks blank: {pixels}"
    # labels are the swept values; borders are coloured by the test loss (not the default grey line)
    expect(tiles.nth(3).locator(".tile-label span")).to_have_text(["learning rate 0.03", "weight seed 1"])
    name = "decision map of learning rate 0.03 · weight seed 1"
    expect(tiles.nth(3).locator("canvas")).to_have_attribute("aria-label", name)
    border = "e => getComputedStyle(e).borderTopColor"
    borders = {page.eval_on_selector(f".tile[data-index='{k}'] .tile-map", border) for k in range(6)}
    assert len(borders) > 2 and "rgb(207, 213, 219)" not in borders
    expect(page.locator("#dl-csv")).to_have_attribute("href", f"/api/v1/sweeps/{watched['id']}/results.csv")
    expect(page.locator("#dl-history")).to_have_attribute("href", re.compile(r"results\.csv\?history=true$"))


def test_table_sorts_by_test_loss_both_ways(watched: dict[str, Any]) -> None:
    page: Page = watched["page"]
    header = page.locator("#sweep-table th[data-key='test_loss']")
    column = "rows => rows.map(r => parseFloat(r.children[6].textContent))"
    header.locator("button").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    losses = page.eval_on_selector_all("#sweep-table tbody tr", column)
    assert len(losses) == 6 and losses == sorted(losses)
    header.locator("button").press("Enter")  # the header's button works by keyboard too
    expect(header).to_have_attribute("aria-sort", "descending")
    assert page.eval_on_selector_all("#sweep-table tbody tr", column) == sorted(losses, reverse=True)
    expect(page.locator("#sweep-table th[data-key='index']")).to_have_attribute("aria-sort", "none")


def test_chart_draws_the_seeds_band_on_a_log_axis(watched: dict[str, Any]) -> None:
    page: Page = watched["page"]
    expect(page.locator("#chart-x")).to_have_value("training.learning_rate")
    chart = page.locator("#sweep-chart")
    expect(chart).to_have_attribute("data-log-x", "true")  # 0.003 to 0.3: two decades
    expect(chart).to_have_attribute("data-bands", "1")  # the spread across the two seeds
    expect(chart.locator("canvas")).to_have_count(1)
    expect(page.locator("#chart-note")).to_contain_text("over the seeds")
    page.select_option("#chart-x", "seed")
    expect(chart).to_have_attribute("data-log-x", "false")
    expect(chart).to_have_attribute("data-bands", "0")


def brush(page: Page, axis: int, low: float, high: float) -> None:
    """Drag along parallel-coordinates axis `axis` from height fraction `low` to `high` (0 = its bottom)."""
    box = page.locator("#parcoords").bounding_box()
    assert box is not None
    line = page.locator(f"#parcoords .pc-axis[data-axis='{axis}'] line").first
    x, y1, y2 = (float(line.get_attribute(a) or 0) for a in ("x1", "y1", "y2"))
    at = [box["y"] + y2 - f * (y2 - y1) for f in (low, high)]
    page.mouse.move(box["x"] + x, at[0])
    page.mouse.down()
    page.mouse.move(box["x"] + x, (at[0] + at[1]) / 2, steps=3)
    page.mouse.move(box["x"] + x, at[1], steps=3)
    page.mouse.up()


def test_brushing_an_axis_filters_lines_rows_and_tiles(watched: dict[str, Any]) -> None:
    page: Page = watched["page"]
    expect(page.locator("#parcoords .pc-axis")).to_have_count(3)  # learning rate, weight seed, test loss
    expect(page.locator("#parcoords .pc-line")).to_have_count(6)
    brush(page, 0, 0.35, 0.65)  # the middle of the log axis: learning rate 0.03
    expect(page.locator("#pc-kept")).to_have_text("2 of 6 configurations inside the brushed ranges")
    expect(page.locator("#parcoords .pc-line.out")).to_have_count(4)
    expect(page.locator("#sweep-table tbody tr.out")).to_have_count(4)
    expect(page.locator("#sweep-grid .tile.out")).to_have_count(4)
    rates = "rows => rows.map(r => r.children[1].textContent)"
    kept = page.eval_on_selector_all("#sweep-table tbody tr:not(.out)", rates)
    assert kept == ["0.03", "0.03"]
    brush(page, 1, 0.8, 1.05)  # and weight seed 1 only
    expect(page.locator("#sweep-table tbody tr:not(.out)")).to_have_count(1)
    page.click("#clear-brush")
    expect(page.locator("#parcoords .pc-line.out")).to_have_count(0)
    expect(page.locator("#sweep-table tbody tr.out")).to_have_count(0)
    expect(page.locator("#pc-kept")).to_have_text("6 configurations")
    # by keyboard: the weight seed axis, ↑ keeps its lowest value, ↑ again the next, Shift+↓ adds back, Escape
    page.focus("#parcoords .pc-axis[data-axis='1']")
    page.keyboard.press("ArrowUp")
    seeds = "rows => rows.map(r => r.children[2].textContent)"
    expect(page.locator("#sweep-table tbody tr:not(.out)")).to_have_count(3)
    assert set(page.eval_on_selector_all("#sweep-table tbody tr:not(.out)", seeds)) == {"0"}
    page.keyboard.press("ArrowUp")
    expect(page.locator("#sweep-table tbody tr:not(.out)")).to_have_count(3)
    assert set(page.eval_on_selector_all("#sweep-table tbody tr:not(.out)", seeds)) == {"1"}
    page.keyboard.press("Shift+ArrowDown")
    expect(page.locator("#pc-kept")).to_have_text("6 of 6 configurations inside the brushed ranges")
    page.keyboard.press("Escape")
    expect(page.locator("#pc-kept")).to_have_text("6 configurations")


def test_hover_highlights_one_configuration_everywhere(watched: dict[str, Any]) -> None:
    page: Page = watched["page"]
    page.hover("#sweep-grid .tile[data-index='4'] canvas")
    expect(page.locator("#sweep-table tbody tr.hot")).to_have_attribute("data-index", "4")
    expect(page.locator("#parcoords .pc-line.hot")).to_have_attribute("data-index", "4")
    expect(page.locator("#sweep-grid .tile.hot")).to_have_count(1)
    # a point on configuration 1's line near the first axis (away from where the lines cross)
    point = page.evaluate("""() => {
      const path = document.querySelector('#parcoords .pc-line[data-index="1"] .pc-stroke');
      const p = path.getPointAtLength(path.getTotalLength() / 8), box = path.ownerSVGElement.getBoundingClientRect();
      return [box.x + p.x, box.y + p.y];
    }""")
    page.mouse.move(point[0], point[1])
    expect(page.locator("#sweep-grid .tile.hot")).to_have_attribute("data-index", "1")
    expect(page.locator("#sweep-table tbody tr.hot")).to_have_attribute("data-index", "1")
    page.hover("#sweep-table tbody tr[data-index='2']")
    expect(page.locator("#sweep-grid .tile.hot")).to_have_attribute("data-index", "2")


def test_sweep_view_has_no_accessibility_violations(watched: dict[str, Any]) -> None:
    found = _violations(watched["page"])
    assert not found, "axe found:\n" + "\n".join(found)


def test_configuration_opens_as_a_session_at_its_epoch(watched: dict[str, Any]) -> None:
    page: Page = watched["page"]
    page.click("#sweep-table tbody tr[data-index='3'] .open-btn")  # learning rate 0.03, weight seed 1
    page.wait_for_url(re.compile(r"/s/[\w-]+$"))
    page.wait_for_selector("#output-map[data-painted]")
    expect(page.locator("body")).to_have_attribute("data-role", "owner")
    assert page.evaluate(EPOCH) == 200
    expect(page.locator("#lr")).to_have_value("0.03")


def test_sweep_page_fits_a_phone(chromium: Browser, base_url: str, watched: dict[str, Any]) -> None:
    context = chromium.new_context(base_url=base_url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(f"/sweeps/{watched['id']}")
        expect(page.locator("#sweep-grid .tile[data-painted]")).to_have_count(6)
        expect(page.locator("#sweep-status")).to_have_text("done")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways"
        rights = page.eval_on_selector_all("#sweep-grid .tile", "ts => ts.map(t => t.getBoundingClientRect().right)")
        assert len(rights) == 6 and max(rights) <= 390
        box = page.locator(".table-box")
        assert box.evaluate("b => b.scrollWidth > b.clientWidth"), "the table should scroll inside its box"
        assert box.evaluate("b => b.getBoundingClientRect().right") <= 390
        page.goto("/sweeps")
        page.wait_for_selector("#field-rows .field-row")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()


def test_form_fills_ranges_counts_and_places_errors(page: Page) -> None:
    page.goto("/sweeps")
    expect(page.locator("#sweep-count")).to_have_text("3 configurations × 300 epochs")
    row = "#row-training-learning_rate"
    page.fill(f"{row} .low", "0.001")
    page.fill(f"{row} .high", "1")
    page.fill(f"{row} .count", "4")
    expect(page.locator("#training-learning_rate-values")).to_have_value("0.001, 0.01, 0.1, 1")
    page.uncheck(f"{row} .log")
    expect(page.locator("#training-learning_rate-values")).to_have_value("0.001, 0.334, 0.667, 1")
    page.select_option("#add-field", "training.optimizer")
    page.click("#add-field-btn")
    expect(page.locator("#sweep-count")).to_have_text("8 configurations × 300 epochs")  # sgd and the next one
    expect(page.locator("#add-field option[value='training.optimizer']")).to_be_disabled()
    # the server refuses a learning rate of 20: said beside that field, in words
    page.fill("#training-learning_rate-values", "0.03, 20")
    page.fill("#sweep-epochs", "100")
    page.click("#start-sweep")
    error = page.locator("#err-training-learning_rate")
    expect(error).to_be_visible()
    expect(error).to_contain_text("learning rate")
    expect(error).to_contain_text("at most 10")
    expect(page.locator("#training-learning_rate-values")).to_have_attribute("aria-invalid", "")
    page.fill("#training-learning_rate-values", "0.03, x")
    page.click("#start-sweep")
    expect(error).to_contain_text("“x” is not a number")
    page.fill("#sweep-epochs", "0")
    page.fill("#training-learning_rate-values", "0.03")
    page.click("#start-sweep")
    expect(page.locator("#err-epochs")).to_contain_text("epochs must be at least 1")
    assert page.url.endswith("/sweeps")


def test_playground_top_bar_opens_sweeps_from_its_session(page: Page) -> None:
    page.goto("/")
    page.wait_for_selector("#output-map[data-painted]")
    session = started(page)
    link = page.locator("#sweeps-link")
    expect(link).to_have_attribute("href", f"/sweeps?from={session}")
    link.click()
    page.wait_for_url(re.compile(r"/sweeps\?from="))
    expect(page.locator("#sweep-base")).to_have_value(f"session:{session}")
    expect(page.locator("#sweep-base option:checked")).to_contain_text("the session I came from")


def test_the_form_lists_recent_sweeps_newest_first(page: Page, watched: dict[str, Any]) -> None:
    """Under the form: the sweeps the server keeps, the newest first, each a link to its page."""
    page.goto("/sweeps")
    link = page.locator(f"#recent-sweeps a[href='/sweeps/{watched['id']}']")
    item = page.locator("#recent-sweeps li").filter(has=page.locator(f"a[href='/sweeps/{watched['id']}']"))
    expect(item.locator(".recent-status")).to_have_text("done")
    expect(item).to_contain_text("6 configurations × 200 epochs")
    dates = page.locator("#recent-sweeps li .hint").all_inner_texts()
    stamps = [d.split("· ")[1] for d in dates if "· " in d]
    assert stamps == sorted(stamps, reverse=True), stamps
    link.click()
    page.wait_for_url(re.compile(rf"/sweeps/{watched['id']}$"))
    expect(page.locator("#sweep-status")).to_have_text("done")
