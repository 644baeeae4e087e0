"""WCAG 2 A/AA audit of the pages with axe-core (from node_modules)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# Known failures in templates another change owns, each with its reason and its fix; kept tiny.
KNOWN: dict[tuple[str, str], str] = {}  # (rule, target) → why it is accepted; none today


def _violations(page: Page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS)
    lines = []
    for v in result["violations"]:
        nodes = [n for n in v["nodes"] if (v["id"], " ".join(map(str, n["target"]))) not in KNOWN]
        if nodes:
            lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        for n in nodes[:5]:
            lines.append(f"    {n['target']}: {n.get('failureSummary', '').replace(chr(10), ' ')}")
    return lines


@pytest.mark.parametrize("path", ["/", "/experiments", "/lessons", "/lessons/xor-hidden-layer", "/sweeps"])
def test_page_has_no_accessibility_violations(page: Page, base_url: str, path: str) -> None:
    page.goto(base_url + path)
    page.wait_for_load_state("networkidle")
    found = _violations(page)
    assert not found, "axe found:\n" + "\n".join(found)


def test_open_landscape_panel_has_no_accessibility_violations(page: Page) -> None:
    page.goto("/")
    page.click("#landscape-tab")
    page.wait_for_selector("#landscape[data-state='drawn']", timeout=60_000)  # the slice, its legend and toggle
    page.wait_for_selector("#gradients table.health")
    found = _violations(page)
    assert not found, "axe found:\n" + "\n".join(found)


@pytest.mark.parametrize("path", ["/presets/cnn-lenet-digits", "/presets/cnn-shapes-tiny"])
def test_cnn_page_has_no_accessibility_violations(page: Page, path: str) -> None:
    page.goto(path)
    # the convolution walk-through with its coloured cells (or its reason for showing none)
    page.wait_for_selector("#conv-patch, #conv-none", timeout=90_000)
    page.wait_for_load_state("networkidle")
    found = _violations(page)
    assert not found, "axe found:\n" + "\n".join(found)
