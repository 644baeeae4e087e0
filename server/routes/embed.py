"""Embedding a playground page (``?embed=1&hide=...``): the page without its top bar's chrome (brand, menus,
links), for an iframe in slides or a course page; ``hide`` names panels and controls to leave out —
TF Playground's hidable controls (its src/state.ts) by the same names, and this page's own panels.
docs/page.md lists every name and what it hides."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from markupsafe import Markup

BOTH = ("mlp", "cnn")

# name → (what it hides, {page kind: CSS selector}); a control's whole field goes (its label too).
HIDE: dict[str, tuple[str, dict[str, str]]] = {
    # TF Playground's names (hideText and its HIDABLE_CONTROLS)
    "text": ("the lesson's text and the explanatory hints", dict.fromkeys(BOTH, "#lesson-aside, .hint")),
    "showTestData": ("the “show test data” checkbox", {"mlp": "label[for=show-test]"}),
    "discretize": ("the “discretize output” checkbox", {"mlp": "label[for=discretize]"}),
    "playButton": ("the play / pause button", dict.fromkeys(BOTH, "#play-btn")),
    "stepButton": ("the step button", dict.fromkeys(BOTH, "#step-btn")),
    "resetButton": ("the reset button", dict.fromkeys(BOTH, "#reset-btn")),
    "learningRate": ("the learning rate", dict.fromkeys(BOTH, ".field:has(#lr), .lr-now")),
    "activation": (
        "the activation pickers",
        {
            "mlp": ".field:has(#default-activation), #network-form select[name=activation]",
            "cnn": "#cnn-layers select[name=activation]",
        },
    ),
    "regularization": ("the regularization picker", {"mlp": ".field:has(#regularization)"}),
    "regularizationRate": ("the regularization rate", {"mlp": ".field:has(#reg-rate)"}),
    "problem": ("the problem type (classification / regression)", {"mlp": ".field:has(#problem)"}),
    "dataset": ("the dataset picker", {"mlp": "fieldset.datasets", "cnn": ".field:has(#image-set)"}),
    "percTrainData": ("the training share slider", {"mlp": ".field:has(#train-percent)"}),
    "noise": ("the noise slider", dict.fromkeys(BOTH, ".field:has(#noise)")),
    "batchSize": ("the batch size", dict.fromkeys(BOTH, ".field:has(#batch-size)")),
    "numHiddenLayers": ("the + / − layer buttons", {"mlp": ".layers-bar", "cnn": "#cnn-layers .layer-ops"}),
    # this page's own panels and controls
    "runButtons": ("all the run buttons", dict.fromkeys(BOTH, "#run-buttons")),
    "epoch": ("the epoch counter and status", dict.fromkeys(BOTH, ".counter")),
    "settings": ("the whole settings row under the top bar", dict.fromkeys(BOTH, ".topbar-row.settings")),
    "optimizer": ("the optimizer picker", dict.fromkeys(BOTH, ".field:has(#optimizer)")),
    "speed": ("the speed picker", {"mlp": ".field:has(#speed)"}),
    "moreSettings": ("“more settings”", dict.fromkeys(BOTH, "#more-settings")),
    "landscape": ("the landscape tab and panel", dict.fromkeys(BOTH, "#landscape-tab, #optimization")),
    "data": ("the data panel", {"mlp": ".data-col"}),
    "network": ("the network panel", {"mlp": ".network-col", "cnn": 'section[aria-labelledby="layers-h"]'}),
    "output": ("the output panel", {"mlp": ".output-col", "cnn": 'section[aria-labelledby="results-h"]'}),
    "points": ("adding points by clicking", {"mlp": "#points-form"}),
    "metrics": ("the loss and accuracy table", dict.fromkeys(BOTH, "table.metrics")),
    "charts": ("the loss (and accuracy, rate) charts", dict.fromkeys(BOTH, "#charts")),
    "timeline": ("the timeline under the charts", dict.fromkeys(BOTH, "#timeline")),
    "gradients": ("the gradient strip", dict.fromkeys(BOTH, ".grads")),
    "confusion": ("the confusion matrix", {"mlp": "#confusion-block", "cnn": "#confusion-h, .confusion-wrap"}),
    "filters": ("the CNN's filters", {"cnn": "#filters-h, #filters-h + .hint, #filters"}),
    "actmax": (
        "what each filter wants to see",
        {"cnn": "#actmax-h, #actmax-h + .hint, .actmax-bar:has(#actmax-layer), #actmax-note, #actmax"},
    ),
    "saliency": ("the saliency map", {"cnn": "#saliency-h, .saliency-row"}),
    "maps": ("the feature maps", {"cnn": "#maps-h, .actmax-bar:has(#map-scale), .hint:has(+ #maps), #maps"}),
    "convolution": ("how a convolution works", {"cnn": "#conv-h, #conv-h + .hint, #conv-walk"}),
    "examples": ("the test images strip", {"cnn": "#examples-h, #examples, #example-caption"}),
    "draw": ("drawing your own image", {"cnn": "#draw-h, .draw-wrap, #draw-error, #draw-probs"}),
    "mistakes": ("the surest mistakes", {"cnn": "#wrong-h, #wrong, #wrong-none"}),
}

# What the layout does instead when a name hides one of its grid's columns (the rest fills the width).
REFLOW = "repeat(auto-fit, minmax(min(100%, 320px), 1fr))"
LAYOUT: dict[str, dict[str, str]] = {
    "text": dict.fromkeys(BOTH, ".lesson-layout { display: block; }"),
    **{n: {"mlp": f".playground {{ grid-template-columns: {REFLOW}; }}"} for n in ("data", "network", "output")},
    **{n: {"cnn": f".playground.cnn {{ grid-template-columns: {REFLOW}; }}"} for n in ("network", "output")},
}


@dataclass(frozen=True)
class Embed:
    """What ``?embed=&hide=`` asks of a page of ``kind``."""

    embed: bool
    hidden: tuple[str, ...]  # names known and on this page
    unknown: tuple[str, ...]  # names this page does not know (said in a note)
    absent: tuple[str, ...]  # known names of the other kind's page

    def query(self) -> str:
        """``&embed=1&hide=...`` to keep in the page's own addresses ('' when neither was asked)."""
        params = {"embed": "1"} if self.embed else {}
        if self.hidden or self.unknown or self.absent:
            params["hide"] = ",".join((*self.hidden, *self.absent, *self.unknown))
        return "&" + urlencode(params) if params else ""


def embed_of(embed: str | None, hide: str | None, kind: str) -> Embed:
    """Read ``embed`` (1/true/yes) and ``hide`` (comma-separated names) for a page of ``kind``."""
    names = [n.strip() for n in (hide or "").split(",") if n.strip()][:64]
    known = [n for n in dict.fromkeys(names) if n in HIDE]
    return Embed(
        embed=(embed or "").lower() in ("1", "true", "yes"),
        hidden=tuple(n for n in known if kind in HIDE[n][1]),
        unknown=tuple(n[:40] for n in dict.fromkeys(names) if n not in HIDE),
        absent=tuple(n for n in known if kind not in HIDE[n][1]),
    )


def hide_css(e: Embed, kind: str) -> Markup:
    """The style rule hiding what ``e`` names on a page of ``kind`` (selectors from HIDE only: nothing the link
    says goes into it verbatim)."""
    selectors = ", ".join(HIDE[n][1][kind] for n in e.hidden)
    if not selectors:
        return Markup("")
    layout = dict.fromkeys(LAYOUT[n][kind] for n in e.hidden if kind in LAYOUT.get(n, {}))
    return Markup(" ".join([f"{selectors} {{ display: none !important; }}", *layout]))
