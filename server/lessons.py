"""Lessons from the lectures: each a preset experiment, a text written for a student, the panels it points
at, and (in tests/test_lessons.py) a check that what the text claims really happens.

The lessons page (server/routes/lessons.py) opens each lesson as its own live session; ``GET
/api/v1/lessons`` lists them. A lesson's ``spec`` is a partial ExperimentSpec (defaults fill the rest);
``variants`` are one-click changes the text asks the student to try, each a partial spec merged into the
lesson's spec (JSON merge: objects key by key, lists replaced).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# Panels a lesson may point at: ids of elements on the playground pages (the page outlines them).
PANELS = {
    "data": "the data panel (datasets, noise, training share)",
    "network": "the network: each neuron's picture and the weights",
    "output": "the output map with the data points",
    "metrics": "the loss and accuracy table",
    "loss-chart": "the loss (and accuracy) over the epochs",
    "gradients": "the gradient norm per layer",
    "settings": "the training settings on top",
    "landscape": "the loss landscape panel (slice, path, sharpness)",
    "filters": "the CNN's filters",
    "feature-maps": "the CNN's feature maps",
    "confusion": "the confusion matrix",
    "actmax": "activation maximization: what each filter wants to see",
}


@dataclass(frozen=True)
class Variant:
    """A change the text asks the student to try: a button on the lesson page that applies ``patch``."""

    label: str  # the button's words, e.g. "step activation"
    patch: dict[str, Any]  # partial spec, merged into the lesson's spec
    reset: bool = True  # start again from fresh weights after applying it (a side-by-side comparison)


@dataclass(frozen=True)
class Lesson:
    slug: str  # URL name: /lessons/{slug}
    title: str
    topic: str  # the lecture topic it comes from, e.g. "the perceptron"
    kind: Literal["mlp", "cnn"]  # which playground page shows it
    spec: dict[str, Any]  # partial ExperimentSpec
    todo: str  # what to do
    watch: str  # what to watch
    question: str  # one question to answer
    why: str  # the explanation, behind a "show why" toggle
    panels: tuple[str, ...]  # keys of PANELS it highlights
    variants: tuple[Variant, ...] = field(default_factory=tuple)
    status: Literal["ready", "coming"] = "ready"  # "coming": listed, not yet openable (say why in ``todo``)

    def public(self) -> dict[str, Any]:
        """The lesson as ``GET /api/v1/lessons`` lists it."""
        return {
            "slug": self.slug,
            "title": self.title,
            "topic": self.topic,
            "kind": self.kind,
            "status": self.status,
            "spec": self.spec,
            "text": {"todo": self.todo, "watch": self.watch, "question": self.question, "why": self.why},
            "panels": list(self.panels),
            "variants": [{"label": v.label, "patch": v.patch, "reset": v.reset} for v in self.variants],
        }


LESSONS: dict[str, Lesson] = {}
