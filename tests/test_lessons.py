"""The lessons: every spec and variant is a valid experiment, and what each lesson's text claims really happens
when its preset trains (through the REST API, on fixed seeds; across several where the effect is random)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.lessons import LESSONS, PANELS, Lesson
from server.ml.images import generate_images
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


# ------------------------------------------------------------------------------------ 5-9


def test_learning_rate_too_high_diverges_too_low_crawls(client: TestClient) -> None:
    high = trained(client, "learning-rate", 100, "too high")
    assert high.state["status"] == "diverged"
    r = client.post(f"{high.url}/play", headers=high.auth)
    assert r.status_code == 409 and "diverged" in r.text  # the session says so, and why
    low = trained(client, "learning-rate", 100, "too low")
    start = low.history("train_loss")[0]
    assert low.state["status"] == "paused" and low.metric("train_loss") > 0.8 * start  # it barely moved
    good = trained(client, "learning-rate", 100, "just right")
    assert good.state["status"] == "paused" and good.metric("train_loss") < 0.05 * start


def test_momentum_and_adam_get_further_than_sgd(client: TestClient) -> None:
    for seed in (0, 1, 2):
        sgd = trained(client, "momentum-adam", 200, "plain sgd", seed=seed).metric("train_loss")
        for variant in ("momentum", "Adam"):
            assert trained(client, "momentum-adam", 200, variant, seed=seed).metric("train_loss") < 0.75 * sgd


def end_fluctuation(run: Run) -> float:
    """Mean change of the training loss between the last records (every other epoch)."""
    return float(np.abs(np.diff(run.history("train_loss")[-20:])).mean())


def test_a_decaying_rate_settles_where_a_constant_one_bounces(client: TestClient) -> None:
    for seed in (0, 1):
        constant = trained(client, "learning-rate-schedules", 200, "constant", seed=seed)
        assert constant.state["learning_rate_now"] == pytest.approx(1.0)
        decayed = trained(client, "learning-rate-schedules", 200, "step decay", seed=seed)
        assert decayed.state["learning_rate_now"] < 0.01
        assert end_fluctuation(decayed) < 0.2 * end_fluctuation(constant)
        assert decayed.metric("train_loss") < constant.metric("train_loss")


def test_overfitting_test_loss_rises_while_train_loss_falls(client: TestClient) -> None:
    for seed in (0, 1, 2):
        run = trained(client, "overfitting", 400, seed=seed)
        train, test = run.history("train_loss"), run.history("test_loss")
        best = int(test.argmin())
        assert test[-1] > test[best] + 0.05  # the test loss climbed from its minimum
        assert train[-1] < train[best]  # while the training loss kept falling
        stopped = trained(client, "overfitting", 400, "early stopping", seed=seed)
        assert stopped.state["epoch"] < 400 and "early stopping" in stopped.state["stopped"]
        assert stopped.metric("test_loss") == pytest.approx(test.min(), abs=0.03)  # the best weights are back
        assert stopped.metric("test_loss") < run.metric("test_loss")


def weight_values(run: Run) -> np.ndarray:
    return np.concatenate([np.ravel(layer["w"]) for layer in run.weights()])


def test_l1_zeroes_weights_and_l2_shrinks_them(client: TestClient) -> None:
    for seed in (0, 1):
        none, l1, l2 = (weight_values(trained(client, "l1-l2", 300, v, seed=seed)) for v in ("none", "L1", "L2"))
        zeros = {name: int((np.abs(w) < 1e-3).sum()) for name, w in (("none", none), ("l1", l1), ("l2", l2))}
        assert zeros["none"] <= 2 and zeros["l2"] <= 2 and zeros["l1"] >= 15, zeros
        assert np.abs(l2).mean() < 0.75 * np.abs(none).mean()


# ------------------------------------------------------------------------------------ 10-13


def test_dropout_narrows_the_gap_between_train_and_test(client: TestClient) -> None:
    def gap(variant: str, seed: int) -> float:
        run = trained(client, "dropout", 300, variant, seed=seed)
        return run.metric("test_loss") - run.metric("train_loss")

    without = [gap("no dropout", seed) for seed in (0, 1, 2)]
    with_dropout = [gap("dropout 0.5", seed) for seed in (0, 1, 2)]
    assert all(d < w for d, w in zip(with_dropout, without, strict=True)), (with_dropout, without)
    assert np.mean(with_dropout) < 0.6 * np.mean(without)


def test_batch_norm_trains_a_deep_sigmoid_network_that_stalls_without_it(client: TestClient) -> None:
    for seed in (0, 1, 2):
        stalled = trained(client, "batch-norm", 150, "no batch norm", seed=seed)
        assert stalled.metric("train_loss") == pytest.approx(0.5, abs=0.01)  # always answering 0
        assert stalled.metric("test_accuracy") <= 0.6
        normed = trained(client, "batch-norm", 150, "batch norm", seed=seed)
        assert normed.metric("train_loss") < 0.4 * stalled.metric("train_loss")
        assert normed.metric("test_accuracy") >= 0.85


def test_vanishing_gradients_are_measured_and_named_and_relu_he_trains(client: TestClient) -> None:
    for seed in (0, 1):
        run = trained(client, "vanishing-gradients", 200, seed=seed)
        assert run.metric("train_loss") == pytest.approx(run.history("train_loss")[0], abs=0.01)  # it stalls
        health = run.get("gradients")
        norms = [layer["grad_norm"] for layer in health["layers"]]
        assert norms[0] < 1e-6 * norms[-1] and norms[1] < 1e-6 * norms[-1]
        assert health["diagnosis"] and health["diagnosis"][0]["kind"] == "vanishing"
        assert health["diagnosis"][0]["layer"] == 0
        relu = trained(client, "vanishing-gradients", 200, "ReLU + He init", seed=seed)
        assert relu.metric("train_loss") < 0.5 * relu.history("train_loss")[0]
        assert all(d["kind"] != "vanishing" for d in relu.get("gradients")["diagnosis"])


def test_the_path_runs_downhill_and_small_batches_end_in_a_flatter_minimum(client: TestClient) -> None:
    sharpness = {}
    for variant in ("whole batch", "small batches"):
        run = Run(client, lesson_spec("loss-landscape", variant))
        for _ in range(10):
            run.train(20)
        path = run.get("landscape", directions="pca", resolution=21)["trajectory"]
        loss = np.array(path["true_loss"])
        assert len(loss) >= 10 and loss[-1] < 0.1 * loss[0]
        # it runs downhill nearly all the way: looked at every tenth of the run (the path has a point per
        # epoch, and single-point steps bounce a little from one epoch to the next)
        coarse = loss[np.linspace(0, len(loss) - 1, 11).astype(int)]
        assert np.mean(np.diff(coarse) <= 1e-3) >= 0.8
        sharpness[variant] = run.get("sharpness")["top_eigenvalue"]
    assert sharpness["small batches"] < 0.1 * sharpness["whole batch"], sharpness


# ------------------------------------------------------------------------------------ 14-16


def orientation(kernel: np.ndarray) -> float:
    """How much of a 3×3 filter (mean removed) is stripes along the rows or the columns: 1 for an edge or a
    line detector, about 0.4 for random weights."""
    k = kernel - kernel.mean()
    rows = np.broadcast_to(k.mean(axis=1, keepdims=True), k.shape)
    cols = np.broadcast_to(k.mean(axis=0, keepdims=True), k.shape)
    return float(max((rows**2).sum(), (cols**2).sum()) / ((k**2).sum() + 1e-12))


def mean_orientation(run: Run) -> float:
    w = np.array(run.weights()[0]["w"])  # (3, 3, 1, filters)
    return float(np.mean([orientation(w[:, :, 0, f]) for f in range(w.shape[-1])]))


def maps_of(run: Run, images: np.ndarray) -> tuple[list[int], dict[str, np.ndarray]]:
    """The predicted classes and each spatial layer's feature maps (n, C, H, W) in their own values."""
    out = run.client.post(f"{run.url}/predict", json={"images": images.tolist(), "feature_maps": True}).json()
    maps = {}
    for key, value in out["feature_maps"].items():
        if key.startswith("maps"):
            q = np.array(value["data"], float)
            ranges = np.array(out["feature_maps"][key.replace("maps", "map_ranges")]["data"])
            lo, hi = ranges[..., :1], ranges[..., 1:]  # (n, C, 1)
            maps[key] = (lo + q.reshape(*q.shape[:2], -1) / 255.0 * (hi - lo)).reshape(q.shape)
    return out["classes"], maps


