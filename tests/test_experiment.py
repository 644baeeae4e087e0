"""End-to-end tests of the MLP engine (server/engines/mlp.py): from an ExperimentSpec to trained weights, frames and
predictions. Each case trains for real; the numbers are the engine's acceptance facts."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from server.engines import mlp as ex
from server.ml.datasets import featurize, grid_points
from server.ml.inspect import NEURON_RESOLUTION, OUTPUT_RESOLUTION, dequantize
from server.ml.models import apply_mlp, count_params
from server.spec import ExperimentSpec, apply_patch

ALL_FEATURES = ["x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2"]


class Run:
    """A spec with its config, data, state and hyperparameters."""

    def __init__(self, patch=None, base=None):
        self.spec = apply_patch(base or ExperimentSpec(), patch or {})
        self.cfg = ex.config_for(self.spec)
        self.data = ex.build_data(self.spec)
        self.state = ex.init_train_state(self.spec, self.cfg)
        self.epochs = 0

    def train(self, epochs):
        adv = ex.advance(self.cfg, self.state, self.data, ex.hyper_for(self.spec), epochs)
        assert not adv.diverged and adv.epochs == epochs
        self.state, self.epochs = adv.state, self.epochs + epochs
        return self

    @property
    def h(self):
        return ex.hyper_for(self.spec)

    def metrics(self):
        return ex.metrics(self.cfg, self.state, self.data, self.spec.problem)

    def edit(self, patch):
        """A live edit: the new spec's run, its state carried over from this one."""
        new = Run.__new__(Run)
        new.spec = apply_patch(self.spec, patch)
        new.cfg = ex.config_for(new.spec)
        new.data = ex.build_data(new.spec)
        new.state, report = ex.carry_over(self.spec, self.cfg, self.state, new.spec, new.cfg)
        new.epochs = self.epochs
        return new, report


