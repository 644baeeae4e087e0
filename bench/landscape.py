"""Loss-landscape figures on the biggest MLP: a 51×51 slice and the Hessian's top eigenvalue, with the
formulations we did not take side by side.

`python -m bench.landscape` prints one JSON object. Not a test: nothing here fails because the machine is
slow. The net: spiral, the 7 input features, six hidden layers of 8 tanh, 500 training points.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from bench.timing import best
from server.engines import mlp as ex
from server.ml import landscape as ls
from server.ml import probes as opt
from server.ml.models import apply_mlp
from server.ml.train import per_example_loss
from server.spec import ExperimentSpec

ALL_FEATURES = ["x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2"]
BIGGEST_500 = ExperimentSpec.model_validate(
    {
        "dataset": {"name": "spiral", "n": 1000},  # 50 % train: 500 training points
        "features": ALL_FEATURES,
        "network": {"hidden": [{"units": 8, "activation": "tanh"}] * 6},
    }
)
RESOLUTION = 51
HESSIAN_ITERS = 20


def apply_mlp_loss(arch, loss, x, y, bn_state) -> ls.LossFn:
    """The alternative loss: ``apply_mlp``'s (batch, features) layout, as ``train.evaluate`` computes it."""

    def loss_fn(params):
        logits, _ = apply_mlp(params, x, arch, bn_state=bn_state)
        return per_example_loss(logits, y, arch.output, loss).mean()

    return loss_fn


LOSSES: dict[str, Callable[..., ls.LossFn]] = {"mlp_data_loss": ls.mlp_data_loss, "apply_mlp": apply_mlp_loss}


def hessian_linearize(loss_fn: ls.LossFn, params, key: jax.Array, iters: int = HESSIAN_ITERS) -> jax.Array:
    """The alternative power iteration: linearize grad once, then apply the linear map every step."""
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    _, hvp = jax.linearize(jax.grad(loss_fn), params)
    v0 = jax.random.normal(key, flat.shape)
    v0 = v0 / jnp.linalg.norm(v0)

    def step(_, carry):
        v, _ = carry
        hv = jax.flatten_util.ravel_pytree(hvp(unravel(v)))[0]
        return hv / jnp.linalg.norm(hv), jnp.vdot(v, hv)

    return jax.lax.fori_loop(0, iters, step, (v0, jnp.zeros(())))[1]


def _ms(fn: Callable[[], Any], repeats: int = 7) -> float:
    jax.block_until_ready(fn())  # compile and warm up
    return round(1000 * best(lambda: jax.block_until_ready(fn()), repeats), 2)


def landscape_figures() -> dict[str, float]:
    """``landscape_51_ms`` (a paused session's slice: ``loss_slice`` with its default method over
    ``mlp_data_loss``, in one band per core at once), ``hessian_top_ms`` (20 power iterations), and the
    alternatives under suffixed keys: ``_one_thread`` the same slice as one compiled call,
    ``_rows``/``_vmap``/``_mapN`` slice methods (N cells per vmapped step), ``_apply_mlp`` the loss in
    ``apply_mlp``'s layout, ``_linearize`` the Hessian through one ``jax.linearize``."""
    spec = BIGGEST_500
    cfg, data = ex.config_for(spec), ex.build_data(spec)
    state = ex.init_train_state(spec, cfg)
    arch, loss, bn = cfg.arch, cfg.loss, state.bn_state
    params, x, y = state.params, data.x_train, data.y_train
    d1 = ls.filter_normalized_direction(jax.random.key(1), params)
    d2 = ls.filter_normalized_direction(jax.random.key(2), params)
    axis = jnp.linspace(-1.0, 1.0, RESOLUTION)

    def slice_ms(loss_name: str, method: str, batch_size: int) -> float:
        @jax.jit
        def run(params, x, y, d1, d2, alphas, betas):
            loss_fn = LOSSES[loss_name](arch, loss, x, y, bn)
            return ls.loss_slice(loss_fn, params, d1, d2, alphas, betas, method=method, batch_size=batch_size)

        return _ms(lambda: run(params, x, y, d1, d2, axis, axis))

    def hessian_ms(loss_name: str, power: Callable = ls.hessian_top_eigenvalue) -> float:
        @jax.jit
        def run(params, x, y, key):
            return power(LOSSES[loss_name](arch, loss, x, y, bn), params, key, HESSIAN_ITERS)

        return _ms(lambda: run(params, x, y, jax.random.key(0)))

    default = (ls.DEFAULT_SLICE_METHOD, ls.DEFAULT_BATCH)
    # What a paused session computes: the slice in bands, one per core, at once (optimization.slice_grid).
    bands = opt.SLICE_THREADS
    figures = {"landscape_51_ms": _ms(lambda: opt.slice_grid(cfg, params, d1, d2, bn, x, y, 1.0, RESOLUTION, bands))}
    figures["landscape_51_threads"] = bands
    figures["landscape_51_ms_one_thread"] = slice_ms("mlp_data_loss", *default)
    figures["landscape_51_ms_rows"] = slice_ms("mlp_data_loss", "rows", 0)
    figures["landscape_51_ms_vmap"] = slice_ms("mlp_data_loss", "vmap", 0)
    for n in (1, 3, 9, 17, 51):
        figures[f"landscape_51_ms_map{n}"] = slice_ms("mlp_data_loss", "map", n)
    figures["landscape_51_ms_apply_mlp"] = slice_ms("apply_mlp", *default)
    figures["landscape_51_ms_apply_mlp_rows"] = slice_ms("apply_mlp", "rows", 0)
    figures["hessian_top_ms"] = hessian_ms("mlp_data_loss")
    figures["hessian_top_ms_linearize"] = hessian_ms("mlp_data_loss", hessian_linearize)
    figures["hessian_top_ms_apply_mlp"] = hessian_ms("apply_mlp")
    return figures


if __name__ == "__main__":
    print(json.dumps(landscape_figures()))
