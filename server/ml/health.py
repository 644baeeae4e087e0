"""Gradient health per layer and what it means in plain words, generic over the models' params pytrees
(lists of layer dicts; a neuron or filter is the last axis of a ``"w"`` leaf).

- ``gradient_health``: per-layer numbers in one jit-friendly call — gradient and weight norms, update/weight
  ratio, dead-ReLU and saturated shares, NaN/Inf counts;
- ``diagnose``: findings as codes and numbers with suggested spec patches (host side; pure and
  deterministic); ``server/engines/diagnosis.py`` puts them in words.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Params = Any  # a pytree of arrays: list of layer dicts

# ----------------------------------------------------------------------------------------- gradient health

DEAD = ("relu",)  # output ≤ 0 exactly where the slope is 0: a unit that never fires learns nothing
# Flat regions where the slope is < ~2 % of the activation's maximum slope.
SATURATED: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sigmoid": lambda h: (h < 0.01) | (h > 0.99),  # σ' = σ(1 − σ) < 0.0099 (max ¼)
    "tanh": lambda h: jnp.abs(h) > 0.99,  # tanh' = 1 − tanh² < 0.02 (max 1)
    "piecewise_linear": lambda h: (h <= 0.0) | (h >= 1.0),  # slope exactly 0
}
SATURATED_SHARE = 0.9  # a unit is saturated when flat on at least this share of examples (and positions)


def _norm(a: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.sum(a * a))


def _nonfinite(tree: Params) -> jax.Array:
    return sum((jnp.sum(~jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)), jnp.int32(0))


def _unit_fraction(flags: jax.Array) -> jax.Array:
    """Share of units (last axis) whose flag holds for every example and position."""
    return jnp.mean(jnp.all(flags, axis=tuple(range(flags.ndim - 1))).astype(jnp.float32))


def _unit_stats(act: jax.Array | None, name: str | None) -> tuple[jax.Array, jax.Array]:
    """(dead share, saturated share) of one layer's units from its activations (batch, ..., units)."""
    zero = jnp.float32(0)
    if act is None:
        return zero, zero
    dead = _unit_fraction(act <= 0) if name in DEAD else zero
    if name not in SATURATED:
        return dead, zero
    flat = SATURATED[name](act).astype(jnp.float32)
    share = jnp.mean(flat, axis=tuple(range(flat.ndim - 1)))  # (units,)
    return dead, jnp.mean((share >= SATURATED_SHARE).astype(jnp.float32))


def gradient_health(
    grads: Params,
    params: Params,
    updates: Params | None = None,
    activations: Sequence[jax.Array] = (),
    activation_names: Sequence[str | None] = (),
) -> dict[str, jax.Array]:
    """Per-layer gradient health of every layer with a ``"w"`` (jit-friendly; arrays of shape (L,)).

    ``activations[i]`` and ``activation_names[i]`` belong to ``params[i]`` (an MLP's hidden layers, then
    nothing for the output layer; a CNN's layers, with None for pool/flatten): ``apply_mlp(...,
    with_activations=True)`` / ``apply_cnn`` give them. Keys:

    - ``layer`` index into params, ``units`` neurons/filters (the last axis of w);
    - ``grad_norm`` ‖∂L/∂w‖, ``weight_norm`` ‖w‖, ``update_ratio`` ‖Δw‖/‖w‖ (only with ``updates``;
      +Inf when w = 0 and Δw ≠ 0);
    - ``dead_fraction``: share of ReLU units ≤ 0 on every example (and position) of the batch;
    - ``saturated_fraction``: share of sigmoid/tanh/piecewise-linear units in a flat region (slope < 2 %
      of its maximum: sigmoid outside [0.01, 0.99], |tanh| > 0.99) on ≥ 90 % of examples;
    - ``nonfinite_grads``, ``nonfinite_params``: NaN/Inf entries in the layer's leaves; the scalars
      ``nonfinite_grads_total``/``nonfinite_params_total`` cover every leaf (batch-norm layers too).
    """
    rows: dict[str, list] = {k: [] for k in ("layer", "units", "grad_norm", "weight_norm", "update_ratio")}
    rows |= {k: [] for k in ("dead_fraction", "saturated_fraction", "nonfinite_grads", "nonfinite_params")}
    for i, layer in enumerate(params):
        if "w" not in layer:
            continue
        w = layer["w"]
        rows["layer"].append(i)
        rows["units"].append(w.shape[-1])
        rows["grad_norm"].append(_norm(grads[i]["w"]))
        rows["weight_norm"].append(_norm(w))
        if updates is not None:
            u, wn = _norm(updates[i]["w"]), _norm(w)
            rows["update_ratio"].append(
                jnp.where(wn > 0, u / jnp.where(wn > 0, wn, 1.0), jnp.where(u > 0, jnp.inf, 0.0))
            )
        act = activations[i] if i < len(activations) else None
        dead, saturated = _unit_stats(act, activation_names[i] if i < len(activation_names) else None)
        rows["dead_fraction"].append(dead)
        rows["saturated_fraction"].append(saturated)
        rows["nonfinite_grads"].append(_nonfinite(grads[i]))
        rows["nonfinite_params"].append(_nonfinite(layer))
    if updates is None:
        del rows["update_ratio"]
    health = {k: jnp.asarray(v, jnp.int32 if k in ("layer", "units") else None) for k, v in rows.items()}
    health["nonfinite_grads_total"] = _nonfinite(grads)
    health["nonfinite_params_total"] = _nonfinite(params)
    return health