def _leaves_equal(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    if len(la) != len(lb):
        return False
    return all(np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(la, lb, strict=True))


@pytest.fixture(scope="module")
def default_run():
    """TF Playground's first screen (circle, 2 features, 4-2 tanh, sgd 0.03), 200 epochs."""
    return Run().train(200)


@pytest.fixture(scope="module")
def blobs_run():
    """Three classes, softmax cross-entropy, 200 epochs."""
    return Run({"dataset": {"name": "blobs3"}, "training": {"loss": "cross_entropy"}}).train(200)


# --------------------------------------------------------------------------- acceptance numbers


def test_default_spec_learns_the_circle(default_run):
    m = default_run.metrics()
    assert m["test_loss"] < 0.05, m
    assert m["test_accuracy"] > 0.95, m


def test_xor_without_hidden_layers_cannot_be_learned():
    # a single linear boundary cannot separate XOR's quadrants
    m = Run({"dataset": {"name": "xor"}, "network": {"hidden": []}}).train(500).metrics()
    assert m["test_accuracy"] < 0.8, m


def test_xor_with_four_tanh_units_is_learned():
    # seed 2: with seed 0 this net falls into a local minimum at ~79 % — real behaviour of gradient
    # descent on XOR, not a bug, so the acceptance fact names a seed that finds the global one.
    m = Run({"dataset": {"name": "xor"}, "network": {"hidden": [{"units": 4}]}, "seed": 2}).train(500).metrics()
    assert m["test_accuracy"] > 0.95, m


def test_perceptron_rule_separates_two_gaussians():
    run = Run(
        {
            "dataset": {"name": "gauss", "noise": 0},
            "network": {"hidden": []},
            "training": {"algorithm": "perceptron"},
        }
    )
    assert run.cfg.arch.output == "sign" and run.data.batches[0].shape[1] == 1  # online: one point per update
    assert run.train(100).metrics()["train_accuracy"] == 1.0


def test_deep_net_with_all_features_learns_the_spiral():
    run = Run(
        {
            "dataset": {"name": "spiral"},
            "features": ALL_FEATURES,
            "network": {"hidden": [{"units": 8, "activation": "tanh"}] * 6},
            "training": {"optimizer": "adam", "learning_rate": 0.003},
        }
    )
    m = run.train(2000).metrics()
    assert m["test_accuracy"] > 0.9, m


def test_softmax_learns_three_blobs(blobs_run):
    assert blobs_run.cfg.arch.output == "softmax" and blobs_run.cfg.arch.n_outputs == 3
    m = blobs_run.metrics()
    assert m["test_accuracy"] > 0.95, m


def test_training_is_deterministic_and_chunking_does_not_matter():
    # 30 epochs in one call or in three calls of 10 give the same weights (the page plays in chunks)
    a = Run().train(30)
    b = Run().train(10).train(10).train(10)
    assert _leaves_equal(a.state.params, b.state.params)


def test_custom_points_and_added_points():
    # the user's own data: every point lands in exactly one of train/test; hand-added points train
    own = [[-4.0, -4.0, 0], [-3.0, -5.0, 0], [-5.0, -2.0, 0], [4.0, 4.0, 1], [3.0, 5.0, 1], [5.0, 2.0, 1]]
    added = [[1.0, 1.5, 1], [-1.5, -1.0, 0]]
    spec = apply_patch(
        ExperimentSpec(), {"dataset": {"name": "custom", "points": own, "added": added, "train_percent": 50}}
    )
    data = ex.build_data(spec)
    assert spec.n_classes == 2 and ex.arch_for(spec).output == "tanh"
    assert len(data.points_train) == 3 + 2 and len(data.points_test) == 3
    np.testing.assert_array_equal(data.points_train[-2:], np.array(added, np.float32)[:, :2])
    seen = np.concatenate([data.points_train[:-2], data.points_test])
    assert sorted(map(tuple, seen.tolist())) == sorted((x, y) for x, y, _ in own)
    # labels follow their points; the engine's targets are ±1 for two classes
    label_of = {(x, y): c for x, y, c in own + added}
    assert [label_of[tuple(p)] for p in data.points_train.tolist()] == data.labels_train.tolist()
    np.testing.assert_array_equal(np.asarray(data.y_train), 2.0 * data.labels_train - 1.0)
    # batch_size 10 > 5 training points: one whole batch of 5
    assert data.batches[0].shape == (1, 5, 2) and not data.padded

    three = apply_patch(spec, {"dataset": {"points": [*own, [0.0, 5.0, 2]]}})
    assert three.n_classes == 3 and ex.arch_for(three).output == "softmax" and ex.arch_for(three).n_outputs == 3


# --------------------------------------------------------------------------- carry_over (live edits)


@pytest.fixture(scope="module")
def adam_run():
    """A run whose optimizer has a state worth keeping."""
    return Run({"training": {"optimizer": "adam", "learning_rate": 0.01}}).train(5)


def test_learning_rate_change_keeps_params_and_optimizer_state(adam_run):
    new, report = adam_run.edit({"training": {"learning_rate": 0.001}})
    assert new.cfg == adam_run.cfg  # same compiled program
    assert _leaves_equal(new.state.params, adam_run.state.params)
    assert _leaves_equal(new.state.opt_state, adam_run.state.opt_state)
    assert int(new.state.opt_state[0].count) == 5 * adam_run.data.steps_per_epoch
    assert report["optimizer_state"] == "kept"
    assert report["kept"] == 25 and report["initialized"] == 0


def test_activation_change_keeps_params(adam_run):
    new, report = adam_run.edit({"network": {"hidden": [{"units": 4, "activation": "relu"}, {"units": 2}]}})
    assert new.cfg.arch.hidden == ((4, "relu"), (2, "tanh"))
    assert _leaves_equal(new.state.params, adam_run.state.params)
    assert report["initialized"] == 0


def test_optimizer_change_keeps_params_and_resets_the_optimizer(adam_run):
    new, report = adam_run.edit({"training": {"optimizer": "momentum"}})
    assert _leaves_equal(new.state.params, adam_run.state.params)
    assert report["optimizer_state"] == "reinitialized"
    # heavy-ball momentum starts with zero velocity
    assert all(not np.any(np.asarray(v)) for v in jax.tree_util.tree_leaves(new.state.opt_state))


def test_adding_a_neuron_keeps_every_old_weight(adam_run):
    old = adam_run.state.params
    new, report = adam_run.edit({"network": {"hidden": [{"units": 5}, {"units": 2}]}})
    p = new.state.params
    np.testing.assert_array_equal(p[0]["w"][:, :4], old[0]["w"])
    np.testing.assert_array_equal(p[0]["b"][:4], old[0]["b"])
    np.testing.assert_array_equal(p[1]["w"][:4], old[1]["w"])
    np.testing.assert_array_equal(p[1]["b"], old[1]["b"])
    np.testing.assert_array_equal(p[2]["w"], old[2]["w"])
    np.testing.assert_array_equal(p[2]["b"], old[2]["b"])
    assert report["optimizer_state"] == "reinitialized"
    assert report["kept"] == 25 and report["kept"] + report["initialized"] == count_params(p)
    # the fresh optimizer state has the new shapes and starts from zero
    assert int(new.state.opt_state[0].count) == 0
    assert new.state.opt_state[0].mu[0]["w"].shape == (2, 5)


def test_feature_change_remaps_input_rows(adam_run):
    old = adam_run.state.params
    new, report = adam_run.edit({"features": ["x2", "x1_sq"]})
    p = new.state.params
    np.testing.assert_array_equal(p[0]["w"][0], old[0]["w"][1])  # x2 was row 1, now row 0
    assert not np.array_equal(p[0]["w"][1], old[0]["w"][0])  # x1_sq is a new input: fresh weights
    np.testing.assert_array_equal(p[1]["w"], old[1]["w"])
    assert report["initialized"] == 4
    assert report["optimizer_state"] == "reinitialized"


# --------------------------------------------------------------------------- frames and predictions


@pytest.fixture(scope="module")
def default_frame(default_run):
    return ex.frame_arrays(default_run.cfg, default_run.state, default_run.data, default_run.h)


def test_frame_shapes(default_frame):
    f = default_frame
    assert f["output"].dtype == np.uint8 and f["output"].shape == (100, 100)
    assert f["neurons"].dtype == np.uint8 and f["neurons"].shape == (4 + 2, 25, 25)
    assert f["grad_norms"].shape == (3,)
    assert np.isfinite(f["grad_norms"]).all() and (f["grad_norms"] > 0).all()
    # a trained circle classifier paints both colours
    assert f["output"].min() < 64 and f["output"].max() > 191


def test_neuron_maps_are_each_hidden_units_response(default_run, default_frame):
    # neurons[k] is unit k (layer by layer, input side first) over the 25 × 25 grid, row 0 at the top
    run = default_run
    x = featurize(grid_points(NEURON_RESOLUTION), run.spec.features)
    _, extras = apply_mlp(run.state.params, jax.numpy.asarray(x), run.cfg.arch, with_activations=True)
    acts = np.concatenate([np.asarray(a) for a in extras["activations"]], axis=1)  # (625, 6)
    want = acts.T.reshape(-1, NEURON_RESOLUTION, NEURON_RESOLUTION)
    got = np.asarray(dequantize(default_frame["neurons"]))
    np.testing.assert_allclose(got, want, atol=1 / 255 + 1e-6)


def test_frame_losses_equal_metrics(default_run, default_frame):
    m = default_run.metrics()
    for k in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
        assert np.isfinite(default_frame[k])
        assert float(default_frame[k]) == pytest.approx(m[k], abs=1e-5), k


def test_softmax_frame_holds_class_probabilities(blobs_run):
    f = ex.frame_arrays(blobs_run.cfg, blobs_run.state, blobs_run.data, blobs_run.h)
    assert f["output"].dtype == np.uint8 and f["output"].shape == (3, 100, 100)
    probs = np.asarray(dequantize(f["output"], 0.0, 1.0))
    # three probabilities, each quantized to within half a step (1/510) → the sum to within 3/510
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=3 / 510 + 1e-6)
    assert set(np.unique(probs.argmax(axis=0))) == {0, 1, 2}  # every class owns part of the map


