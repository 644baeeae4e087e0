"""Sweeps through REST and the stream: results equal single sessions, grouping by program, divergence,
early stopping, cancel, tokens, limits, the store, random search, CNNs."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.schemas import SweepPublic
from server.sweepspec import EarlyStop, SweepSpec, expand

SWEEPS = "/api/v1/sweeps"
SESSIONS = "/api/v1/sessions"
METRICS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")


def start(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(SWEEPS, json=body)
    assert r.status_code == 202, r.text
    created: dict[str, Any] = r.json()
    return created


def finish(client: TestClient, sweep_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll until the sweep is no longer queued or running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"{SWEEPS}/{sweep_id}").json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"sweep {sweep_id} still running after {timeout} s")


def run(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    return finish(client, start(client, body)["id"])


def single(client: TestClient, spec: dict[str, Any], epochs: int) -> dict[str, Any]:
    """The same spec as a single session trained over REST: its metrics."""
    r = client.post(SESSIONS, json=spec)
    assert r.status_code == 201, r.text
    s = r.json()
    auth = {"Authorization": f"Bearer {s['token']}"}
    r = client.post(f"{SESSIONS}/{s['id']}/train", json={"epochs": epochs}, headers=auth)
    assert r.status_code == 200, r.text
    metrics: dict[str, Any] = r.json()["metrics"]
    return metrics


def close(a: dict[str, Any], b: dict[str, Any], tol: float = 2e-5) -> None:
    for k in METRICS:
        if a[k] is None or b[k] is None:
            assert a[k] == b[k], k
        else:
            assert abs(a[k] - b[k]) <= tol * max(1.0, abs(b[k])), (k, a[k], b[k])


def test_each_configuration_ends_where_the_same_spec_ends_as_a_single_session(client):
    """Learning rates × seeds (one vmapped group), then the same specs one by one through sessions."""
    body = {"grid": {"training.learning_rate": [0.01, 0.1], "seed": [3, 4]}, "epochs": 150, "record_every": 10}
    sweep = run(client, body)
    assert sweep["status"] == "done" and sweep["groups"] == 1
    for c in sweep["configurations"]:
        assert c["status"] == "done" and c["epochs"] == 150
        assert [r["epoch"] for r in c["history"]] == list(range(10, 151, 10))
        spec = {"training": {"learning_rate": c["params"]["training.learning_rate"]}, "seed": c["params"]["seed"]}
        close(c["final"], single(client, spec, 150))
        assert c["final"] == {k: c["history"][-1][k] for k in METRICS}


def test_configurations_of_other_data_seeds_and_noise_train_together_and_still_match(client):
    base = {"dataset": {"name": "xor"}, "training": {"optimizer": "adam", "learning_rate": 0.01}}
    body = {"base": base, "grid": {"dataset.noise": [0, 30], "dataset.seed": [1, 2]}, "epochs": 60}
    sweep = run(client, body)
    assert sweep["groups"] == 1, "data seed and noise change values, not the program"
    for c in sweep["configurations"]:
        dataset = {"name": "xor", "noise": c["params"]["dataset.noise"], "seed": c["params"]["dataset.seed"]}
        close(c["final"], single(client, base | {"dataset": dataset}, 60))
    finals = {c["final"]["test_loss"] for c in sweep["configurations"]}
    assert len(finals) == 4, "each configuration trained on its own data"


def test_architectures_are_groups_of_their_own_run_one_after_another(client):
    body = {"grid": {"network.hidden": [[2], [6, 3], [4, 4]], "seed": [0, 1]}, "epochs": 40}
    made = start(client, body)
    seen = set()  # groups training at once, as the progress says while it runs (one here: lanes fill the threads)
    while (state := client.get(made["url"], params={"history": False}).json())["status"] in ("queued", "running"):
        seen.add(state["progress"]["groups_running"])
        time.sleep(0.02)
    assert seen <= {0, 1} and state["progress"]["groups_done"] == 3
    sweep = finish(client, made["id"])
    assert sweep["groups"] == 3
    groups = [c["group"] for c in sweep["configurations"]]
    assert groups == [0, 0, 1, 1, 2, 2]
    c = sweep["configurations"][2]
    assert c["params"]["network.hidden"] == [6, 3]
    hidden = [{"units": 6, "activation": "tanh"}, {"units": 3, "activation": "tanh"}]
    close(c["final"], single(client, {"network": {"hidden": hidden}, "seed": 0}, 40))


def test_a_diverging_configuration_is_marked_and_the_others_finish(client):
    base = {
        "problem": "regression",
        "dataset": {"name": "plane"},
        "network": {"hidden": [{"units": 8, "activation": "relu"}] * 3},
    }
    body = {"base": base, "grid": {"training.learning_rate": [0.001, 10.0]}, "epochs": 200}
    sweep = run(client, body)
    slow, fast = sweep["configurations"]
    assert slow["status"] == "done" and slow["epochs"] == 200
    assert fast["status"] == "diverged" and fast["epochs"] < 200
    assert sweep["status"] == "done"
    assert all(r["train_loss"] is None or np.isfinite(r["train_loss"]) for r in fast["history"])
    r = client.post(f"{SWEEPS}/{sweep['id']}/configurations/1/open")
    assert r.status_code == 201, r.text
    assert r.json()["epoch"] == fast["epochs"], "it opens at its last finite weights"


def test_successive_halving_stops_the_worst_at_each_rung():
    """Unit: the rungs, and the sweep's halving through REST below."""
    stop = EarlyStop(min_epochs=20, reduction_factor=3)
    assert stop.rungs(200) == [20, 60, 180]
    assert stop.rungs(60) == [20]


