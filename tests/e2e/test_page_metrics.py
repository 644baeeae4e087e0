"""The output's metrics in a real browser: the accuracy chart, log epochs, the learning rate under the loss,
the MLP confusion matrix, R² and RMSE for regression, the data as CSV, and the charts fitting the column."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.lazy import started

pytestmark = pytest.mark.e2e

EPOCH = "+document.getElementById('epoch').value.replace(/,/g, '')"


def link(spec: dict[str, Any]) -> str:
    text = base64.urlsafe_b64encode(json.dumps(spec, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"/?spec={text}"


def open_page(page: Page, path: str) -> str:
    page.goto(path)
    page.wait_for_selector("#output-map[data-painted]")
    return started(page)


def train_until_stopped(page: Page, at_epoch: int) -> None:
    """Play a session whose spec stops at `at_epoch`, until it has paused there."""
    page.click("#play-btn")
    page.wait_for_function(f"{EPOCH} >= {at_epoch}", timeout=30_000)
    expect(page.locator("#run-buttons")).to_have_attribute("data-status", "paused")


def state(base_url: str, sid: str) -> dict[str, Any]:
    return httpx.get(f"{base_url}/api/v1/sessions/{sid}").json()


def test_accuracy_chart_and_log_epochs_are_switched_and_remembered(page: Page) -> None:
    open_page(page, link({"stop": {"at_epoch": 30}}))
    train_until_stopped(page, 30)
    acc = page.locator("#acc-block")
    expect(acc).to_be_visible()  # classification: the accuracy chart under the loss
    expect(page.locator("#acc-chart canvas")).to_have_count(1)
    loss = page.locator("#loss-chart")
    expect(loss).to_have_attribute("data-x-distr", "1")
    expect(loss).to_have_attribute("data-first-epoch", "0")
    page.check("#log-epochs")
    expect(loss).to_have_attribute("data-x-distr", "3")  # uPlot's log scale
    first = int(loss.get_attribute("data-first-epoch") or "0")
    assert first >= 1  # epoch 0 has no place on a log axis: the curves start at epoch 1
    page.check("#log-loss")
    expect(loss).to_have_attribute("data-y-distr", "3")
    page.uncheck("#show-acc")
    expect(acc).to_be_hidden()
    page.reload()
    page.wait_for_selector("#output-map[data-painted]")
    expect(page.locator("#log-epochs")).to_be_checked()  # the choices survive a reload
    expect(page.locator("#show-acc")).not_to_be_checked()
    expect(acc).to_be_hidden()
    expect(loss).to_have_attribute("data-x-distr", "3")
    page.check("#show-acc")
    expect(acc).to_be_visible()


def test_the_learning_rate_strip_shows_a_step_schedule_decaying(page: Page, base_url: str) -> None:
    spec = {"training": {"learning_rate": 0.1, "schedule": {"kind": "step", "every": 5, "factor": 0.5}}}
    open_page(page, link({**spec, "stop": {"at_epoch": 20}}))
    train_until_stopped(page, 20)
    strip = page.locator("#lr-chart")
    expect(strip).to_have_attribute("data-rates", re.compile(r" 0\.00625$"))  # live: the rate of epoch 20
    rates = [float(v) for v in (strip.get_attribute("data-rates") or "").split()]
    assert rates[0] == 0.1 and rates == sorted(rates, reverse=True)
    # A session trained through the API shows every epoch's rate from its history.
    made = httpx.post(f"{base_url}/api/v1/sessions", json=spec).json()
    auth = {"Authorization": f"Bearer {made['token']}"}
    httpx.post(f"{base_url}/api/v1/sessions/{made['id']}/train", json={"epochs": 20}, headers=auth, timeout=60)
    open_page(page, f"/s/{made['id']}")
    expect(strip).to_have_attribute("data-rates", "0.1 0.05 0.025 0.0125 0.00625")
    expect(strip.locator("canvas")).to_have_count(1)
    # Not hovering, the legend says the rate now; hovering the strip's start, the first epochs' rate.
    value = strip.locator(".u-legend .u-series:nth-child(2) .u-value")
    expect(value).to_have_text("0.00625")
    strip.scroll_into_view_if_needed()
    box = strip.locator(".u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 2, box["y"] + box["height"] / 2)
    expect(value).to_have_text("0.1")


def test_the_mlp_confusion_matrix_counts_every_test_point(page: Page, base_url: str) -> None:
    sid = open_page(page, link({"dataset": {"name": "blobs3", "n": 120}, "training": {"loss": "cross_entropy"}}))
    n_test = state(base_url, sid)["architecture"]["n_test"]
    table = page.locator("#confusion")
    expect(page.locator("#confusion-block")).to_be_visible()
    expect(table).to_have_attribute("data-total", str(n_test))
    expect(table.locator("tr")).to_have_count(4)  # the heading row and a row per true class
    expect(table.locator("tr:nth-child(2) td:not(.right-col)")).to_have_count(3)
    expect(table.locator("tr:first-child th")).to_contain_text(["true", "orange", "blue", "purple", "right"])
    # the counts read: they sum to the test points
    cells = table.locator("td:not(.right-col)").all_inner_texts()
    assert len(cells) == 9 and sum(int(c) for c in cells) == n_test


def test_regression_shows_r2_and_rmse_and_no_accuracy(page: Page, base_url: str) -> None:
    sid = open_page(page, link({"problem": "regression", "dataset": {"name": "plane"}, "stop": {"at_epoch": 15}}))
    train_until_stopped(page, 15)
    m = state(base_url, sid)["metrics"]
    for name in ("train_r2", "test_r2", "train_rmse", "test_rmse"):
        expect(page.locator(f"#{name.replace('_', '-')}")).to_have_text(f"{m[name]:.3f}")
    expect(page.locator(".metrics .fit").first).to_be_visible()
    expect(page.locator(".metrics .acc")).to_be_hidden()
    expect(page.locator("#acc-block")).to_be_hidden()  # no accuracy chart, and no box to ask for it
    expect(page.locator("label[for='show-acc']")).to_be_hidden()
    expect(page.locator("#confusion-block")).to_be_hidden()


def test_the_data_downloads_as_csv_with_its_split(page: Page, base_url: str) -> None:
    sid = open_page(page, link({"dataset": {"name": "xor", "n": 60, "train_percent": 70}}))
    expect(page.locator("#csv-hint")).to_contain_text("split")
    with page.expect_download() as info:
        page.click("#csv-download")
    text = Path(info.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 60
    assert [r["split"] for r in rows].count("train") == state(base_url, sid)["architecture"]["n_train"] == 42
    assert all(-6 <= float(r["x1"]) <= 6 and -6 <= float(r["x2"]) <= 6 and r["label"] in {"0", "1"} for r in rows)


def assert_fits(page: Page, column: str) -> None:
    """The charts sit inside the output column and the page does not scroll sideways."""
    col = page.locator(column).bounding_box()
    assert col is not None
    for sel in ("#loss-chart canvas", "#lr-chart canvas", "#acc-chart canvas", ".chart-bar"):
        box = page.locator(sel).bounding_box()
        assert box is not None, sel
        assert col["x"] - 1 <= box["x"] and box["x"] + box["width"] <= col["x"] + col["width"] + 1, sel
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("width, height", [(1366, 900), (390, 844)])
def test_the_charts_fit_the_output_column(page: Page, width: int, height: int) -> None:
    page.set_viewport_size({"width": width, "height": height})
    open_page(page, "/")
    page.wait_for_selector("#acc-chart canvas")
    assert_fits(page, ".output-col")
    page.goto("/presets/cnn-lenet-digits")
    page.wait_for_selector("#filters canvas[data-painted]", timeout=60_000)
    assert_fits(page, ".output-col")
    expect(page.locator("#acc-block")).to_be_visible()  # the CNN classifies: its accuracy chart too
