"""Sweeps as a script meets them: a real server process and an httpx client. The same configurations run
as one sweep (``POST /api/v1/sweeps``, polled until done) and one after another through the single-session
path (create, train, delete), in one run, each after a warm-up of its own shape; beside them, the vmapped
program in this process with other block sizes (``server.ml.sweep.train_population``)."""

from __future__ import annotations

import tempfile
import time
from typing import Any

import httpx
import jax
import jax.numpy as jnp

from bench.timing import best
from bench.ws import BIGGEST, server
from server.engines import cnn, mlp
from server.ml import sweep as population
from server.presets import PRESETS
from server.spec import ExperimentSpec

SWEEPS, SESSIONS = "/api/v1/sweeps", "/api/v1/sessions"
EPOCHS = 100
RECORD_EVERY = 10  # as the sweeps issue's example: a record every 10 epochs
LRS16 = [round(0.001 * 1.5**i, 6) for i in range(16)]


def _sweep_seconds(c: httpx.Client, body: dict[str, Any]) -> float:
    """POST to done, as a script polling GET would see it."""
    t = time.perf_counter()
    made = c.post(SWEEPS, json=body).raise_for_status().json()
    while True:
        state = c.get(f"{SWEEPS}/{made['id']}", params={"history": False}).json()
        if state["status"] not in ("queued", "running"):
            break
        time.sleep(0.005)
    seconds = time.perf_counter() - t
    assert state["status"] == "done", state
    c.delete(f"{SWEEPS}/{made['id']}", headers={"Authorization": f"Bearer {made['token']}"})
    return seconds


def _one_by_one_seconds(c: httpx.Client, specs: list[dict[str, Any]]) -> float:
    """The same configurations through sessions, one after another: create, train, delete."""
    t = time.perf_counter()
    for spec in specs:
        made = c.post(SESSIONS, json=spec).raise_for_status().json()
        auth = {"Authorization": f"Bearer {made['token']}"}
        c.post(f"{SESSIONS}/{made['id']}/train", json={"epochs": EPOCHS}, headers=auth).raise_for_status()
        c.delete(f"{SESSIONS}/{made['id']}", headers=auth).raise_for_status()
    return time.perf_counter() - t


def _specs(base: dict[str, Any], grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """What the sweep's grid expands to, as session specs (through the sweep's own expansion)."""
    from server.sweepspec import SweepSpec, expand

    configs = expand(SweepSpec.model_validate({"base": base, "grid": grid, "epochs": EPOCHS}), 10_000)
    return [cfg.spec.model_dump(mode="json") for cfg in configs]


def _compare(c: httpx.Client, name: str, base: dict[str, Any], grid: dict[str, list[Any]]) -> dict[str, float]:
    body = {"base": base, "grid": grid, "epochs": EPOCHS, "record_every": RECORD_EVERY}
    specs = _specs(base, grid)
    _sweep_seconds(c, body)  # compiled (and every block size it uses)
    _one_by_one_seconds(c, specs[:2])
    swept = min(_sweep_seconds(c, body) for _ in range(3))
    sequential = _one_by_one_seconds(c, specs)
    n = len(specs)
    return {
        f"{name}_configurations": n,
        f"{name}_seconds": round(swept, 3),
        f"{name}_sequential_seconds": round(sequential, 3),
        f"{name}_speedup": round(sequential / swept, 1),
        f"{name}_config_epochs_per_s": round(n * EPOCHS / swept),
    }


def _blocks(spec: ExperimentSpec, size: int, blocks: tuple[int, ...], epochs: int = EPOCHS) -> dict[str, float]:
    """Configuration·epochs per second of the vmapped program alone for other block sizes (in this process)."""
    engine = cnn if spec.network.kind == "cnn" else mlp
    cfg, data = engine.config_for(spec), engine.build_data(spec)
    gd, _ = engine.sweep_data(cfg, data)
    states = population.stack([engine.init_train_state(spec.model_copy(update={"seed": s}), cfg) for s in range(size)])
    h = population.stack([engine.hyper_for(spec)] * size)
    alive = jnp.ones((size,), bool)
    out = {}
    for b in blocks:

        def call(b: int = b) -> Any:
            args = (jnp.int32(epochs), jnp.int32(0), jnp.int32(10), jnp.int32(epochs), data.padded, True, b)
            return jax.block_until_ready(population.train_population(cfg, states, alive, gd, h, *args))

        call()
        out[str(b)] = round(size * epochs / best(call, repeats=3), 1)
    return out


def sweep_figures() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as cache, server(cache) as base, httpx.Client(base_url=base, timeout=300) as c:
        figures: dict[str, Any] = {}
        figures |= _compare(c, "sweep_256", {}, {"training.learning_rate": LRS16, "seed": list(range(16))})
        figures |= _compare(c, "sweep_spiral_256", BIGGEST, {"training.learning_rate": LRS16, "seed": list(range(16))})
        widths = [[w] for w in (1, 2, 3, 4, 6, 8, 12, 16)]
        figures |= _compare(c, "sweep_width_8_groups", {}, {"network.hidden": widths, "seed": list(range(8))})
    default_block = population.block_size(10, mlp.config_for(ExperimentSpec()).arch.sizes)
    spiral = ExperimentSpec.model_validate(BIGGEST)
    spiral_block = population.block_size(10, mlp.config_for(spiral).arch.sizes)
    figures["sweep_block_default"] = default_block
    figures["sweep_block_spiral"] = spiral_block
    figures["sweep_config_epochs_per_s"] = figures["sweep_256_config_epochs_per_s"]  # the name for it
    figures["sweep_256_by_block_config_epochs_per_s"] = _blocks(ExperimentSpec(), 256, (1, 8, default_block, 64, 256))
    figures["sweep_spiral_64_by_block_config_epochs_per_s"] = _blocks(spiral, 64, (1, spiral_block, 16, 64))
    # CNNs: one configuration at a time against vmapped blocks (server.ml.sweep.cnn_block_size chooses)
    for name, size, blocks, epochs in (("cnn-bars-edges", 8, (1, 2, 4, 8), 4), ("cnn-convnetjs", 4, (1, 2, 4), 1)):
        spec = ExperimentSpec.model_validate(PRESETS[name]["spec"])
        key = name.removeprefix("cnn-").replace("-", "_")
        figures[f"sweep_cnn_{key}_block"] = cnn.sweep_data(cnn.config_for(spec), cnn.build_data(spec))[1]
        figures[f"sweep_cnn_{key}_by_block_config_epochs_per_s"] = _blocks(spec, size, blocks, epochs)
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(sweep_figures(), indent=1))
