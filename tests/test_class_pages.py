"""The classroom's pages as a browser gets them: the join form (a wrong code, an empty name, a name that is
HTML), a student's class page and where everyone else lands, the teacher's class bar on the presenter's page,
a student's own copy under their bar, the dashboard only for the teacher, and an ended class read back from
the store with a way to reopen it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from server.deps import token_cookie
from server.routes.classes import student_cookie, teacher_cookie
from tests.conftest import SESSIONS

CLASSES = "/api/v1/classes"


@pytest.fixture(scope="module")
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(warm_start=False, joins_per_minute=1000, max_classes_per_client=100)


@contextmanager
def visitor(client: TestClient, **cookies: str) -> Iterator[TestClient]:
    """The client as another browser: only these cookies, and the client's own put back afterwards."""
    saved = client.cookies
    client.cookies = httpx.Cookies(cookies)
    try:
        yield client
    finally:
        client.cookies = saved


def open_class(client: TestClient) -> dict[str, Any]:
    with visitor(client):
        s = client.post(SESSIONS, json={}).json()
        r = client.post(CLASSES, json={"session_id": s["id"], "name": "Tuesday"}, headers=_bearer(s["token"]))
        assert r.status_code == 201, r.text
        return r.json() | {"presenter_token": s["token"]}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def join(client: TestClient, code: str, name: str) -> httpx.Response:
    return client.post("/join", data={"code": code, "name": name}, follow_redirects=False)


def bar_of(html: str) -> dict[str, str]:
    """The class bar's data attributes (empty: the page has no class bar)."""
    m = re.search(r'<section class="class-bar"([^>]*)>', html)
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', m.group(1))) if m else {}


def test_the_join_form_fills_in_a_scanned_code_and_escapes_it(client: TestClient) -> None:
    with visitor(client):
        r = client.get("/join", params={"code": 'AB"><script>x</script>'})
    assert r.status_code == 200
    assert 'name="code"' in r.text and 'name="name"' in r.text
    assert "<script>x</script>" not in r.text and "&lt;script&gt;" in r.text


def test_a_wrong_code_or_an_empty_name_is_said_on_the_form(client: TestClient) -> None:
    c = open_class(client)
    with visitor(client):
        wrong = join(client, "QQQQQQ", "Ada")
        assert wrong.status_code == 404
        assert re.search(r'id="join-error" role="alert">no class has the code', wrong.text)
        assert 'value="QQQQQQ"' in wrong.text and 'value="Ada"' in wrong.text  # what was typed stays
        nameless = join(client, c["code"], "   ")
        assert nameless.status_code == 422
        assert "Type the name the class will see you by" in nameless.text
        assert student_cookie(c["id"]) not in nameless.cookies


def test_a_student_joins_and_sees_the_class_session_read_only(client: TestClient) -> None:
    c = open_class(client)
    with visitor(client):
        r = join(client, c["code"].lower(), "<b>Ada</b>")  # typed in lower case: still the code
        assert r.status_code == 303 and r.headers["location"] == f"/class/{c['id']}"
        page = client.get(f"/class/{c['id']}")
    assert page.status_code == 200
    bar = bar_of(page.text)
    assert bar["role"] == "student" and bar["forked"] == "false" and bar["following"] == c["presenter_id"]
    assert f'data-session="{c["presenter_id"]}"' in page.text and 'data-role="viewer"' in page.text
    assert "&lt;b&gt;Ada&lt;/b&gt;" in page.text and "<b>Ada</b>" not in page.text  # the name, escaped
    assert 'id="class-fork"' in page.text and "disabled" in page.text.split('id="class-fork"')[1][:200]
    assert 'id="copy-link"' not in page.text  # their copy is "make it mine", inside the class


def test_who_lands_where(client: TestClient) -> None:
    c = open_class(client)
    with visitor(client):
        stranger = client.get(f"/class/{c['id']}", follow_redirects=False)
        assert stranger.status_code == 303 and stranger.headers["location"] == f"/join?code={c['code']}"
        gone = client.get("/class/nosuchclass")
        assert gone.status_code == 404 and "ask your teacher for a new code" in gone.text
    with visitor(client, **{teacher_cookie(c["id"]): c["teacher_token"]}):
        teacher = client.get(f"/class/{c['id']}", follow_redirects=False)
        assert teacher.status_code == 303 and teacher.headers["location"] == f"/s/{c['presenter_id']}"


def test_the_presenter_page_has_the_teacher_bar_only_for_the_teacher(client: TestClient) -> None:
    c = open_class(client)
    cookies = {teacher_cookie(c["id"]): c["teacher_token"], token_cookie(c["presenter_id"]): c["presenter_token"]}
    with visitor(client, **cookies):
        page = client.get(f"/s/{c['presenter_id']}").text
    bar = bar_of(page)
    assert bar["role"] == "teacher" and bar["class"] == c["id"]
    assert re.search(rf'id="class-code"[^>]*>{c["code"]}<', page)
    assert f"/join?code={c['code']}" in page and "<svg" in page  # the link and its QR code
    assert 'id="class-start"' not in page  # already presenting
    with visitor(client, **{token_cookie(c["presenter_id"]): c["presenter_token"]}):
        owner_only = client.get(f"/s/{c['presenter_id']}").text
    assert bar_of(owner_only) == {} and 'id="class-start"' in owner_only
    with visitor(client):
        assert 'id="class-start"' not in client.get(f"/watch/{c['presenter_id']}").text


