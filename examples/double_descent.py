"""Double descent, reproduced through the REST API: a width sweep on a small noisy regression set.

Sixty-four networks (8 widths of one hidden layer × 8 seeds) train on the same 30 noisy points, each in
one of 8 vmapped compiled programs (one per width), about 10 seconds on two cores the first time (the
compiles), a second after. The mean test loss rises while the width approaches the size where a network
can fit every training point, then falls again as the width grows on: the curve of the lectures.

    python examples/double_descent.py [http://127.0.0.1:8000]
"""

from __future__ import annotations

import statistics
import sys
import time

import httpx

FEATURES = ["x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2"]
WIDTHS = [1, 2, 4, 8, 12, 16, 32, 64]
SWEEP = {
    "name": "double descent: test loss against width",
    "base": {
        "problem": "regression",
        "dataset": {"name": "plane", "n": 60, "noise": 50},  # 30 training points, half of them noise
        "features": FEATURES,
        "network": {"hidden": [{"units": 12, "activation": "tanh"}]},
        "training": {"optimizer": "adam", "learning_rate": 0.01, "batch_size": 30},  # whole batches
    },
    "grid": {"network.hidden": [[w] for w in WIDTHS], "seed": list(range(8))},
    "epochs": 2000,
    "record_every": 100,
}


def run(api: httpx.Client, sweep: dict = SWEEP) -> dict[int, float]:
    """Start the sweep, wait for it, and return the mean final test loss for each width."""
    made = api.post("/api/v1/sweeps", json=sweep).raise_for_status().json()
    while True:
        state = api.get(made["url"], params={"history": False}).raise_for_status().json()
        if state["status"] not in ("queued", "running"):
            break
        time.sleep(0.5)
    assert state["status"] == "done", state["error"]
    losses: dict[int, list[float]] = {}
    for c in state["configurations"]:
        losses.setdefault(c["params"]["network.hidden"][0], []).append(c["final"]["test_loss"])
    return {width: statistics.mean(values) for width, values in sorted(losses.items())}


def main(url: str = "http://127.0.0.1:8000") -> None:
    with httpx.Client(base_url=url, timeout=60) as api:
        curve = run(api)
    top = max(curve.values())
    print("width  test loss")
    for width, loss in curve.items():
        print(f"{width:5d}  {loss:.3f}  {'#' * round(40 * loss / top)}")


if __name__ == "__main__":
    main(*sys.argv[1:])
