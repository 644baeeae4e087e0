"""The page's server side without a browser: share links, cookies, form endpoints, errors in words."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient

from server.csvdata import parse_csv
from server.deps import token_cookie
from server.routes.pages import LinkError, decode_spec, encode_spec
from server.spec import ExperimentSpec
from tests.pages import start


@pytest.fixture
def owner(client: TestClient) -> tuple[TestClient, str]:
    """A fresh page load and its first action: the client now holds the new session's token cookie."""
    client.cookies.clear()
    r = client.get("/")
    assert r.status_code == 200
    return client, start(client, r.text)


def spec_of(url: str) -> ExperimentSpec:
    return decode_spec(parse_qs(urlparse(url).query)["spec"][0])


def test_spec_links_round_trip_and_refuse_garbage() -> None:
    spec = ExperimentSpec.model_validate(
        {"dataset": {"name": "xor", "seed": 7, "added": [[1.5, -2, 1]]}, "network": {"hidden": [{"units": 3}]}}
    )
    text = encode_spec(spec)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", text)
    assert decode_spec(text) == spec
    with pytest.raises(LinkError):
        decode_spec("not*base64")
    with pytest.raises(LinkError):
        decode_spec(encode_spec(spec)[:-9])  # cut short


def test_the_first_action_sets_an_httponly_token_cookie(client: TestClient) -> None:
    client.cookies.clear()
    r = client.get("/")
    assert 'hx-ext="ws"' in r.text and "ws-connect" not in r.text  # a preview: the stream connects at the first action
    assert not [h for h in r.headers.get_list("set-cookie") if h.startswith("neuroglass_")]
    r = client.post("/ui/sessions", data={"spec": encode_spec(ExperimentSpec())})
    sid = r.json()["id"]
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("neuroglass_"))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert client.cookies.get(token_cookie(sid))
    page = client.get(f"/s/{sid}").text  # the session's own page streams it
    assert f'ws-connect="/ws/sessions/{sid}"' in page


def test_a_bad_link_explains_itself_and_opens_the_defaults(client: TestClient) -> None:
    r = client.get(f"/?spec={encode_spec(ExperimentSpec())[:-1]}!")
    assert r.status_code == 200 and "could not be opened" in r.text
    r = client.get("/?spec=" + "eyJ0cmFpbmluZyI6eyJsZWFybmluZ19yYXRlIjo1MH19")  # learning_rate 50
    assert "learning rate can be at most 10 (you entered 50)" in r.text


def test_watch_page_is_read_only_and_unknown_sessions_are_404(owner: tuple[TestClient, str]) -> None:
    client, sid = owner
    r = client.get(f"/watch/{sid}")
    assert r.status_code == 200 and "watching — read only" in r.text and "<fieldset disabled>" in r.text
    assert client.get("/watch/nope").status_code == 404


def test_a_watcher_can_start_a_copy_of_the_experiment(owner: tuple[TestClient, str]) -> None:
    client, sid = owner
    client.patch(f"/ui/sessions/{sid}/run", data={"training.learning_rate": "0.3"})
    r = client.get(f"/copy/{sid}", follow_redirects=False)
    assert r.status_code == 303 and spec_of(r.headers["location"]).training.learning_rate == 0.3


def test_forms_need_the_owners_cookie(owner: tuple[TestClient, str]) -> None:
    client, sid = owner
    client.cookies.clear()
    r = client.patch(f"/ui/sessions/{sid}/run", data={"training.learning_rate": "0.1"})
    assert r.status_code == 403


def test_run_form_patches_live_and_puts_errors_beside_the_field(owner: tuple[TestClient, str]) -> None:
    client, sid = owner
    r = client.patch(f"/ui/sessions/{sid}/run", data={"training.learning_rate": "50", "speed": ""})
    assert r.status_code == 422
    assert 'id="lr-error"' in r.text and "learning rate can be at most 10 (you entered 50)" in r.text
    assert 'value="50"' in r.text  # what the student typed stays in the field
    r = client.patch(f"/ui/sessions/{sid}/run", data={"training.learning_rate": "0.1", "speed": "30"})
    assert r.status_code == 200 and 'id="run-form"' in r.text and "without a reset" in r.text
    trigger = json.loads(r.headers["HX-Trigger"])["ng:spec"]
    assert spec_of(trigger["url"]).training.learning_rate == 0.1
    assert spec_of(trigger["url"]).speed == 30
    # Switching the problem picks a dataset of that kind and re-renders the data panel out of band.
    r = client.patch(f"/ui/sessions/{sid}/run", data={"problem": "regression"})
    assert r.status_code == 200 and 'id="data-panel"' in r.text and 'hx-swap-oob="true"' in r.text
    assert client.get(f"/api/v1/sessions/{sid}").json()["spec"]["dataset"]["name"] == "plane"


