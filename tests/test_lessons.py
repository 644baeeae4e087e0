"""The lessons: every spec and variant is a valid experiment, and what each lesson's text claims really happens
when its preset trains (through the REST API, on fixed seeds; across several where the effect is random)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.lessons import LESSONS, PANELS, Lesson
from server.spec import ExperimentSpec, merge_patch
from tests.conftest import SESSIONS, create_session


def variant_patch(lesson: Lesson, label: str) -> dict[str, Any]:
    matches = [v.patch for v in lesson.variants if v.label == label]
    assert matches, f"{lesson.slug} has no variant {label!r}"
    return matches[0]


def lesson_spec(slug: str, variant: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The lesson's spec, with one of its variants applied, then ``extra`` (seeds, sizes for the check)."""
    lesson = LESSONS[slug]
    spec = lesson.spec if variant is None else merge_patch(lesson.spec, variant_patch(lesson, variant))
    return merge_patch(spec, extra or {})


class Run:
    """A session trained through the REST API."""

    def __init__(self, client: TestClient, spec: dict[str, Any]) -> None:
        self.client = client
        self.id, self.auth = create_session(client, spec)
        self.url = f"{SESSIONS}/{self.id}"
        self.state: dict[str, Any] = client.get(self.url).json()

    def train(self, epochs: int) -> dict[str, Any]:
        r = self.client.post(f"{self.url}/train", json={"epochs": epochs}, headers=self.auth)
        assert r.status_code == 200, r.text
        self.state = r.json()
        return self.state

    def metric(self, name: str) -> float:
        return float(self.state["metrics"][name])

    def history(self, name: str) -> np.ndarray:
        records = self.client.get(f"{self.url}/history").json()["records"]
        return np.array([r[name] for r in records], dtype=float)

    def weights(self) -> list[dict[str, Any]]:
        return self.client.get(f"{self.url}/weights").json()["layers"]

    def get(self, view: str, **params: Any) -> dict[str, Any]:
        r = self.client.get(f"{self.url}/{view}", params=params)
        assert r.status_code == 200, r.text
        return r.json()


def trained(client: TestClient, slug: str, epochs: int, variant: str | None = None, **extra: Any) -> Run:
    run = Run(client, lesson_spec(slug, variant, extra))
    run.train(epochs)
    return run


# ------------------------------------------------------------------------------------ the catalogue


def test_every_lesson_and_variant_is_a_valid_experiment() -> None:
    for slug, lesson in LESSONS.items():
        assert slug == lesson.slug and slug.replace("-", "").isalnum() and slug.islower()
        spec = ExperimentSpec.model_validate(lesson.spec)
        assert spec.network.kind == lesson.kind, slug
        assert set(lesson.panels) <= set(PANELS), slug
        assert lesson.todo and lesson.watch and lesson.question.endswith("?") and lesson.why, slug
        sentences = [s for s in lesson.why.replace("?", ".").split(". ") if s.strip()]
        assert 3 <= len(sentences) <= 7, (slug, len(sentences))
        labels = [v.label for v in lesson.variants]
        assert len(set(labels)) == len(labels), slug
        for variant in lesson.variants:
            ExperimentSpec.model_validate(merge_patch(lesson.spec, variant.patch))


# ------------------------------------------------------------------------------------ 1-4


def test_perceptron_learns_two_clouds_but_not_xor(client: TestClient) -> None:
    for seed in (0, 1, 2):
        data = {"seed": seed, "dataset": {"seed": seed}}
        assert trained(client, "perceptron", 50, "two clouds", **data).metric("test_accuracy") >= 0.95
        assert trained(client, "perceptron", 500, "XOR data", **data).metric("test_accuracy") <= 0.65


def test_one_hidden_layer_solves_xor_and_none_cannot(client: TestClient) -> None:
    assert trained(client, "xor-hidden-layer", 300).metric("test_accuracy") >= 0.9
    assert trained(client, "xor-hidden-layer", 300, "one hidden layer").metric("test_accuracy") >= 0.9
    for seed in (0, 1, 2):
        run = trained(client, "xor-hidden-layer", 300, "no hidden layer", seed=seed, dataset={"seed": seed})
        assert run.metric("test_accuracy") <= 0.65


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky ReLU", "softplus", "gaussian"])
def test_activations_with_a_slope_train(client: TestClient, activation: str) -> None:
    run = trained(client, "activation-functions", 100, activation)
    assert run.metric("test_loss") < 0.3 * run.history("test_loss")[0]
    assert run.metric("test_accuracy") >= 0.95
    assert run.state["notes"] == []


def test_step_activation_does_not_learn_and_the_session_says_why(client: TestClient) -> None:
    run = Run(client, lesson_spec("activation-functions", "step"))
    first = run.weights()[0]
    run.train(50)
    plateau = run.metric("test_loss")
    run.train(50)
    assert run.weights()[0] == first  # no gradient reaches the hidden layer's weights
    assert run.metric("test_loss") == pytest.approx(plateau, abs=0.01)  # the loss stopped moving
    assert run.metric("test_accuracy") <= 0.65
    assert any("'step'" in note and "derivative is 0" in note for note in run.state["notes"])


def test_squared_features_make_a_line_into_a_circle(client: TestClient) -> None:
    assert trained(client, "feature-engineering", 200).metric("test_accuracy") >= 0.95
    assert trained(client, "feature-engineering", 200, "squared inputs").metric("test_accuracy") >= 0.95
    # A line can only cut off part of the ring: about two thirds right, never most of it.
    assert trained(client, "feature-engineering", 200, "only x1, x2").metric("test_accuracy") <= 0.75
