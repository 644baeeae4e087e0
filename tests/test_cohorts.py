"""Turns taken together (server/sessions/cohorts.py, server/ml/cohort.py): sessions of one network on one
dataset train in one compiled call and are drawn in another, and each ends where it would have alone — its
weights, epochs, metrics and frame; one that diverges in the cohort takes its turn alone and stops at its last
finite weights; a class of sessions playing past the worker threads is served in cohorts, every one framed."""

from __future__ import annotations

import contextlib
import time

import numpy as np

from server.frames import decode_binary
from server.ml import cohort
from server.sessions import scheduler
from tests.conftest import SESSIONS, create_session

REGRESSION = {
    "problem": "regression",
    "dataset": {"name": "plane"},
    "network": {"hidden": [{"units": 8, "activation": "relu"}] * 3},
}


def _session(client, spec):
    sid, auth = create_session(client, spec)
    return client.app.state.sessions.get(sid), sid, auth  # type: ignore[attr-defined]


def _weights(client, sid):
    return [np.asarray(layer["w"]) for layer in client.get(f"{SESSIONS}/{sid}/weights").json()["layers"]]


def test_a_cohort_trains_each_session_as_it_would_train_alone_and_a_diverging_one_alone(client) -> None:
    manager = client.app.state.sessions  # type: ignore[attr-defined]
    specs = [{**REGRESSION, "training": {"learning_rate": lr}, "seed": seed} for lr, seed in ((0.01, 0), (0.03, 1))]
    specs.append({**REGRESSION, "training": {"learning_rate": 10.0}, "seed": 2})  # diverges
    made = [_session(client, spec) for spec in specs]
    assert len({id(s.data) for s, _, _ in made}) == 1, "one dataset: the sessions share it"
    boxes = [manager.subscribe(s) for s, _, _ in made[:2]]  # watched: their frames are drawn together
    requests = [(s, 30, True) for s, _, _ in made]
    turns = scheduler.take_turns(manager.runner, requests, frozenset(cohort.SIZES))
    (a, sid_a, _), (b, sid_b, _), (bad, _, _) = made
    assert [t.epochs for t in turns] == [30, 30, 30]
    assert a.epoch == b.epoch == 30 and turns[0].ok and turns[1].ok
    assert not turns[2].ok and bad.status == "diverged" and bad.epoch < 30
    assert all(np.isfinite(np.asarray(w)).all() for layer in bad.state.params for w in layer.values())
    for s, sid, spec in ((a, sid_a, specs[0]), (b, sid_b, specs[1])):
        alone, auth = create_session(client, spec)
        assert client.post(f"{SESSIONS}/{alone}/train", json={"epochs": 30}, headers=auth).is_success
        for mine, theirs in zip(_weights(client, sid), _weights(client, alone), strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)
        single = client.get(f"{SESSIONS}/{alone}").json()["metrics"]
        for key in ("train_loss", "test_loss"):
            np.testing.assert_allclose(s.metrics[key], single[key], rtol=1e-4)
    # the frames drawn together are each session's own (decoded as a client reads them)
    for turn, s, sid in ((turns[0], a, sid_a), (turns[1], b, sid_b)):
        header, arrays = decode_binary(turn.message.wire())
        assert header["epoch"] == 30 and header["id"] == s.id
        assert header["metrics"] == {k: s.metrics[k] for k in header["metrics"]}
        np.testing.assert_allclose(arrays["w0"], _weights(client, sid)[0], rtol=1e-6)
        assert arrays["neurons"].shape == (24, 25, 25) and arrays["output"].dtype == np.uint8
    for (s, _, _), box in zip(made, boxes, strict=False):
        manager.unsubscribe(s, box)


def test_a_class_playing_past_the_threads_is_served_in_cohorts_every_socket_framed(make_client) -> None:
    client = make_client(worker_threads=2)
    manager = client.app.state.sessions  # type: ignore[attr-defined]
    sessions = [create_session(client) for _ in range(6)]
    epochs = {}
    with contextlib.ExitStack() as stack:
        sockets = []
        for sid, auth in sessions:
            token = auth["Authorization"].removeprefix("Bearer ")
            ws = stack.enter_context(client.websocket_connect(f"/ws/sessions/{sid}?token={token}"))
            ws.send_json({"action": "play"})
            sockets.append((sid, ws))
        deadline = time.monotonic() + 120
        cohorts = manager.runner.cohorts
        while not cohorts.ready:  # the cohort programs compile in the background (turns go one by one meanwhile)
            assert time.monotonic() < deadline, dict(cohorts.calls)
            time.sleep(0.1)
        before = sum(n for size, n in cohorts.calls.items() if size >= 2)
        while sum(n for size, n in cohorts.calls.items() if size >= 2) < before + 5:  # then turns go together
            assert time.monotonic() < deadline, dict(cohorts.calls)
            time.sleep(0.05)
        for sid, ws in sockets:  # every socket keeps getting frames, each further on
            seen = []
            while len(seen) < 3:
                message = ws.receive()
                if message.get("bytes") is not None:
                    seen.append(decode_binary(message["bytes"])[0]["epoch"])
            assert seen == sorted(seen) and seen[-1] > 0, seen
            epochs[sid] = seen[-1]
            ws.send_json({"action": "pause"})
    assert all(e > 0 for e in epochs.values())


def test_opening_a_class_compiles_the_cohort_programs_of_its_network_ahead(make_client) -> None:
    """The students' copies of the presenter's session will play together: their programs compile as the class
    opens, every size, before any student has joined."""
    client = make_client(warm_start=False)
    manager = client.app.state.sessions  # type: ignore[attr-defined]
    sid, auth = create_session(client, {"network": {"hidden": [{"units": 5, "activation": "tanh"}]}})
    assert client.post("/api/v1/classes", json={"session_id": sid}, headers=auth).status_code == 201
    program = manager.get(sid).program_key
    deadline = time.monotonic() + 300
    while not all((program, size) in manager.runner.cohorts.ready for size in cohort.SIZES):
        assert time.monotonic() < deadline, sorted(size for p, size in manager.runner.cohorts.ready if p == program)
        time.sleep(0.2)