# -------------------------------------------------------------------------------------------- diagnoses

VANISHING_RATIO = 1e-3  # first layer's gradient norm below this share of the last layer's
EXPLODING_RATIO = 1e3  # ... or above this multiple
UNIT_ALERT = 0.5  # report a layer when at least half its units are dead or saturated


def _lower_lr(learning_rate: float | None) -> list[dict[str, Any]]:
    return [] if learning_rate is None else [{"learning_rate": float(f"{learning_rate / 10:.3g}")}]


def diagnose(
    health: Mapping[str, Any],
    activation_names: Sequence[str | None],
    init: str | None = None,
    learning_rate: float | None = None,
    fix_keys: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Findings from ``gradient_health`` as codes and numbers (host side; deterministic, in a fixed order:
    exploding, vanishing, then dead and saturated layers by depth). Words for people are written above
    server/ml, from these fields.

    Each finding: ``layer`` (index into params), ``kind`` ("exploding", "vanishing", "dead_relu",
    "saturated"), ``fixes``: alternative spec patches, each a small dict with keys among
    ``activation`` (every hidden layer), ``init``, ``learning_rate``, ``batch_norm``; and the facts behind
    it — exploding with NaN or Inf numbers: ``nonfinite`` true; vanishing / exploding growth: ``ratio``
    (first layer's gradient norm over the last's), ``last`` (the last layer's index), vanishing also
    ``causes`` (codes among "saturated", "dead", "sigmoid", "small_init", "zero_init");
    dead_relu / saturated: ``count`` of ``units`` and the layer's ``activation``.
    ``init``/``learning_rate``: the spec's, to tailor the fixes. ``fix_keys``: the keys the model can take
    (a CNN has no ``init`` or MLP-style ``batch_norm`` switch); fixes keep only those, and a finding whose
    fixes all go away is still reported, without a suggestion.
    """
    h = {k: np.asarray(v) for k, v in health.items()}
    layers, units, g = h["layer"].tolist(), h["units"], h["grad_norm"].astype(np.float64)
    names = [activation_names[i] if i < len(activation_names) else None for i in layers]
    hidden = sorted({n for n in names if n})
    out: list[dict[str, Any]] = []

    def add(pos: int, kind: str, fixes: list[dict[str, Any]], **facts: Any) -> None:
        if fix_keys is not None:
            kept = [{k: v for k, v in fix.items() if k in fix_keys} for fix in fixes]
            fixes = [fix for i, fix in enumerate(kept) if fix and fix not in kept[:i]]
        out.append({"layer": layers[pos], "kind": kind, "fixes": fixes, **facts})

    bad = np.flatnonzero((h["nonfinite_grads"] > 0) | (h["nonfinite_params"] > 0) | ~np.isfinite(g))
    stable = [*_lower_lr(learning_rate), {"batch_norm": True}]
    if bad.size or int(h["nonfinite_grads_total"]) or int(h["nonfinite_params_total"]):
        add(int(bad[0]) if bad.size else 0, "exploding", stable, nonfinite=True)
    elif len(layers) >= 2 and g[-1] > 0:
        ratio = float(g[0] / g[-1])
        if ratio < VANISHING_RATIO:
            causes = _vanishing_causes(h, names, init)
            add(0, "vanishing", _vanishing_fixes(hidden, init), ratio=ratio, last=layers[-1], causes=causes)
        elif ratio > EXPLODING_RATIO:
            add(0, "exploding", [*stable, {"init": "xavier"}], ratio=ratio, last=layers[-1])
    for pos, name in enumerate(names):
        n = int(units[pos])
        dead, sat = round(float(h["dead_fraction"][pos]) * n), round(float(h["saturated_fraction"][pos]) * n)
        if name in DEAD and dead >= UNIT_ALERT * n:
            fixes = [
                {"activation": "leaky_relu"},
                *_lower_lr(learning_rate),
                *([] if init == "he" else [{"init": "he"}]),
            ]
            add(pos, "dead_relu", fixes, count=dead, units=n, activation=name)
        if name in SATURATED and sat >= UNIT_ALERT * n:
            fixes = [{"activation": "relu", "init": "he"}, *stable]
            add(pos, "saturated", fixes, count=sat, units=n, activation=name)
    return out


def _vanishing_causes(h: dict[str, np.ndarray], names: Sequence[str | None], init: str | None) -> list[str]:
    causes = []
    if np.any(h["saturated_fraction"] >= UNIT_ALERT):
        causes.append("saturated")
    if np.any(h["dead_fraction"] >= UNIT_ALERT):
        causes.append("dead")
    if "sigmoid" in names:
        causes.append("sigmoid")
    if init == "normal":
        causes.append("small_init")
    elif init == "zeros":
        causes.append("zero_init")
    return causes


def _vanishing_fixes(hidden: Sequence[str], init: str | None) -> list[dict[str, Any]]:
    fixes: list[dict[str, Any]] = []
    if any(n in SATURATED for n in hidden):
        fixes.append({"activation": "relu", "init": "he"})
    if init in ("normal", "zeros"):
        fixes.append({"init": "he" if all(n in DEAD for n in hidden) else "xavier"})
    return [*fixes, {"batch_norm": True}]