def test_early_stopping_keeps_the_best_third_at_each_rung(client):
    lrs = [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    body = {"grid": {"training.learning_rate": lrs}, "epochs": 200, "record_every": 10}
    body["early_stop"] = {"min_epochs": 20, "reduction_factor": 3}
    sweep = run(client, body)
    configs = sweep["configurations"]
    stopped = [c for c in configs if c["status"] == "stopped"]
    done = [c for c in configs if c["status"] == "done"]
    assert {c["epochs"] for c in stopped} <= {20, 60, 180}
    assert len([c for c in stopped if c["epochs"] == 20]) == 6, "9 reach the first rung, the best 3 go on"
    assert len(done) == 1 and done[0]["epochs"] == 200
    at_20 = {c["index"]: next(r["test_loss"] for r in c["history"] if r["epoch"] == 20) for c in configs}
    survivors = {c["index"] for c in configs if c["epochs"] > 20}
    assert survivors == set(sorted(at_20, key=at_20.__getitem__)[:3])
    # the work counts stopped configurations whole: the sweep is complete
    assert sweep["progress"]["done"] == sweep["progress"]["total"] == 9 * 200


def test_cancel_stops_at_once_and_needs_the_token(client):
    body = {"grid": {"training.learning_rate": [0.01, 0.02, 0.03], "seed": [0, 1]}, "epochs": 1_000_000}
    created = start(client, body)
    sweep_id = created["id"]
    deadline = time.monotonic() + 60
    while client.get(f"{SWEEPS}/{sweep_id}", params={"history": False}).json()["progress"]["done"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    client.cookies.delete(f"neuroglass_sweep_{sweep_id}")  # as another client: no cookie, the token is needed
    fresh = client
    assert fresh.delete(f"{SWEEPS}/{sweep_id}").status_code == 401
    assert fresh.delete(f"{SWEEPS}/{sweep_id}", headers={"Authorization": "Bearer nope"}).status_code == 403
    t0 = time.monotonic()
    r = fresh.delete(
        f"{SWEEPS}/{sweep_id}", params={"keep": True}, headers={"Authorization": f"Bearer {created['token']}"}
    )
    assert r.status_code == 204
    assert time.monotonic() - t0 < 5.0
    body_after = client.get(f"{SWEEPS}/{sweep_id}", params={"history": False}).json()
    assert body_after["status"] == "cancelled"
    assert {c["status"] for c in body_after["configurations"]} == {"cancelled"}
    done = body_after["progress"]["done"]
    time.sleep(1.0)
    assert client.get(f"{SWEEPS}/{sweep_id}", params={"history": False}).json()["progress"]["done"] == done
    # deleting (without keep) removes it
    assert (
        fresh.delete(f"{SWEEPS}/{sweep_id}", headers={"Authorization": f"Bearer {created['token']}"}).status_code == 204
    )
    assert client.get(f"{SWEEPS}/{sweep_id}").status_code == 404


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        ({"grid": {"training.nope": [1]}}, ["body", "grid", "training.nope"], "unknown field"),
        ({"grid": {"training": [1]}}, ["body", "grid", "training"], "group of fields"),
        (
            {"grid": {"training.learning_rate": [0.1, 100]}},
            ["body", "grid", "training.learning_rate"],
            "less than or equal to 10",
        ),
        ({"grid": {"training.optimizer": ["sgd", "newton"]}}, ["body", "grid", "training.optimizer"], "sgd"),
        ({"grid": {"training.learning_rate": []}}, ["body", "grid", "training.learning_rate"], "values"),
        (
            {
                "grid": {"seed": list(range(100))},
                "random": {"count": 20, "space": {"training.learning_rate": {"low": 0.001, "high": 1, "log": True}}},
            },
            ["body", "grid"],
            "2000 configurations",
        ),
        (
            {"grid": {"seed": [1]}, "random": {"count": 2, "space": {"seed": [1, 2]}}},
            ["body", "random", "seed"],
            "both",
        ),
        ({"epochs": 5000, "record_every": 1}, ["body", "record_every"], "record_every ≥ 5"),
        ({"grid": {"dataset.n": [100, 6000]}}, ["body", "grid", "dataset.n"], "5000"),
    ],
)
def test_bad_sweeps_are_422_naming_the_path(client, body, loc, words):
    r = client.post(SWEEPS, json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == loc, detail
    assert words in detail["msg"], detail


def test_limits_of_the_server(make_client):
    small = make_client(max_sweep_configurations=4, max_sweep_work=1000, max_sweeps_per_client=1)
    r = small.post(SWEEPS, json={"grid": {"seed": [0, 1, 2, 3, 4]}})
    assert r.status_code == 422 and "5 configurations" in r.text and "at most 4" in r.text
    r = small.post(SWEEPS, json={"grid": {"seed": [0, 1]}, "epochs": 600})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "epochs"]
    first = start(small, {"grid": {"seed": [0]}, "epochs": 1000})
    r = small.post(SWEEPS, json={"grid": {"seed": [1]}, "epochs": 10})
    assert r.status_code == 429, "one running sweep per client on this server"
    small.delete(f"{SWEEPS}/{first['id']}", headers={"Authorization": f"Bearer {first['token']}"})
    assert small.post(SWEEPS, json={"grid": {"seed": [1]}, "epochs": 10}).status_code == 202


