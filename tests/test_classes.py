"""A live classroom over REST and its stream: opening a class on a session, joining by code, lock / release /
pause-all, forks that continue from the presenter's weights, challenges scored from metrics and spec limits,
spotlight, removal, tokens, limits, and the class kept in the store across a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.sessions.classroom import CODE_ALPHABET, CODE_LENGTH
from tests.conftest import SESSIONS, make_settings

CLASSES = "/api/v1/classes"
SPIRAL = {"dataset": {"name": "spiral", "n": 200}, "network": {"hidden": [{"units": 6, "activation": "tanh"}] * 2}}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(warm_start=False, joins_per_minute=1000, max_classes_per_client=100)


def _session(client: TestClient, spec: dict[str, Any] | None = None) -> tuple[str, str]:
    body = client.post(SESSIONS, json=spec or {}).json()
    return body["id"], body["token"]


def _open(client: TestClient, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    sid, token = _session(client, spec)
    r = client.post(CLASSES, json={"session_id": sid, "name": "Tuesday"}, headers=bearer(token))
    assert r.status_code == 201, r.text
    return r.json() | {"presenter_token": token}


def _join(client: TestClient, code: str, name: str = "Ada") -> dict[str, Any]:
    r = client.post(f"{CLASSES}/join", json={"code": code, "name": name})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _fork(client: TestClient, c: dict[str, Any], st: dict[str, Any]) -> Any:
    return client.post(f"{CLASSES}/{c['id']}/students/{st['student_id']}/fork", headers=bearer(st["student_token"]))


def _teach(client: TestClient, c: dict[str, Any], verb: str, method: str = "post", **kw: Any) -> dict[str, Any]:
    r = client.request(method.upper(), f"{CLASSES}/{c['id']}/{verb}", headers=bearer(c["teacher_token"]), **kw)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _until(check: Callable[[], Any], seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return found


def test_a_class_opens_on_a_session_its_owner_holds_with_a_short_readable_code(client):
    sid, token = _session(client)
    assert client.post(CLASSES, json={"session_id": sid}).status_code == 401
    assert client.post(CLASSES, json={"session_id": sid}, headers=bearer("nope")).status_code == 403
    c = client.post(CLASSES, json={"session_id": sid, "name": "Tuesday"}, headers=bearer(token)).json()
    assert len(c["code"]) == CODE_LENGTH and set(c["code"]) <= set(CODE_ALPHABET)
    assert not set("0O1IL") & set(CODE_ALPHABET)
    assert c["presenter_id"] == sid and c["mode"] == "following" and c["status"] == "open"
    assert c["join_url"] == f"/join?code={c['code']}"
    public = client.get(f"{CLASSES}/{c['id']}").json()
    assert "teacher_token" not in public and public["code"] == c["code"]
    assert client.get(f"{CLASSES}/{c['id']}/dashboard", headers=bearer(token)).status_code == 403
    assert client.get(f"{CLASSES}/{c['id']}/dashboard", headers=bearer(c["teacher_token"])).status_code == 200


def test_students_join_by_code_as_typed_and_bad_codes_and_names_say_why(client):
    c = _open(client)
    loose = f" {c['code'][:3].lower()}-{c['code'][3:].lower()} "
    ada = _join(client, loose, "Ada")
    assert ada["class_id"] == c["id"] and ada["class"]["following"] == c["presenter_id"]
    assert _join(client, c["code"], "Ada")["name"] == "Ada (2)"
    r = client.post(f"{CLASSES}/join", json={"code": "ZZZZZZ", "name": "Bob"})
    assert r.status_code == 404 and "no class has the code" in r.json()["detail"]
    r = client.post(f"{CLASSES}/join", json={"code": c["code"], "name": "x" * 41})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"]
    r = client.post(f"{CLASSES}/join", json={"code": c["code"], "name": "   "})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"]


def test_guessing_codes_is_rate_limited_but_a_class_behind_one_address_joins(make_client):
    client = make_client(warm_start=False, joins_per_minute=5, max_class_students=40)
    c = _open(client)
    # a whole class from one school address: 40 students, far more than 5 a minute, all join
    answers = [client.post(f"{CLASSES}/join", json={"code": c["code"], "name": f"s{i}"}) for i in range(40)]
    assert [r.status_code for r in answers] == [201] * 40
    # someone guessing codes from that address: 5 wrong ones a minute, then 429, right codes too
    wrong = "".join("A" if ch != "A" else "B" for ch in c["code"])
    guesses = [client.post(f"{CLASSES}/join", json={"code": wrong, "name": "x"}) for _ in range(7)]
    assert [r.status_code for r in guesses] == [404] * 5 + [429] * 2
    detail = guesses[-1].json()["detail"]
    assert "too many wrong codes" in detail and "at most 5 a minute" in detail
    assert client.post(f"{CLASSES}/join", json={"code": c["code"], "name": "late"}).status_code == 429


def test_a_flood_of_joins_from_one_client_is_rate_limited(make_client):
    client = make_client(warm_start=False, joins_per_minute=2, max_class_students=3)
    c = _open(client)
    answers = [client.post(f"{CLASSES}/join", json={"code": c["code"], "name": f"s{i}"}) for i in range(8)]
    # twice the roster's size of attempts a minute (3 join, then the class is full), then 429
    assert [r.status_code for r in answers] == [201] * 3 + [409] * 3 + [429] * 2
    assert "too many joins" in answers[-1].json()["detail"] and "at most 6 a minute" in answers[-1].json()["detail"]


def test_one_client_runs_a_bounded_number_of_classes_and_a_class_a_bounded_roster(make_client):
    client = make_client(warm_start=False, max_classes_per_client=2, max_class_students=2)
    first, _ = _open(client), _open(client)
    sid, token = _session(client)
    r = client.post(CLASSES, json={"session_id": sid}, headers=bearer(token))
    assert r.status_code == 429 and "at most 2 classes" in r.json()["detail"]
    _join(client, first["code"], "a"), _join(client, first["code"], "b")
    r = client.post(f"{CLASSES}/join", json={"code": first["code"], "name": "c"})
    assert r.status_code == 409 and "full (2 students)" in r.json()["detail"]
    _teach(client, first, "end")  # an ended class no longer counts
    assert client.post(CLASSES, json={"session_id": sid}, headers=bearer(token)).status_code == 201


def test_an_expired_code_no_longer_joins_and_the_class_is_kept_as_ended(make_client):
    client = make_client(warm_start=False, class_hours=1 / 3600)  # one second
    c = _open(client)
    time.sleep(1.2)
    r = client.post(f"{CLASSES}/join", json={"code": c["code"], "name": "Late"})
    assert r.status_code == 404 and r.json()["detail"].endswith("has ended: its code has expired")
    assert client.get(f"{CLASSES}/{c['id']}").json()["status"] == "ended"


def test_release_lets_students_fork_from_the_presenters_weights_and_lock_brings_them_back(client):
    c = _open(client, SPIRAL)
    presenter = c["presenter_id"]
    assert client.post(
        f"{SESSIONS}/{presenter}/train", json={"epochs": 40}, headers=bearer(c["presenter_token"])
    ).is_success
    st = _join(client, c["code"])
    r = _fork(client, c, st)
    assert r.status_code == 409 and "not released" in r.json()["detail"]
    assert _teach(client, c, "release")["mode"] == "released"
    fork = _fork(client, c, st).json()
    assert fork["epoch"] == 40 and fork["spec"] == client.get(f"{SESSIONS}/{presenter}").json()["spec"]
    mine = client.get(f"{SESSIONS}/{fork['id']}/weights").json()["layers"]
    theirs = client.get(f"{SESSIONS}/{presenter}/weights").json()["layers"]
    for a, b in zip(mine, theirs, strict=True):
        np.testing.assert_array_equal(np.asarray(a["w"]), np.asarray(b["w"]))
    # the fork is the student's: they train it, the presenter's stays where it was
    assert client.post(f"{SESSIONS}/{fork['id']}/play", headers=bearer(fork["token"])).status_code == 200
    assert client.get(f"{SESSIONS}/{presenter}").json()["epoch"] == 40
    locked = _teach(client, c, "lock")
    assert locked["mode"] == "following" and locked["following"] == presenter
    assert client.get(f"{SESSIONS}/{fork['id']}").json()["status"] == "paused"
    # locked means locked for any client: the student's own copy does not train, by REST or over its socket
    for verb in ("play", "step"):
        r = client.post(f"{SESSIONS}/{fork['id']}/{verb}", headers=bearer(fork["token"]))
        assert r.status_code == 409 and "locked the class" in r.json()["detail"], r.text
    r = client.post(f"{SESSIONS}/{fork['id']}/train", json={"epochs": 5}, headers=bearer(fork["token"]))
    assert r.status_code == 409
    with client.websocket_connect(f"/ws/sessions/{fork['id']}?token={fork['token']}") as ws:
        ws.send_json({"action": "play", "ref": 7})
        while True:  # past the hello, the first frame (binary) and any status note, to the answer of ref 7
            m = ws.receive()
            if m.get("text") and json.loads(m["text"]).get("ref") == 7:
                break
        answer = json.loads(m["text"])
        assert answer["type"] == "error" and "locked the class" in answer["message"]
    assert client.get(f"{SESSIONS}/{fork['id']}").json()["status"] == "paused"
    _teach(client, c, "release")  # released again: their copy is theirs
    assert client.post(f"{SESSIONS}/{fork['id']}/step", headers=bearer(fork["token"])).status_code == 200


def test_pause_all_pauses_the_presenter_and_every_students_session(client):
    c = _open(client)
    _teach(client, c, "release")
    forks = [_fork(client, c, _join(client, c["code"], f"s{i}")).json() for i in range(2)]
    for s in [*forks, {"id": c["presenter_id"], "token": c["presenter_token"]}]:
        assert client.post(f"{SESSIONS}/{s['id']}/play", headers=bearer(s["token"])).status_code == 200
    _teach(client, c, "pause_all")
    for sid in [c["presenter_id"], *(f["id"] for f in forks)]:
        assert client.get(f"{SESSIONS}/{sid}").json()["status"] == "paused"
    assert _teach(client, c, "pause_all")["mode"] == "released"  # pausing does not lock


def test_students_cannot_run_the_class_nor_touch_the_presenters_or_each_others_sessions(client):
    c = _open(client)
    _teach(client, c, "release")
    ada, bob = _join(client, c["code"], "Ada"), _join(client, c["code"], "Bob")
    ada_fork = _fork(client, c, ada).json()
    for verb in ("lock", "release", "pause_all", "end"):
        assert client.post(f"{CLASSES}/{c['id']}/{verb}", headers=bearer(ada["student_token"])).status_code == 403
    client.cookies.clear()  # this client opened the class: the page's cookie would make it the teacher
    assert client.post(f"{CLASSES}/{c['id']}/lock").status_code == 401
    patch = {"training": {"learning_rate": 0.5}}
    r = client.patch(f"{SESSIONS}/{c['presenter_id']}", json=patch, headers=bearer(ada["student_token"]))
    assert r.status_code == 403
    assert (
        client.patch(f"{SESSIONS}/{ada_fork['id']}", json=patch, headers=bearer(bob["student_token"])).status_code
        == 403
    )
    r = client.post(f"{CLASSES}/{c['id']}/students/{ada['student_id']}/fork", headers=bearer(bob["student_token"]))
    assert r.status_code == 403
    assert ada_fork["token"] not in str(client.get(f"{CLASSES}/{c['id']}").json())
    dash = client.get(f"{CLASSES}/{c['id']}/dashboard", headers=bearer(c["teacher_token"])).text
    assert ada_fork["token"] not in dash and ada["student_token"] not in dash


def _dashboard(client: TestClient, c: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"{CLASSES}/{c['id']}/dashboard", headers=bearer(c["teacher_token"])).json()
    return body


def test_a_challenge_scores_students_sessions_within_its_limits_and_ranks_who_met_it_first(client):
    c = _open(client)
    _teach(client, c, "release")
    ada, bob, cy = (_join(client, c["code"], name) for name in ("Ada", "Bob", "Cy"))
    forks = {st["name"]: _fork(client, c, st).json() for st in (ada, bob, cy)}
    big = {"network": {"hidden": [{"units": 8, "activation": "tanh"}] * 2}}
    assert client.patch(f"{SESSIONS}/{forks['Cy']['id']}", json=big, headers=bearer(forks["Cy"]["token"])).is_success
    goal = {"metric": "test_loss", "comparison": "<", "value": 0.2, "max_neurons": 8, "dataset": "circle", "minutes": 5}
    round_ = _teach(client, c, "challenge", "put", json=goal)["challenge"]
    assert round_["goal"] == "test loss < 0.2 with at most 8 neurons on circle" and round_["running"]
    for name in ("Ada", "Cy"):  # Ada and Cy train to a low loss; Bob does not train
        r = client.post(
            f"{SESSIONS}/{forks[name]['id']}/train", json={"epochs": 300}, headers=bearer(forks[name]["token"])
        )
        assert r.json()["metrics"]["test_loss"] < 0.2
    board = _until(
        lambda: (b := _dashboard(client, c)["class"]["challenge"]["leaderboard"]) and b[0]["met_at"] is not None and b
    )
    assert board[0]["name"] == "Ada" and board[0]["met_at"] >= 0 and board[0]["best"] < 0.2
    assert "Cy" not in [e["name"] for e in board]  # 16 neurons: over the limit, not ranked
    assert [e["name"] for e in board] == ["Ada", "Bob"] and board[1]["met_at"] is None
    roster = {e["name"]: e for e in _dashboard(client, c)["roster"]}
    assert roster["Cy"]["breaks"] == ["16 neurons (at most 8)"] and roster["Cy"]["neurons"] == 16
    bad = client.put(
        f"{CLASSES}/{c['id']}/challenge", json={**goal, "metric": "speed"}, headers=bearer(c["teacher_token"])
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "metric"]
    over = _teach(client, c, "challenge", "delete")["challenge"]
    assert not over["running"] and over["leaderboard"][0]["name"] == "Ada"  # the results stay


def test_spotlight_shows_a_students_session_to_the_class_and_removal_ends_theirs(client):
    c = _open(client)
    _teach(client, c, "release")
    ada, bob = _join(client, c["code"], "Ada"), _join(client, c["code"], "Bob")
    fork = _fork(client, c, ada).json()
    r = client.put(
        f"{CLASSES}/{c['id']}/spotlight", json={"student_id": bob["student_id"]}, headers=bearer(c["teacher_token"])
    )
    assert r.status_code == 409 and "no session of their own" in r.json()["detail"]
    lit = _teach(client, c, "spotlight", "put", json={"student_id": ada["student_id"]})
    assert lit["following"] == fork["id"] and lit["spotlight_name"] == "Ada"
    assert _teach(client, c, "spotlight", "put", json={"student_id": None})["following"] == c["presenter_id"]
    r = client.delete(f"{CLASSES}/{c['id']}/students/{ada['student_id']}", headers=bearer(c["teacher_token"]))
    assert r.status_code == 204
    assert client.get(f"{SESSIONS}/{fork['id']}").status_code == 404
    assert _fork(client, c, ada).status_code == 404
    assert [e["name"] for e in _dashboard(client, c)["roster"]] == ["Bob"]


def test_the_class_stream_tells_students_the_mode_and_the_teacher_who_is_connected(client):
    c = _open(client)
    ada = _join(client, c["code"], "Ada")
    with client.websocket_connect(f"/ws/classes/{c['id']}?token={ada['student_token']}") as student:
        hello = student.receive_json()
        assert hello["role"] == "student" and hello["student_id"] == ada["student_id"]
        with client.websocket_connect(f"/ws/classes/{c['id']}?token={c['teacher_token']}") as teacher:
            assert teacher.receive_json()["role"] == "teacher"
            roster = next(m for m in iter(teacher.receive_json, None) if m["type"] == "roster")["roster"]
            assert roster[0]["name"] == "Ada" and roster[0]["connected"]
            _teach(client, c, "release")
            message = next(m for m in iter(student.receive_json, None) if m["type"] == "class")
            while message["class"]["mode"] != "released":
                message = student.receive_json()
            client.delete(f"{CLASSES}/{c['id']}/students/{ada['student_id']}", headers=bearer(c["teacher_token"]))
            assert (
                next(m for m in iter(student.receive_json, None) if m["type"] == "removed")["student_id"]
                == ada["student_id"]
            )
    with client.websocket_connect(f"/ws/classes/{'f' * 32}") as ws:
        assert ws.receive_json()["type"] == "error"


def test_the_presenters_session_is_never_evicted_while_the_class_is_open(make_client):
    client = make_client(warm_start=False, max_sessions=3)
    c = _open(client)
    for _ in range(6):
        assert client.post(SESSIONS, json={}).status_code == 201
    assert client.get(f"{SESSIONS}/{c['presenter_id']}").status_code == 200


def test_a_class_is_kept_in_the_store_ended_with_its_results_and_reopens_after_a_restart():
    settings = make_settings(warm_start=False)
    with TestClient(create_app(settings)) as client:
        c = _open(client)
        _teach(client, c, "release")
        ada = _join(client, c["code"], "Ada")
        fork = _fork(client, c, ada).json()
        goal = {"metric": "test_loss", "comparison": "<", "value": 5.0, "minutes": 5}
        _teach(client, c, "challenge", "put", json=goal)
        client.post(f"{SESSIONS}/{fork['id']}/train", json={"epochs": 10}, headers=bearer(fork["token"]))
        _until(lambda: _dashboard(client, c)["class"]["challenge"]["leaderboard"][0]["met_at"] is not None)
        ended = _teach(client, c, "end")
        assert ended["status"] == "ended" and ended["code"] is None
        assert client.post(f"{CLASSES}/join", json={"code": c["code"], "name": "Late"}).status_code == 404
    with TestClient(create_app(settings)) as client:
        kept = client.get(f"{CLASSES}/{c['id']}").json()
        assert kept["status"] == "ended" and kept["students"] == 1
        assert kept["challenge"]["leaderboard"][0]["name"] == "Ada"
        assert client.post(f"{CLASSES}/{c['id']}/reopen", headers=bearer(ada["student_token"])).status_code == 403
        again = client.post(f"{CLASSES}/{c['id']}/reopen", headers=bearer(c["teacher_token"])).json()
        assert again["status"] == "open" and again["code"] != c["code"]
        assert client.get(f"{SESSIONS}/{again['presenter_id']}").status_code == 200
        assert _join(client, again["code"], "Bo")["class"]["students"] == 2


def test_every_round_of_a_class_is_kept_and_a_browser_lists_the_classes_it_runs(client):
    """Two challenges in one class, the class ended: its results answer every round with its leaderboard (the
    teacher's); the browser that opened it lists it (its cookie is kept a year), newest first, ended or open;
    another browser lists nothing, and a cookie with another class's token lists nothing either."""
    client.cookies.clear()
    first, second = _open(client), _open(client)
    assert [c["id"] for c in client.get(CLASSES).json()["items"]] == [second["id"], first["id"]]
    cookie = next(h for h in client.post(f"{CLASSES}/{first['id']}/reopen", headers=bearer(first["teacher_token"]))
                  .headers.get_list("set-cookie") if h.startswith(f"neuroglass_class_{first['id']}="))  # fmt: skip
    assert "Max-Age=31536000" in cookie
    _teach(client, first, "release")
    ada = _join(client, first["code"], "Ada")
    fork = _fork(client, first, ada).json()
    easy = {"metric": "test_loss", "comparison": "<", "value": 10, "minutes": 5}
    _teach(client, first, "challenge", "put", json=easy)
    client.post(f"{SESSIONS}/{fork['id']}/train", json={"epochs": 20}, headers=bearer(fork["token"]))
    _until(lambda: _dashboard(client, first)["class"]["challenge"]["leaderboard"][0]["met_at"] is not None)
    _teach(client, first, "challenge", "put", json=easy | {"value": 1e-9})
    _teach(client, first, "end")
    results = client.get(f"{CLASSES}/{first['id']}/results", headers=bearer(first["teacher_token"]))
    assert results.status_code == 200, results.text
    body = results.json()
    assert body["class"]["status"] == "ended" and body["students"] == ["Ada"]
    one, two = body["rounds"]
    assert not two["running"] and two["seconds_left"] == 0, "a challenge still running ends with its class"
    assert one["goal"] == "test loss < 10" and not one["running"] and one["leaderboard"][0]["name"] == "Ada"
    assert one["leaderboard"][0]["met_at"] is not None
    assert two["goal"] == "test loss < 1e-09" and two["leaderboard"][0]["met_at"] is None
    assert client.get(f"{CLASSES}/{first['id']}/results", headers=bearer(ada["student_token"])).status_code == 403
    listed = {c["id"]: c for c in client.get(CLASSES).json()["items"]}
    assert listed[first["id"]]["status"] == "ended" and listed[first["id"]]["rounds"] == 2
    assert listed[first["id"]]["students"] == 1 and listed[first["id"]]["code"] is None
    assert listed[second["id"]]["status"] == "open" and listed[second["id"]]["code"] == second["code"]
    saved = dict(client.cookies)
    client.cookies.clear()
    try:
        assert client.get(CLASSES).json()["items"] == []  # another browser
        client.cookies.set(f"neuroglass_class_{first['id']}", second["teacher_token"])
        assert client.get(CLASSES).json()["items"] == []  # a token that is not this class's teacher's
    finally:
        client.cookies.clear()
        for k, v in saved.items():
            client.cookies.set(k, v)


def test_a_challenge_keeps_any_spec_field_so_nobody_wins_by_lowering_the_noise(client):
    c = _open(client, {"dataset": {"name": "circle", "noise": 30}})
    _teach(client, c, "release")
    ada, bob = _join(client, c["code"], "Ada"), _join(client, c["code"], "Bob")
    forks = {st["name"]: _fork(client, c, st).json() for st in (ada, bob)}
    quiet = {"dataset": {"noise": 0}}
    assert client.patch(
        f"{SESSIONS}/{forks['Bob']['id']}", json=quiet, headers=bearer(forks["Bob"]["token"])
    ).is_success
    keep = {"dataset.noise": 30, "dataset.train_percent": 50}
    goal = {"metric": "test_loss", "comparison": "<", "value": 100, "keep": keep, "minutes": 5}
    round_ = _teach(client, c, "challenge", "put", json=goal)["challenge"]
    assert round_["goal"] == "test loss < 100 (noise 30, 50 % training)"
    for name in ("Ada", "Bob"):
        client.post(f"{SESSIONS}/{forks[name]['id']}/train", json={"epochs": 5}, headers=bearer(forks[name]["token"]))
    roster = _until(
        lambda: (r := {e["name"]: e for e in _dashboard(client, c)["roster"]})["Ada"]["met_at"] is not None and r
    )
    assert roster["Bob"]["breaks"] == ["dataset.noise 0 (kept at 30)"] and roster["Bob"]["met_at"] is None
    board = _dashboard(client, c)["class"]["challenge"]["leaderboard"]
    assert [e["name"] for e in board] == ["Ada"]
    for bad, words in (({"training.nope": 1}, "unknown field 'training.nope'"), ({"dataset": 1}, "a group of fields")):
        r = client.put(f"{CLASSES}/{c['id']}/challenge", json=goal | {"keep": bad}, headers=bearer(c["teacher_token"]))
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][:2] == ["body", "keep"], r.text
        assert words in r.json()["detail"][0]["msg"]