def test_bars_filters_become_oriented_and_pooled_maps_barely_move(client: TestClient) -> None:
    images = generate_images("bars", 32, 0.05, 123)[0][..., 0]
    moved = np.roll(images, 1, axis=2)  # every image one pixel to the right
    for seed in (0, 1):
        run = Run(client, lesson_spec("cnn-edge-filters", extra={"seed": seed}))
        before = mean_orientation(run)
        run.train(10)
        assert run.metric("test_accuracy") >= 0.95
        after = mean_orientation(run)
        assert after >= 0.6 and after > before + 0.15, (before, after)
        classes, maps = maps_of(run, images)
        moved_classes, moved_maps = maps_of(run, moved)
        assert np.mean(np.array(classes) == np.array(moved_classes)) >= 0.95  # the answer stays
        change = {k: np.linalg.norm(moved_maps[k] - maps[k]) / np.linalg.norm(maps[k]) for k in ("maps0", "maps1")}
        assert change["maps1"] < 0.7 * change["maps0"], change  # the pooled maps move much less than the filters'


def test_activation_maximization_climbs_and_each_filter_wants_its_own_image(client: TestClient) -> None:
    run = trained(client, "activation-maximization", 8)
    assert run.metric("test_accuracy") >= 0.9
    out = run.get("actmax", layer=0, steps=20, encoding="list")
    start, end = np.array(out["start"]["data"]), np.array(out["end"]["data"])
    alive = start > 1e-6  # a ReLU filter silent on grey has no slope to climb
    assert alive.sum() >= 6 and np.all(end[alive] > start[alive])
    images = np.array(out["images"]["data"], float).reshape(len(start), -1)[alive]
    assert (images.std(axis=1) > 20).sum() >= 3  # pictures with a pattern in them, not just grey or white
    distinct: list[np.ndarray] = []  # pictures that differ by more than 20 grey levels on average
    for image in images:
        if all(np.abs(image - other).mean() > 20 for other in distinct):
            distinct.append(image)
    assert len(distinct) >= 4


def test_there_are_sixteen_lessons_all_ready() -> None:
    assert len(LESSONS) == 16
    assert [slug for slug, lesson in LESSONS.items() if lesson.status == "coming"] == []
    assert list(LESSONS)[-1] == "double-descent" and LESSONS["double-descent"].sweep is not None