def test_network_form_adds_and_removes_layers_and_neurons(owner: tuple[TestClient, str]) -> None:
    client, sid = owner
    url = f"/ui/sessions/{sid}/network"
    fields = {"features_sent": "1", "features": ["x1", "x2", "x1x2"], "activation": ["relu", "tanh"]}
    r = client.patch(url, data={**fields, "op": "add_unit:1"})
    assert r.status_code == 200
    spec = client.get(f"/api/v1/sessions/{sid}").json()["spec"]
    assert spec["features"] == ["x1", "x2", "x1x2"]
    assert spec["network"]["hidden"] == [{"units": 4, "activation": "relu"}, {"units": 3, "activation": "tanh"}]
    r = client.patch(url, data={"op": "add_layer", "default_activation": "sigmoid"})
    assert client.get(f"/api/v1/sessions/{sid}").json()["spec"]["network"]["hidden"][-1] == {
        "units": 2,
        "activation": "sigmoid",
    }
    r = client.patch(url, data={"features_sent": "1"})  # every input switched off
    assert r.status_code == 422 and "switch on at least one input" in r.text and 'id="features-error"' in r.text
    for _ in range(2):
        r = client.patch(url, data={"op": "remove_unit:2"})
    assert r.status_code == 422 and 'id="layer-2-error"' in r.text


def test_points_are_added_by_clicking_and_cleared(owner: tuple[TestClient, str]) -> None:
    client, sid = owner
    r = client.post(f"/ui/sessions/{sid}/points", data={"x1": "1.23456", "x2": "-2", "label": "0"})
    assert r.status_code == 200 and "1 added" in r.text
    assert client.get(f"/api/v1/sessions/{sid}").json()["spec"]["dataset"]["added"] == [[1.235, -2.0, 0.0]]
    r = client.post(f"/ui/sessions/{sid}/points", data={"x1": "1", "x2": "1", "label": "7"})
    assert r.status_code == 422 and "class" in r.text
    r = client.delete(f"/ui/sessions/{sid}/points")
    assert r.status_code == 200 and "0 added" in r.text


def test_csv_parsing_names_the_line() -> None:
    assert parse_csv("x1,x2,label\n1,2,0\n\n# a comment\n-1;-2;1\n", "classification") == (
        [[1.0, 2.0, 0.0], [-1.0, -2.0, 1.0]],
        None,
    )
    cases = {
        "1,2,0\n3,4\n": "line 2: expected 3 values",
        "1,2,0\n1,x,1\n": "line 2: 'x' is not a number",
        "1,2,0\n9,1,1\n": "line 2: x1 = 9 is outside",
        "1,2,0\n1,1,0.5\n": "line 2: label 0.5 is not a class",
        "1,2,0\n": "at least 2 points",
    }
    for text, message in cases.items():
        with pytest.raises(ValueError, match=message):
            parse_csv(text, "classification")
    assert parse_csv("1,2,0.5\n2,1,-0.25\n", "regression")[0][1] == [2.0, 1.0, -0.25]


def test_csv_upload_makes_a_custom_dataset(owner: tuple[TestClient, str]) -> None:
    client, sid = owner
    r = client.post(f"/ui/sessions/{sid}/csv", data={"csv": "a,b,c\n1,1,1\n2,x,0\n", "csv_name": "mine.csv"})
    assert r.status_code == 422 and "mine.csv: line 3" in r.text and 'id="csv-error"' in r.text
    r = client.post(f"/ui/sessions/{sid}/csv", data={"csv": "1,1,1\n-1,-1,0\n", "csv_name": "mine.csv"})
    assert r.status_code == 200 and "your points (2)" in r.text


def test_panels_for_watchers_are_out_of_band_and_disabled(owner: tuple[TestClient, str]) -> None:
    client, sid = owner
    r = client.get(f"/ui/sessions/{sid}/panels")
    for panel in ("run-form", "data-panel", "network-form", "points-form"):
        assert re.search(rf'id="{panel}"[^>]*hx-swap-oob="true"', r.text, re.S)
    assert r.text.count("<fieldset disabled>") >= 3


def test_run_buttons_play_and_pause(owner: tuple[TestClient, str]) -> None:
    client, sid = owner
    r = client.post(f"/ui/sessions/{sid}/run/toggle")
    assert r.status_code == 200 and 'data-status="running"' in r.text
    r = client.post(f"/ui/sessions/{sid}/run/toggle")
    assert r.status_code == 200 and 'data-status="paused"' in r.text
    assert client.post(f"/ui/sessions/{sid}/run/explode").status_code == 422