def _cells(step=7):
    """(row, col) of a spread of output-map cells and their centres."""
    rc = [(r, c) for r in range(3, OUTPUT_RESOLUTION, step) for c in range(5, OUTPUT_RESOLUTION, step)]
    centres = grid_points(OUTPUT_RESOLUTION)[[r * OUTPUT_RESOLUTION + c for r, c in rc]]
    return rc, centres


def test_predict_points_agrees_with_the_output_map(default_run, default_frame):
    rc, centres = _cells()
    # the centres are where they should be: row 0 at the top (y = +6), column 0 at the left (x = -6)
    step = 12.0 / OUTPUT_RESOLUTION
    assert centres[0].tolist() == pytest.approx([-6 + 5.5 * step, 6 - 3.5 * step])
    pred = ex.predict_points(default_run.cfg, default_run.state, default_run.spec, centres)
    assert pred.shape == (len(rc),)
    shown = np.array([default_frame["output"][r, c] for r, c in rc], np.float64)
    sure = np.abs(pred) > 0.02  # away from the boundary, where a half-step of quantization cannot flip it
    assert sure.sum() > len(rc) // 2 and (pred[sure] > 0).any() and (pred[sure] < 0).any()
    np.testing.assert_array_equal(shown[sure] > 127.5, pred[sure] > 0)
    # and the map is the prediction quantized
    np.testing.assert_allclose(np.asarray(dequantize(shown.astype(np.uint8))), np.clip(pred, -1, 1), atol=1 / 255)


def test_predict_points_agrees_with_the_softmax_map(blobs_run):
    f = ex.frame_arrays(blobs_run.cfg, blobs_run.state, blobs_run.data, blobs_run.h)
    rc, centres = _cells()
    pred = ex.predict_points(blobs_run.cfg, blobs_run.state, blobs_run.spec, centres)
    assert pred.shape == (len(rc), 3)
    shown = np.stack([f["output"][:, r, c] for r, c in rc]).astype(np.float64) / 255.0
    np.testing.assert_allclose(shown, pred, atol=1 / 255)
