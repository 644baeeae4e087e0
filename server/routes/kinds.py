"""How each kind of network's page is laid out: a table by the engine's name (the pages never ask which
kind a network is; they read its row)."""

from __future__ import annotations

from dataclasses import dataclass

from server.sessions import Session


@dataclass(frozen=True)
class PageKind:
    name: str  # the engine's name: the kinds nav marks it as the current page
    template: str  # the page
    settings_panel: str  # the panel a diagnosis's fix re-renders
    settings_partial: str  # the settings row of the top bar
    settings_target: str  # the element id that partial renders
    lessons: bool  # the top bar offers this kind's presets as lessons
    landscape_live: int  # slice resolution while training
    landscape_fine: int  # ... when paused
    race_resolution: int
    race_epochs: int  # the race's default length


PAGE_KINDS = {
    "mlp": PageKind("mlp", "index.html", "run", "partials/run_form.html", "run-form", False, 31, 51, 41, 300),
    # a CNN's loss is dear (its images through the network per cell): smaller slices, shorter races
    "cnn": PageKind("cnn", "cnn.html", "settings", "partials/cnn_settings.html", "cnn-settings", True, 11, 21, 21, 10),
}


def page_kind(s: Session) -> PageKind:
    return PAGE_KINDS[s.engine.name]
