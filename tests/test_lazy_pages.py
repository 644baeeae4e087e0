"""A page visit creates no session: the page shows its spec's preview (computed once per spec, kept), and the
visitor's first action creates exactly one session, owned by this browser, from the spec the page showed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from server.deps import token_cookie
from server.lessons import LESSONS
from server.routes.pages import decode_spec, encode_spec
from server.spec import ExperimentSpec
from tests.pages import attribute, start

READY = next(slug for slug, lesson in LESSONS.items() if lesson.status == "ready")
XOR = ExperimentSpec.model_validate({"dataset": {"name": "xor"}, "training": {"learning_rate": 0.1}})
VISITS = ["/", "/presets/cnn-lenet-digits", "/presets/xor-hidden", f"/lessons/{READY}", f"/?spec={encode_spec(XOR)}"]


@pytest.fixture
def fresh(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def count(client: TestClient) -> int:
    return len(client.app.state.sessions.sessions)  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", VISITS)
def test_a_visit_creates_no_session_and_the_first_action_creates_one(fresh: TestClient, path: str) -> None:
    r = fresh.get(path, follow_redirects=True)
    assert r.status_code == 200 and attribute(r.text, "data-draft")
    fresh.get(path, follow_redirects=True)  # a second visitor of the same link
    assert count(fresh) == 0
    assert not [c for c in fresh.cookies if c.startswith("neuroglass_")]
    sid = start(fresh, r.text)
    assert count(fresh) == 1
    assert fresh.cookies.get(token_cookie(sid))  # owned by this browser
    shown = decode_spec(attribute(r.text, "data-spec") or "")
    state = fresh.get(f"/api/v1/sessions/{sid}").json()
    assert state["spec"] == shown.model_dump(mode="json") and state["epoch"] == 0


def test_the_action_after_creation_takes_effect(fresh: TestClient) -> None:
    page = fresh.get("/").text
    sid = start(fresh, page)
    r = fresh.patch(f"/ui/sessions/{sid}/run", data={"training.learning_rate": "0.3"})
    assert r.status_code == 200
    assert fresh.post(f"/ui/sessions/{sid}/run/step").status_code == 200
    state = fresh.get(f"/api/v1/sessions/{sid}").json()
    assert state["spec"]["training"]["learning_rate"] == 0.3 and state["epoch"] == 1
    assert count(fresh) == 1


def test_a_preview_is_computed_once_per_spec_and_bounded(fresh: TestClient) -> None:
    previews = fresh.app.state.sessions.previews  # type: ignore[attr-defined]
    page = fresh.get("/").text
    key = (attribute(page, "data-draft") or "").removeprefix("draft-")
    kept = previews.find(key)
    fresh.get("/")
    assert previews.find(key) is kept and len(previews.items) == 1
    frame = fresh.get(f"/ui/previews/{key}/frame")
    assert frame.status_code == 200 and frame.headers["content-type"] == "application/octet-stream"
    data = fresh.get(f"/ui/previews/{key}/data").json()
    assert len(data["train"]["points"]) == 250
    assert fresh.get("/ui/previews/nothere/frame").status_code == 404
    previews.limit = 2
    for lr in (0.1, 0.3):
        fresh.get(f"/?spec={encode_spec(ExperimentSpec.model_validate({'training': {'learning_rate': lr}}))}")
    assert len(previews.items) == 2 and previews.find(key) is None  # the least recently used went
    assert count(fresh) == 0


def test_a_cnn_preview_shows_its_walkthrough_and_saliency_without_a_session(fresh: TestClient) -> None:
    page = fresh.get("/presets/cnn-lenet-digits", follow_redirects=True).text
    draft = attribute(page, "data-draft") or ""
    r = fresh.get(f"/ui/sessions/{draft}/cnn/convolution")
    assert r.status_code == 200 and "conv-walk" in r.text
    r = fresh.get(f"/ui/previews/{draft.removeprefix('draft-')}/saliency", params={"examples": [0], "encoding": "list"})
    assert r.status_code == 200 and r.json()["maps"]
    assert count(fresh) == 0


def test_a_bad_spec_to_create_is_a_clear_422(fresh: TestClient) -> None:
    r = fresh.post("/ui/sessions", data={"spec": "not*base64"})
    assert r.status_code == 422 and "base64url" in r.json()["detail"]
    assert count(fresh) == 0


@pytest.mark.parametrize("create", ["/ui/sessions", f"/ui/lessons/{READY}/session"])
def test_only_an_embedded_page_is_handed_its_token_and_its_fragments_take_it_as_a_bearer(
    fresh: TestClient, create: str
) -> None:
    """In another site's iframe the browser keeps the page's cookies apart: an embedded page's first action
    gets the token in the answer, and the page's fragments take it as a Bearer header; a page at home does not
    see its token (it stays in the httponly cookie)."""
    spec = encode_spec(ExperimentSpec())
    at_home = fresh.post(create, data={"spec": spec}).json()
    assert set(at_home) == {"id"}
    embedded = fresh.post(create, data={"spec": spec, "embed": "1"}).json()
    assert set(embedded) == {"id", "token"}
    fresh.cookies.clear()  # the iframe's requests: no cookie
    sid = embedded["id"]
    assert fresh.patch(f"/ui/sessions/{sid}/run", data={"training.learning_rate": "0.3"}).status_code == 403
    bearer = {"Authorization": f"Bearer {embedded['token']}"}
    r = fresh.patch(f"/ui/sessions/{sid}/run", data={"training.learning_rate": "0.3"}, headers=bearer)
    assert r.status_code == 200
    assert fresh.get(f"/api/v1/sessions/{sid}").json()["spec"]["training"]["learning_rate"] == 0.3
    wrong = {"Authorization": f"Bearer {at_home['id']}-not-a-token"}
    assert (
        fresh.patch(f"/ui/sessions/{sid}/run", data={"training.learning_rate": "1"}, headers=wrong).status_code == 403
    )