def test_a_students_own_copy_has_their_bar_and_the_way_back(client: TestClient) -> None:
    c = open_class(client)
    with visitor(client):
        st = client.post(f"{CLASSES}/join", json={"code": c["code"], "name": "Grace"}).json()
    client.post(f"{CLASSES}/{c['id']}/release", headers=_bearer(c["teacher_token"])).raise_for_status()
    cookies = {student_cookie(c["id"]): st["student_token"]}
    with visitor(client, **cookies):
        fork = client.post(f"{CLASSES}/{c['id']}/students/{st['student_id']}/fork")
        assert fork.status_code == 201, fork.text
        page = client.get(f"/s/{fork.json()['id']}").text
    bar = bar_of(page)
    assert bar["role"] == "student" and bar["forked"] == "true" and bar["student"] == st["student_id"]
    assert f'href="/class/{c["id"]}"' in page and 'data-role="owner"' in page
    with visitor(client):  # the same copy seen by someone else: no class bar
        assert bar_of(client.get(f"/watch/{fork.json()['id']}").text) == {}


def test_the_dashboard_is_the_teachers(client: TestClient) -> None:
    c = open_class(client)
    with visitor(client, **{student_cookie(c["id"]): "not-the-teacher"}):
        refused = client.get(f"/classes/{c['id']}")
        assert refused.status_code == 403 and "teacher sees its dashboard" in refused.text
    with visitor(client):
        assert client.get("/classes/nosuchclass").status_code == 404
        client.post(f"{CLASSES}/join", json={"code": c["code"], "name": "<i>Linus</i>"}).raise_for_status()
    with visitor(client, **{teacher_cookie(c["id"]): c["teacher_token"]}):
        page = client.get(f"/classes/{c['id']}")
    assert page.status_code == 200
    assert re.search(rf'id="class-code"[^>]*>{c["code"]}<', page.text) and "<svg" in page.text
    assert 'id="challenge-form"' in page.text and 'value="spiral"' in page.text
    assert "<i>Linus</i>" not in page.text and "\\u003ci\\u003eLinus" in page.text  # in the JSON, escaped


def test_an_ended_class_is_read_back_with_its_results_and_can_reopen(client: TestClient) -> None:
    c = open_class(client)
    teacher = {teacher_cookie(c["id"]): c["teacher_token"]}
    client.post(f"{CLASSES}/{c['id']}/end", headers=_bearer(c["teacher_token"])).raise_for_status()
    with visitor(client):
        ended = client.get(f"/class/{c['id']}")
        assert ended.status_code == 404 and "This class has ended" in ended.text
        assert join(client, c["code"], "Ada").status_code == 404  # its code no longer works
    with visitor(client, **teacher):
        page = client.get(f"/classes/{c['id']}")
        assert page.status_code == 200 and 'id="dash-reopen"' in page.text and 'id="challenge-form"' not in page.text
        reopened = client.post(f"{CLASSES}/{c['id']}/reopen")
        assert reopened.status_code == 200, reopened.text
        again = client.get(f"/classes/{c['id']}").text
    assert 'id="challenge-form"' in again and reopened.json()["code"] in again


def test_a_teachers_classes_page_lists_them_and_an_ended_dashboard_keeps_its_roster(client: TestClient) -> None:
    with visitor(client):
        assert "No class run from this browser yet" in client.get("/classes").text
    c = open_class(client)
    teacher = {teacher_cookie(c["id"]): c["teacher_token"]}
    client.post(f"{CLASSES}/{c['id']}/release", headers=_bearer(c["teacher_token"])).raise_for_status()
    with visitor(client):
        assert join(client, c["code"], "<b>Grace</b>").status_code == 303
    goal = {"metric": "test_accuracy", "comparison": ">", "value": 0.99, "minutes": 5}
    client.put(f"{CLASSES}/{c['id']}/challenge", json=goal, headers=_bearer(c["teacher_token"])).raise_for_status()
    client.post(f"{CLASSES}/{c['id']}/end", headers=_bearer(c["teacher_token"])).raise_for_status()
    with visitor(client, **teacher):
        page = client.get("/classes")
        dash = client.get(f"/classes/{c['id']}").text
    assert page.status_code == 200
    marker = f'class="dash-card class-item" data-class="{c["id"]}" data-status="ended">'
    assert marker in page.text, page.text
    item = " ".join(page.text.split(marker)[1].split('class="dash-card class-item"')[0].split("</main>")[0].split())
    assert "Tuesday" in item and "1 student ·" in item and "1 challenge" in item
    assert "test accuracy &gt; 0.99" in item and "results and reopen" in item
    # the ended class's dashboard: who came (in the page's state, escaped) and every challenge
    assert '"name": "\\u003cb\\u003eGrace\\u003c/b\\u003e"' in dash and 'id="rounds"' in dash
    assert 'id="dash-reopen"' in dash