def test_a_sweep_holds_only_its_share_of_the_worker_threads_and_sessions_train_beside_it(make_client):
    c = make_client(worker_threads=2, sweep_worker_share=0.5)
    assert c.app.state.sessions.sweeps.backend.limiter.total_tokens == 1
    created = start(c, {"grid": {"seed": list(range(8))}, "epochs": 1_000_000})
    try:
        metrics = single(c, {}, 200)
        assert metrics["train_loss"] is not None
        assert c.get(f"{SWEEPS}/{created['id']}", params={"history": False}).json()["status"] == "running"
    finally:
        c.delete(f"{SWEEPS}/{created['id']}", headers={"Authorization": f"Bearer {created['token']}"})


def test_the_stream_sends_progress_maps_and_done(client):
    created = start(client, {"grid": {"training.learning_rate": [0.01, 0.1]}, "epochs": 300, "record_every": 10})
    seen: list[dict[str, Any]] = []
    with client.websocket_connect(created["stream"]) as ws:
        while True:
            m = ws.receive_json()
            seen.append(m)
            if m["type"] == "done":
                break
    assert seen[0]["type"] == "hello" and seen[0]["sweep"]["id"] == created["id"]
    progress = [m for m in seen if m["type"] == "progress"]
    assert progress and progress[-1]["progress"]["fraction"] == 1.0
    fractions = [m["progress"]["fraction"] for m in progress]
    assert fractions == sorted(fractions)
    maps = [m["maps"] for m in progress if "maps" in m]
    assert maps, "a watched sweep sends its small decision maps"
    picture = maps[-1]
    assert picture["kind"] == "values" and set(picture["items"]) == {"0", "1"}
    import base64

    cells = np.frombuffer(base64.b64decode(picture["items"]["1"]), np.uint8)
    assert cells.size == picture["resolution"] ** 2
    assert cells.min() < 100 and cells.max() > 155, "a trained circle map has both colours"
    assert seen[-1]["status"] == "done"
    # the records as they came: together, every configuration's whole history, as GET gives it at the end
    streamed: dict[int, list[list[Any]]] = {0: [], 1: []}
    for m in progress:
        assert m["columns"] == ["epoch", *METRICS]
        for u in m["configurations"]:
            streamed[u["index"]].extend(u["records"])
    final = client.get(f"{SWEEPS}/{created['id']}").json()
    for c in final["configurations"]:
        assert streamed[c["index"]] == [[h[k] for k in ("epoch", *METRICS)] for h in c["history"]]
        assert [row[0] for row in streamed[c["index"]]] == list(range(10, 301, 10))


