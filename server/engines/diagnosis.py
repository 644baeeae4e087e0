"""Gradient-health findings (``server.ml.health.diagnose``: codes and numbers) in plain words for people."""

from __future__ import annotations

import math
from typing import Any

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")

_WORDS: dict[str, dict[Any, str]] = {
    "activation": {"relu": "ReLU", "leaky_relu": "leaky ReLU"},
    "init": {"he": "He init", "xavier": "Xavier init"},
    "batch_norm": {True: "batch norm"},
}

_CAUSES = {
    "saturated": "saturated units pass almost no gradient back",
    "dead": "dead ReLU units pass no gradient back",
    "sigmoid": "sigmoid's slope is at most ¼, so every layer shrinks the gradient",
    "small_init": "the small initial weights (σ = 0.01) shrink it again at every layer",
    "zero_init": "zero initial weights pass no gradient back",
}


def power_of_ten(ratio: float) -> str:
    """0.8e-6 → '10⁻⁶' (the nearest power of ten, for messages)."""
    return "10" + str(round(math.log10(ratio))).translate(_SUPERSCRIPT)


def fixes_in_words(fixes: list[dict[str, Any]]) -> str:
    """[{"activation": "relu", "init": "he"}, {"batch_norm": True}] → 'ReLU + He init or batch norm'."""

    def word(key: str, value: Any) -> str:
        return f"learning rate {value:g}" if key == "learning_rate" else _WORDS[key].get(value, f"{key} {value}")

    alternatives = [" + ".join(word(k, v) for k, v in fix.items()) for fix in fixes]
    return " or ".join([", ".join(alternatives[:-1]), alternatives[-1]] if len(alternatives) > 1 else alternatives)


def message(finding: dict[str, Any]) -> str:
    """One finding as a sentence; layers numbered from 1 by their place in the params (as the pages show them)."""
    kind, layer = finding["kind"], finding["layer"] + 1
    if finding.get("nonfinite"):
        text = f"layer {layer} has NaN or Inf weights or gradients: training diverged"
    elif kind == "vanishing":
        ratio, last = finding["ratio"], finding["last"] + 1
        share = "no" if ratio == 0 else power_of_ten(ratio)
        cause = "; ".join(_CAUSES[c] for c in finding["causes"]) or "it shrinks at every layer on the way back"
        text = f"layer {layer} gets {share} of layer {last}'s gradient: {cause}"
    elif kind == "exploding":
        last = finding["last"] + 1
        grows = f"{power_of_ten(finding['ratio'])} times layer {last}'s gradient: it grows on the way back"
        text = f"layer {layer} gets {grows}"
    elif kind == "dead_relu":
        text = (
            f"layer {layer}: {finding['count']} of {finding['units']} ReLU units never fire on this batch (dead), so no"
            " gradient reaches their weights"
        )
    else:  # saturated
        text = (
            f"layer {layer}: {finding['count']} of {finding['units']} {finding['activation']} units are saturated"
            " (flat on ≥ 90 % of examples), so their slope is ≈ 0"
        )
    return f"{text}; try {fixes_in_words(finding['fixes'])}" if finding["fixes"] else text


def in_words(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The findings as the API gives them: ``layer``, ``kind``, ``message``, ``fixes``."""
    return [{"layer": f["layer"], "kind": f["kind"], "message": message(f), "fixes": f["fixes"]} for f in findings]
