"""Tests for server/ml/train.py: optimizers agree with optax, traced hyperparameters never recompile,
epochs and padding, Rosenblatt's rule, divergence, regularization and dropout."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from server.engines import mlp as experiment
from server.ml.models import Arch, apply_mlp, init_mlp
from server.ml.train import (
    OPTIMIZERS,
    SEQUENTIAL_BYTES,
    TrainConfig,
    epoch_runs,
    evaluate,
    hyper,
    init_state,
    perceptron_step,
    sgd_step,
    train_epochs,
)
from server.spec import ExperimentSpec, apply_patch

ARCH = Arch(2, ((3, "tanh"),), "tanh", 1)
LR, MOMENTUM = 0.1, 0.9
# Unrolling the inner scan is a speed knob that changes no result; unroll=1 compiles several times faster,
# so tests that only look at what an epoch computes use it (test_an_epoch_is_the_sequence_of_batch_steps and
# test_experiment.py keep the production default).
FAST = {"unroll": 1}


def _data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    y = np.where(x[:, 0] * x[:, 1] > 0, 1.0, -1.0).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y)


def _params(arch=ARCH, seed=0):
    return init_mlp(jax.random.PRNGKey(seed), arch)


def _full_batch(x, y):
    return x, y, jnp.ones((x.shape[0],), jnp.float32)


def _close(a, b, atol=1e-6, msg=""):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=0, atol=atol, err_msg=msg)


def _same(a, b):
    return all(
        np.array_equal(np.asarray(u), np.asarray(v))
        for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    )


# sgd_step jitted once per TrainConfig (cfg is hashable), as train_epochs uses it.
step = jax.jit(sgd_step, static_argnums=3)


# --------------------------------------------------------------------------- optimizers vs optax

REFERENCE = {
    "sgd": lambda: optax.sgd(LR),
    "momentum": lambda: optax.sgd(LR, momentum=MOMENTUM),
    "nesterov": lambda: optax.sgd(LR, momentum=MOMENTUM, nesterov=True),
    "rmsprop": lambda: optax.rmsprop(LR),
    "adam": lambda: optax.adam(LR),
    "adamw": lambda: optax.adamw(LR, weight_decay=1e-4),
    "adagrad": lambda: optax.adagrad(LR),
}


def test_optimizer_table_is_the_documented_one():
    assert set(OPTIMIZERS) == set(REFERENCE)
    for name, opt in OPTIMIZERS.items():
        assert set(opt.uses) <= {"learning_rate", "momentum", "reg_rate", "dropout"}, name
        assert "learning_rate" in opt.uses, name


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_optimizer_matches_optax(name):
    # A batch where no gradient component is near 0: rmsprop/adam/adagrad divide by √(g²), so a tiny
    # component's last-bit rounding (which differs between two compiled programs) would be amplified.
    x, y = _data(seed=3)
    p0 = _params()

    # the loss written out here: ½ (tanh(logit) − y)², mean over the batch
    def loss(p):
        logits, _ = apply_mlp(p, x, ARCH)
        return jnp.mean(0.5 * (jnp.tanh(logits[:, 0]) - y) ** 2)

    opt = REFERENCE[name]()

    @jax.jit  # one compile; op by op, optax's many small operations cost more
    def reference(p):
        grads, s = [], opt.init(p)
        for _ in range(3):
            grads.append(jax.grad(loss)(p))
            updates, s = opt.update(grads[-1], s, p)
            p = optax.apply_updates(p, updates)
        return p, grads[0]

    p, g0 = reference(p0)
    assert min(float(jnp.abs(g).min()) for g in jax.tree_util.tree_leaves(g0)) > 1e-2

    cfg = TrainConfig(ARCH, optimizer=name)
    state = init_state(cfg, p0, jax.random.PRNGKey(0))
    for _ in range(3):
        state = step(state, _full_batch(x, y), hyper(LR, MOMENTUM), cfg)
    assert not _same(state.params, p0), "no update happened"
    _close(state.params, p, msg=name)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_momentum_knob_matters_exactly_when_the_optimizer_uses_it(name):
    # GET /api/v1/optimizers tells clients which knobs each optimizer reads (its "uses" list);
    # that must be the truth.
    x, y = _data()
    cfg = TrainConfig(ARCH, optimizer=name)
    results = []
    for m in (0.5, 0.9):
        state = init_state(cfg, _params(), jax.random.PRNGKey(0))
        for _ in range(2):  # momentum acts from the second step on
            state = step(state, _full_batch(x, y), hyper(LR, m), cfg)
        results.append(state.params)
    assert (not _same(*results)) == ("momentum" in OPTIMIZERS[name].uses)


def test_momentum_description_names_the_optimizers_that_read_it():
    # What the API documents for training.momentum must match what the engine does with it.
    described = ExperimentSpec.model_fields["training"].annotation.model_fields["momentum"].description
    readers = sorted(n for n, o in OPTIMIZERS.items() if "momentum" in o.uses)
    named = sorted(n for n in OPTIMIZERS if n in described.replace(",", " ").split())
    assert named == readers, (
        f"spec.py documents training.momentum as {described!r}, but only {readers} read it"
        " (OPTIMIZERS[name].uses in train.py)"
    )


# --------------------------------------------------------------------------- no recompiles


def test_changing_hyperparameters_does_not_recompile():
    # An architecture no other test uses, so that this test's first call is a compile whatever ran before.
    arch = Arch(2, ((3, "softplus"),), "tanh", 1)
    x, y = _data(20)
    batches = experiment.make_batches(np.asarray(x), np.asarray(y), 5)
    cfg = TrainConfig(arch, optimizer="momentum", regularization="l2", dropout=True, **FAST)
    state = init_state(cfg, _params(arch), jax.random.PRNGKey(0))

    before = train_epochs._cache_size()
    _, state, _, _ = train_epochs(cfg, state, epoch_runs(batches), hyper(0.03, 0.9), jnp.int32(2))
    compiled = train_epochs._cache_size()
    assert compiled == before + 1
    # turn every traced knob, run a different number of epochs, feed the returned state back in
    for h, n in [(hyper(0.3, 0.5), 1), (hyper(1e-4, 0.0, reg_rate=0.1), 3), (hyper(0.01, 0.99, 0.5, 0.5), 5)]:
        _, state, ok, _ = train_epochs(cfg, state, epoch_runs(batches), h, jnp.int32(n))
        assert bool(ok)
    assert train_epochs._cache_size() == compiled, "a hyperparameter change recompiled train_epochs"

    # a structural change (optimizer) is a new program
    cfg2 = TrainConfig(arch, optimizer="adam", regularization="l2", dropout=True, **FAST)
    state2 = init_state(cfg2, _params(arch), jax.random.PRNGKey(0))
    train_epochs(cfg2, state2, epoch_runs(batches), hyper(0.03), jnp.int32(1))
    assert train_epochs._cache_size() == compiled + 1


# --------------------------------------------------------------------------- epochs, batches, padding


def test_one_epoch_is_ceil_n_over_b_updates():
    x, y = _data(23)
    batches = experiment.make_batches(np.asarray(x), np.asarray(y), 5)
    assert batches[0].shape == (math.ceil(23 / 5), 5, 2)
    assert np.asarray(batches[2]).sum() == 23  # mask marks the real rows

    # adam counts its updates
    cfg = TrainConfig(ARCH, optimizer="adam", **FAST)
    state = init_state(cfg, _params(), jax.random.PRNGKey(0))
    done, state, ok, _ = train_epochs(cfg, state, epoch_runs(batches), hyper(0.01), jnp.int32(2))
    assert int(done) == 2 and bool(ok)
    assert int(state.opt_state[0].count) == 2 * 5


def test_an_epoch_is_the_sequence_of_batch_steps():
    x, y = _data(23)
    batches = experiment.make_batches(np.asarray(x), np.asarray(y), 5)
    cfg = TrainConfig(ARCH)
    state0 = init_state(cfg, _params(), jax.random.PRNGKey(0))
    _, trained, _, _ = train_epochs(cfg, state0, epoch_runs(batches), hyper(0.1), jnp.int32(1))
    manual = state0
    for i in range(5):
        manual = step(manual, tuple(b[i] for b in batches), hyper(0.1), cfg)
    _close(trained.params, manual.params)

    # the last batch holds 3 real rows: it is the mean over those 3, not over 5
    last = tuple(b[4] for b in batches)
    real = tuple(b[:3] for b in last)
    before = step(state0, tuple(b[3] for b in batches), hyper(0.1), cfg)
    _close(step(before, last, hyper(0.1), cfg).params, step(before, real, hyper(0.1), cfg).params)


@pytest.mark.parametrize(
    ("n", "batch", "features", "runs"),
    [(250, 10, 2, 5), (250, 10, 7, 25), (230, 10, 2, 23), (200, 100, 2, 1)],
)
def test_an_epoch_split_into_small_runs_is_still_every_step_in_order(n, batch, features, runs):
    # The epoch is cut into runs of whole steps small enough for XLA's sequential CPU executor; the result
    # must be the plain sequence of steps, batch after batch, whatever the cut.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, features)).astype(np.float32)
    y = np.where(x[:, 0] * x[:, 1] > 0, 1.0, -1.0).astype(np.float32)
    batches = experiment.make_batches(x, y, batch)
    runs_ = epoch_runs(batches)
    assert len(runs_) == runs
    for part in range(3):  # x, y, mask: every step, in order
        assert np.array_equal(np.concatenate([r[part] for r in runs_]), np.asarray(batches[part]))
    if runs > 1:
        assert all(a.nbytes <= SEQUENTIAL_BYTES for r in runs_ for a in r)
    arch = Arch(features, ((4, "tanh"), (3, "relu")), "tanh", 1)
    cfg = TrainConfig(arch, optimizer="adam")
    state0 = init_state(cfg, _params(arch), jax.random.PRNGKey(0))
    _, trained, _, _ = train_epochs(cfg, state0, runs_, hyper(0.05), jnp.int32(2))
    manual = state0
    for _ in range(2):
        for i in range(batches[0].shape[0]):
            manual = step(manual, tuple(b[i] for b in batches), hyper(0.05), cfg)
    _close(trained.params, manual.params, atol=2e-6)
    _close(trained.opt_state, manual.opt_state, atol=2e-6)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_padded_rows_have_no_influence(batch_norm):
    arch = Arch(2, ((3, "tanh"),), "tanh", 1, batch_norm=batch_norm)
    x, y = _data(23)
    xs, ys, mask = experiment.make_batches(np.asarray(x), np.asarray(y), 5)
    assert np.asarray(mask)[-1].tolist() == [1, 1, 1, 0, 0]
    junk_x = xs.at[-1, 3:].set(jnp.array([[7.0, -9.0], [100.0, 3.0]]))
    junk_y = ys.at[-1, 3:].set(jnp.array([1.0, -1.0]))
    cfg = TrainConfig(arch, optimizer="momentum", **FAST)
    state = init_state(cfg, _params(arch), jax.random.PRNGKey(0))
    _, a, _, _ = train_epochs(cfg, state, epoch_runs((xs, ys, mask)), hyper(0.1), jnp.int32(3))
    _, b, _, _ = train_epochs(cfg, state, epoch_runs((junk_x, junk_y, mask)), hyper(0.1), jnp.int32(3))
    assert _same(a.params, b.params), "padding rows changed the weights"
    assert _same(a.bn_state, b.bn_state), "padding rows changed the batch-norm statistics"


def test_whole_batches_skip_the_mask_but_train_the_same():
    # 25 rows in batches of 5: no padding, so the engine may skip the masking arithmetic (padded=False)
    x, y = _data(25)
    batches = experiment.make_batches(np.asarray(x), np.asarray(y), 5)
    assert np.asarray(batches[2]).all()
    cfg = TrainConfig(ARCH, optimizer="momentum", **FAST)
    state = init_state(cfg, _params(), jax.random.PRNGKey(0))
    _, masked, _, _ = train_epochs(cfg, state, epoch_runs(batches), hyper(0.1), jnp.int32(3), True)
    _, unmasked, _, _ = train_epochs(cfg, state, epoch_runs(batches), hyper(0.1), jnp.int32(3), False)
    _close(masked.params, unmasked.params, atol=1e-6)


def test_build_data_marks_padding():
    spec = ExperimentSpec()  # 250 training points in batches of 10: whole batches
    assert not experiment.build_data(spec).padded
    data = experiment.build_data(apply_patch(spec, {"training": {"batch_size": 7}}))
    assert data.padded and data.steps_per_epoch == math.ceil(250 / 7)
    assert int(np.asarray(data.batches[2]).sum()) == 250


# --------------------------------------------------------------------------- perceptron rule


def _perceptron(w, b):
    arch = Arch(2, (), "sign", 1)
    cfg = TrainConfig(arch, algorithm="perceptron")
    params = [{"w": jnp.array(w, jnp.float32), "b": jnp.array(b, jnp.float32)}]
    return cfg, init_state(cfg, params, jax.random.PRNGKey(0))


def test_perceptron_moves_w_by_eta_t_minus_o_x_on_a_mistake():
    cfg, state = _perceptron([[0.5], [-1.0]], [0.25])
    eta = 0.5
    # x = (1, 2): w·x + b = 0.5 − 2 + 0.25 < 0, so o = −1 but t = +1
    x, t = np.array([1.0, 2.0], np.float32), 1.0
    new = perceptron_step(state, (jnp.asarray([x]), jnp.array([t]), jnp.ones(1)), hyper(eta), cfg)
    dw = eta * (t - (-1.0)) * x
    np.testing.assert_array_equal(np.asarray(new.params[0]["w"])[:, 0], np.array([0.5, -1.0]) + dw)
    np.testing.assert_array_equal(np.asarray(new.params[0]["b"]), [0.25 + eta * (t - (-1.0))])
    # and the other way: t = −1 predicted +1
    x2 = np.array([2.0, 0.0], np.float32)  # 1 + 0.25 > 0 → o = +1
    new2 = perceptron_step(state, (jnp.asarray([x2]), jnp.array([-1.0]), jnp.ones(1)), hyper(eta), cfg)
    np.testing.assert_array_equal(np.asarray(new2.params[0]["w"])[:, 0], np.array([0.5, -1.0]) - 2 * eta * x2)


def test_perceptron_leaves_a_correct_point_alone():
    cfg, state = _perceptron([[0.5], [-1.0]], [0.25])
    for x, t in [([2.0, 0.0], 1.0), ([1.0, 2.0], -1.0)]:
        new = perceptron_step(state, (jnp.array([x]), jnp.array([t]), jnp.ones(1)), hyper(0.5), cfg)
        assert _same(new.params, state.params), (x, t)
    # a padded row (mask 0) is ignored even when it is misclassified
    new = perceptron_step(state, (jnp.array([[1.0, 2.0]]), jnp.array([1.0]), jnp.zeros(1)), hyper(0.5), cfg)
    assert _same(new.params, state.params)


# --------------------------------------------------------------------------- divergence


@pytest.fixture(scope="module")
def diverging():
    """A relu regression net with a learning rate far too large (0.03 is the default): after epoch 1 the
    weights and the training loss are finite (loss ~1e33), after epoch 2 the loss has overflowed to inf
    while the weights are still finite, epoch 4 leaves non-finite weights."""
    spec = apply_patch(
        ExperimentSpec(),
        {
            "problem": "regression",
            "dataset": {"name": "plane"},
            "network": {"hidden": [{"units": 8, "activation": "relu"}] * 2},
            "training": {"learning_rate": 3.0},
        },
    )
    cfg, data = experiment.config_for(spec), experiment.build_data(spec)
    return spec, cfg, data, experiment.init_train_state(spec, cfg), experiment.hyper_for(spec)


def test_huge_learning_rate_diverges_and_advance_returns_finite_weights(diverging):
    spec, cfg, data, state, h = diverging
    done, _, ok, _ = train_epochs(cfg, state, data.runs, h, jnp.int32(50), data.padded)
    assert not bool(ok)
    assert 1 <= int(done) < 50  # stops at the first epoch that leaves non-finite weights

    adv = experiment.advance(cfg, state, data, h, 50)
    assert adv.diverged
    # the bad epoch is dropped: at most done − 1 epochs count
    assert 0 <= adv.epochs <= int(done) - 1
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree_util.tree_leaves(adv.state.params))
    # those weights are the run's state after adv.epochs epochs, with a finite training loss
    _, replay, ok, _ = train_epochs(cfg, state, data.runs, h, jnp.int32(adv.epochs), data.padded)
    assert bool(ok) and _same(replay.params, adv.state.params)
    m = experiment.metrics(cfg, adv.state, data, spec.problem)
    assert m["train_loss"] is not None
    assert m["train_accuracy"] is None and m["test_accuracy"] is None  # regression has no accuracy


def test_advance_after_divergence_returns_the_last_epoch_with_finite_loss(diverging):
    # advance promises "the last state whose weights and training loss are finite, and how many epochs
    # led to it" — here that is epoch 1, although epochs 2 and 3 (finite weights, infinite loss) sit
    # between it and the epoch where train_epochs stopped.
    _, cfg, data, state, h = diverging
    done, _, _, _ = train_epochs(cfg, state, data.runs, h, jnp.int32(50), data.padded)

    def healthy(k):
        """Weights and training loss after k epochs are finite."""
        _, s, ok, _ = train_epochs(cfg, state, data.runs, h, jnp.int32(k), data.padded)
        loss, _ = evaluate(cfg, s.params, s.bn_state, data.x_train, data.y_train)
        return bool(ok) and bool(jnp.isfinite(loss))

    last_good = max(k for k in range(int(done) + 1) if healthy(k))
    assert last_good >= 1 and not healthy(int(done) - 1), "test premise: the scenario described above"
    adv = experiment.advance(cfg, state, data, h, 50)
    assert adv.diverged
    assert adv.epochs == last_good, (
        f"experiment.advance returned the state after {adv.epochs} epochs, but epoch {last_good} is the last"
        f" one with finite weights and training loss (train_epochs stopped at epoch {int(done)})"
    )


# --------------------------------------------------------------------------- regularization


def test_l2_step_is_plain_step_minus_lr_rate_w_on_weights_only():
    x, y = _data()
    p0 = _params()
    p0[0]["b"] = jnp.array([0.3, -0.2, 0.1], jnp.float32)  # non-zero biases, so decay on them would show
    lr, rate = 0.1, 0.3
    plain_cfg, l2_cfg = TrainConfig(ARCH), TrainConfig(ARCH, regularization="l2")
    key = jax.random.PRNGKey(0)
    plain = step(init_state(plain_cfg, p0, key), _full_batch(x, y), hyper(lr, reg_rate=rate), plain_cfg)
    l2 = step(init_state(l2_cfg, p0, key), _full_batch(x, y), hyper(lr, reg_rate=rate), l2_cfg)
    for layer_l2, layer_plain, layer0 in zip(l2.params, plain.params, p0, strict=True):
        np.testing.assert_allclose(layer_l2["w"], layer_plain["w"] - lr * rate * layer0["w"], atol=1e-6)
        np.testing.assert_allclose(layer_l2["b"], layer_plain["b"], atol=1e-7)
    assert not _same(l2.params, plain.params)


def test_l1_step_subtracts_lr_rate_sign_w():
    x, y = _data()
    p0 = _params()
    lr, rate = 0.1, 0.3
    plain_cfg, l1_cfg = TrainConfig(ARCH), TrainConfig(ARCH, regularization="l1")
    key = jax.random.PRNGKey(0)
    plain = step(init_state(plain_cfg, p0, key), _full_batch(x, y), hyper(lr, reg_rate=rate), plain_cfg)
    l1 = step(init_state(l1_cfg, p0, key), _full_batch(x, y), hyper(lr, reg_rate=rate), l1_cfg)
    for layer_l1, layer_plain, layer0 in zip(l1.params, plain.params, p0, strict=True):
        np.testing.assert_allclose(layer_l1["w"], layer_plain["w"] - lr * rate * jnp.sign(layer0["w"]), atol=1e-6)
        np.testing.assert_allclose(layer_l1["b"], layer_plain["b"], atol=1e-7)


# --------------------------------------------------------------------------- dropout


def test_dropout():
    x, y = _data()
    p0 = _params()
    off, on = TrainConfig(ARCH), TrainConfig(ARCH, dropout=True)

    def run(cfg, rate, seed):
        state = init_state(cfg, p0, jax.random.PRNGKey(seed))
        return step(state, _full_batch(x, y), hyper(0.1, dropout=rate), cfg)

    baseline = run(off, 0.0, 0)
    # rate 0: dropout layers exist but drop nothing and scale by 1
    # (equal up to float rounding: the two programs are compiled differently)
    _close(run(on, 0.0, 0).params, baseline.params, atol=1e-7, msg="dropout rate 0 changed the step")
    _close(run(on, 0.0, 7).params, baseline.params, atol=1e-7)
    # rate 0.5: a different step, decided by the key, reproducible with the same key
    a, b, c = run(on, 0.5, 0), run(on, 0.5, 0), run(on, 0.5, 1)
    assert not _same(a.params, baseline.params)
    assert _same(a.params, b.params)
    assert not _same(a.params, c.params)
    # the key advances, so the next step draws a new mask
    assert not np.array_equal(np.asarray(a.key), np.asarray(jax.random.PRNGKey(0)))


def test_the_training_program_records_the_metrics_on_the_way():
    # records at every 4th epoch and the last: each equals the metrics of the run stopped there
    spec = ExperimentSpec.model_validate({"dataset": {"name": "xor", "n": 120}, "network": {"hidden": [{"units": 3}]}})
    cfg, data = experiment.config_for(spec), experiment.build_data(spec)
    state, h = experiment.init_train_state(spec, cfg), experiment.hyper_for(spec)
    test = (data.x_test, data.y_test)
    done, _, ok, records = train_epochs(cfg, state, data.runs, h, jnp.int32(10), data.padded, 0, test, jnp.int32(4))
    rows = np.asarray(records[0])
    assert int(done) == 10 and bool(ok)
    assert rows[:, 0].tolist()[:4] == [4, 8, 10, -1] and (rows[3:, 0] == -1).all()
    for epoch, *values in rows[:3]:
        _, s, _, _ = train_epochs(cfg, state, data.runs, h, jnp.int32(int(epoch)), data.padded)
        m = experiment.metrics(cfg, s, data, spec.problem)
        expected = [m["train_loss"], m["test_loss"], m["train_accuracy"], m["test_accuracy"]]
        np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-6)
    # without a test set the test columns are NaN, the training columns still measured
    _, _, _, alone = train_epochs(cfg, state, data.runs, h, jnp.int32(3), data.padded, 0, None, jnp.int32(1))
    alone = np.asarray(alone[0])
    assert np.isnan(alone[:3, [2, 4]]).all() and np.isfinite(alone[:3, [1, 3]]).all()