def test_results_download_as_csv_and_json(client):
    sweep = run(client, {"grid": {"training.learning_rate": [0.01, 0.1]}, "epochs": 20, "record_every": 10})
    r = client.get(f"{SWEEPS}/{sweep['id']}/results.csv")
    assert r.headers["content-type"].startswith("text/csv")
    lines = r.text.strip().splitlines()
    assert lines[0].split(",")[:5] == ["index", "status", "group", "epochs", "training.learning_rate"]
    assert len(lines) == 3 and lines[2].startswith("1,done,0,20,0.1,")
    history = client.get(f"{SWEEPS}/{sweep['id']}/results.csv", params={"history": True}).text.strip().splitlines()
    assert len(history) == 1 + 2 * 2 and history[0].split(",")[5] == "epoch"
    SweepPublic.model_validate(sweep)  # GET answers as built: it must still match its documented schema
    SweepPublic.model_validate(client.get(f"{SWEEPS}/{sweep['id']}", params={"history": False}).json())
    as_json = client.get(f"{SWEEPS}/{sweep['id']}/results.json").json()
    assert as_json["configurations"][1]["final"] == sweep["configurations"][1]["final"]


def test_an_opened_configuration_continues_from_its_trained_weights(client):
    sweep = run(client, {"grid": {"training.learning_rate": [0.03], "seed": [5]}, "epochs": 100})
    r = client.post(f"{SWEEPS}/{sweep['id']}/configurations/0/open")
    assert r.status_code == 201
    s = r.json()
    assert s["epoch"] == 100 and s["spec"]["seed"] == 5 and s["spec"]["training"]["learning_rate"] == 0.03
    close(s["metrics"], sweep["configurations"][0]["final"])
    auth = {"Authorization": f"Bearer {s['token']}"}
    on = client.post(f"{SESSIONS}/{s['id']}/train", json={"epochs": 50}, headers=auth).json()["metrics"]
    close(on, single(client, {"training": {"learning_rate": 0.03}, "seed": 5}, 150))
    assert client.post(f"{SWEEPS}/{sweep['id']}/configurations/7/open").status_code == 404


def test_finished_sweeps_outlive_the_server_and_unfinished_ones_say_interrupted(make_client, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'sweeps.sqlite'}"
    first = make_client(database_url=url)
    finished = run(first, {"grid": {"seed": [0, 1]}, "epochs": 30})
    running = start(first, {"grid": {"seed": [0, 1]}, "epochs": 1_000_000})
    first.__exit__(None, None, None)  # shut down: the running sweep is interrupted
    second = make_client(database_url=url)
    again = second.get(f"{SWEEPS}/{finished['id']}").json()
    assert again["status"] == "done" and again["configurations"] == finished["configurations"]
    assert second.get(f"{SWEEPS}/{running['id']}").json()["status"] == "interrupted"


def test_random_search_draws_the_same_points_for_the_same_seed_inside_the_ranges():
    space = {
        "training.learning_rate": {"low": 1e-4, "high": 1.0, "log": True},
        "network.hidden": [[2], [4]],
        "seed": {"low": 0, "high": 9, "integer": True},
    }
    spec = SweepSpec.model_validate(
        {"random": {"count": 40, "space": space, "seed": 7}, "grid": {"training.optimizer": ["sgd", "adam"]}}
    )
    configs = expand(spec, 1000)
    assert len(configs) == 80
    again = expand(spec, 1000)
    assert [c.params for c in configs] == [c.params for c in again]
    lrs = np.array([c.params["training.learning_rate"] for c in configs])
    assert lrs.min() >= 1e-4 and lrs.max() <= 1.0
    assert (lrs < 1e-2).mean() > 0.3, "log spacing: about half the draws are below 0.01"
    assert {c.params["seed"] for c in configs} <= set(range(10))
    assert all(isinstance(c.params["seed"], int) for c in configs)
    assert {len(c.spec.network.hidden) for c in configs} == {1}
    assert configs[0].spec.training.optimizer == "sgd" and configs[40].spec.training.optimizer == "adam"


