"""The lessons through REST and their pages: the list in the lectures' order, one lesson, a clear 404, coming
lessons listed; every lesson page opens a session with the lesson's spec; variants and start over change
only the owner's session."""

from __future__ import annotations

import re

import pytest

from server import lessons as lessons_module
from server.lessons import LESSONS, Lesson
from server.routes import lessons as lesson_routes

COMING = Lesson(
    slug="test-coming",
    title="A lesson still being written",
    topic="testing",
    kind="mlp",
    spec={},
    todo="This one needs the new dataset first.",
    watch="-",
    question="-",
    why="-",
    panels=("output",),
    status="coming",
)


@pytest.fixture
def with_coming(monkeypatch):
    monkeypatch.setattr(lessons_module, "LESSONS", {**LESSONS, COMING.slug: COMING})
    monkeypatch.setattr(lesson_routes, "LESSONS", lessons_module.LESSONS)


def test_list_is_every_lesson_in_the_lectures_order(client):
    r = client.get("/api/v1/lessons")
    assert r.status_code == 200
    listed = r.json()["lessons"]
    assert [x["slug"] for x in listed] == list(LESSONS)
    assert listed == [lesson.public() for lesson in LESSONS.values()]


def test_one_lesson_and_an_unknown_one(client):
    slug = next(iter(LESSONS))
    r = client.get(f"/api/v1/lessons/{slug}")
    assert r.status_code == 200 and r.json() == LESSONS[slug].public()
    r = client.get("/api/v1/lessons/no-such-lesson")
    assert r.status_code == 404 and "no-such-lesson" in r.json()["detail"]


def test_coming_lessons_are_listed_not_hidden(client, with_coming):
    listed = client.get("/api/v1/lessons").json()["lessons"]
    assert listed[-1]["slug"] == COMING.slug and listed[-1]["status"] == "coming"


def test_gallery_cards_in_order_coming_ones_say_why(client, with_coming):
    r = client.get("/lessons")
    assert r.status_code == 200
    html = r.text.replace("&#39;", "'").replace("&#34;", '"')
    slugs = re.findall(r'<li class="lesson-card[^"]*" id="card-([^"]+)"', html)
    assert slugs == list(lesson_routes.LESSONS)
    for lesson in lesson_routes.LESSONS.values():
        card = html[html.index(f'id="card-{lesson.slug}"') :].split("</li>")[0]
        assert lesson.title in card and lesson.topic in card and lesson.kind.upper() in card
        if lesson.status == "ready":
            assert f'href="/lessons/{lesson.slug}"' in card
            assert lesson_routes.first_sentence(lesson.todo) in card
        else:
            assert "href=" not in card and "coming" in card and lesson.todo in card
    assert 'href="/"' in html  # back to the playground


def test_first_sentence():
    assert lesson_routes.first_sentence("Press play. Then wait.") == "Press play."
    assert lesson_routes.first_sentence("Use 0.5 as the rate! Then x") == "Use 0.5 as the rate!"
    assert lesson_routes.first_sentence("No stop") == "No stop"


def test_unknown_and_coming_lesson_pages(client, with_coming):
    r = client.get("/lessons/no-such-lesson")
    assert r.status_code == 404 and "no-such-lesson" in r.text and 'href="/lessons/' in r.text
    r = client.get(f"/lessons/{COMING.slug}")
    assert r.status_code == 200 and "is coming" in r.text and COMING.todo in r.text
    assert "data-session" not in r.text
