"""WCAG 2 A/AA audit of the pages with axe-core (from node_modules)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def _violations(page: Page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS)
    lines = []
    for v in result["violations"]:
        targets = ", ".join(str(n["target"]) for n in v["nodes"][:5])
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} -> {targets}")
    return lines


@pytest.mark.parametrize("path", ["/", "/experiments"])
def test_page_has_no_accessibility_violations(page: Page, base_url: str, path: str) -> None:
    page.goto(base_url + path)
    page.wait_for_load_state("networkidle")
    found = _violations(page)
    assert not found, "axe found:\n" + "\n".join(found)


def test_open_landscape_panel_has_no_accessibility_violations(page: Page) -> None:
    page.goto("/")
    page.click("#landscape-tab")
    page.wait_for_timeout(1000)
    found = _violations(page)
    assert not found, "axe found:\n" + "\n".join(found)