def test_architectures_given_as_unit_counts_take_the_bases_activation():
    spec = SweepSpec.model_validate(
        {
            "base": {"network": {"hidden": [{"units": 3, "activation": "relu"}]}},
            "grid": {"network.hidden": [[5, 2], []]},
        }
    )
    a, b = expand(spec, 10)
    assert [(layer.units, layer.activation) for layer in a.spec.network.hidden] == [(5, "relu"), (2, "relu")]
    assert b.spec.network.hidden == []


def test_a_cnn_sweep_trains_and_matches_single_sessions(client):
    base = {
        "dataset": {"name": "bars", "n": 120},
        "network": {
            "kind": "cnn",
            "layers": [{"type": "conv", "filters": 2, "kernel": 3}, {"type": "pool"}, {"type": "flatten"}],
        },
        "training": {"batch_size": 20},
    }
    sweep = run(client, {"base": base, "grid": {"training.learning_rate": [0.01, 0.1]}, "epochs": 3, "record_every": 1})
    assert sweep["status"] == "done", sweep["error"]
    assert sweep["groups"] == 1
    for c in sweep["configurations"]:
        assert len(c["history"]) == 3
        spec = base | {"training": {"batch_size": 20, "learning_rate": c["params"]["training.learning_rate"]}}
        close(c["final"], single(client, spec, 3), tol=1e-4)
    r = client.get(f"{SWEEPS}/{sweep['id']}/maps").json()
    assert r["items"] == {}, "an image classifier has no decision map"


def test_sweeps_are_listed_newest_first(make_client, tmp_path):
    c = make_client(database_url=f"sqlite+aiosqlite:///{tmp_path / 'list.sqlite'}")
    first = run(c, {"name": "first", "grid": {"seed": [0, 1]}, "epochs": 10})
    second = run(c, {"name": "second", "grid": {"seed": [0, 1, 2]}, "epochs": 20})
    listed = c.get(SWEEPS).json()
    assert listed["total"] == 2
    assert [(i["id"], i["name"], i["total"], i["epochs"], i["status"]) for i in listed["items"]] == [
        (second["id"], "second", 3, 20, "done"),
        (first["id"], "first", 2, 10, "done"),
    ]
    assert c.get(SWEEPS, params={"limit": 1, "offset": 1}).json()["items"][0]["id"] == first["id"]


def test_a_cancelled_configuration_opens_where_it_stopped(client):
    created = start(client, {"grid": {"seed": [0, 1]}, "epochs": 1_000_000})
    deadline = time.monotonic() + 60
    while client.get(f"{SWEEPS}/{created['id']}", params={"history": False}).json()["progress"]["done"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    auth = {"Authorization": f"Bearer {created['token']}"}
    assert client.delete(f"{SWEEPS}/{created['id']}", params={"keep": True}, headers=auth).status_code == 204
    sweep = finish(client, created["id"])
    assert sweep["progress"]["fraction"] < 1.0, "what was cancelled did not train"
    trained = sweep["configurations"][1]["epochs"]
    assert sweep["progress"]["done"] == 2 * trained
    r = client.post(f"{SWEEPS}/{created['id']}/configurations/1/open")
    assert r.status_code == 201 and r.json()["epoch"] == trained


def test_weights_past_the_limit_are_not_kept_and_opening_says_so(make_client):
    c = make_client(sweep_state_bytes=250)  # the default net's state: 25 weights and the key, 108 bytes
    sweep = run(c, {"grid": {"seed": [0, 1, 2, 3]}, "epochs": 5})
    opened = [c.post(f"{SWEEPS}/{sweep['id']}/configurations/{k}/open").status_code for k in range(4)]
    assert opened.count(201) >= 1 and opened.count(409) >= 1
    r = c.post(f"{SWEEPS}/{sweep['id']}/configurations/{opened.index(409)}/open")
    assert "were not kept" in r.json()["detail"]
