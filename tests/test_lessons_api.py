"""The lessons through REST and their pages: the list in the lectures' order, one lesson, a clear 404, coming
lessons listed; every lesson page opens a session with the lesson's spec; variants and start over change
only the owner's session."""

from __future__ import annotations

import re

import pytest

from server import lessons as lessons_module
from server.lessons import LESSONS, Lesson, Variant
from server.routes import lessons as lesson_routes
from server.spec import ExperimentSpec, merge_patch
from tests.pages import start

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


def _session_id(html: str) -> str:
    found = re.search(r'data-session="([^"]+)"', html)
    assert found, "the page names no session"
    return found.group(1)


@pytest.mark.parametrize("slug", [slug for slug, lesson in LESSONS.items() if lesson.status == "ready"])
def test_every_lesson_page_opens_a_session_with_its_spec(client, slug):
    lesson = LESSONS[slug]
    r = client.get(f"/lessons/{slug}")
    assert r.status_code == 200
    html = r.text
    for text in (lesson.title, lesson.question):
        assert text.replace("'", "&#39;").replace('"', "&#34;") in html
    assert 'id="lesson-aside"' in html and "show why" in html and f'data-address="/lessons/{slug}"' in html
    for v in lesson.variants:
        assert f">try: {v.label}<" in html.replace("&#39;", "'")
    sid = start(client, html)
    state = client.get(f"/api/v1/sessions/{sid}").json()
    assert state["spec"] == ExperimentSpec.model_validate(lesson.spec).model_dump(mode="json")


def _lesson_with_variants() -> Lesson:
    return next(lesson for lesson in LESSONS.values() if lesson.variants and lesson.status == "ready")


def test_variant_merges_into_the_lessons_spec_and_start_over_restores_it(client):
    lesson = _lesson_with_variants()
    sid = start(client, client.get(f"/lessons/{lesson.slug}").text)
    cookie_token = client.cookies.get(f"neuroglass_{sid}")
    auth = {"Authorization": f"Bearer {cookie_token}"}
    client.patch(f"/api/v1/sessions/{sid}", json={"training": {"learning_rate": 0.003}}, headers=auth)
    client.post(f"/api/v1/sessions/{sid}/train", json={"epochs": 3}, headers=auth)
    last = len(lesson.variants) - 1
    r = client.post(f"/ui/sessions/{sid}/lessons/{lesson.slug}/variants/{last}")
    assert r.status_code == 200 and 'hx-swap-oob="true"' in r.text
    state = client.get(f"/api/v1/sessions/{sid}").json()
    wanted = ExperimentSpec.model_validate(merge_patch(lesson.spec, lesson.variants[last].patch))
    assert state["spec"] == wanted.model_dump(mode="json")  # the student's learning rate is gone too
    assert state["epoch"] == (0 if lesson.variants[last].reset else 3)
    client.post(f"/api/v1/sessions/{sid}/train", json={"epochs": 2}, headers=auth)
    r = client.post(f"/ui/sessions/{sid}/lessons/{lesson.slug}/start-over")
    assert r.status_code == 200
    state = client.get(f"/api/v1/sessions/{sid}").json()
    assert state["spec"] == ExperimentSpec.model_validate(lesson.spec).model_dump(mode="json")
    assert state["epoch"] == 0


def test_variant_keeps_the_weights_when_it_says_so(client, monkeypatch):
    lesson = _lesson_with_variants()
    keep = Lesson(**{**lesson.__dict__, "slug": "test-keep", "variants": (Variant("faster", {}, reset=False),)})
    monkeypatch.setitem(LESSONS, keep.slug, keep)
    sid = start(client, client.get(f"/lessons/{keep.slug}").text)
    auth = {"Authorization": f"Bearer {client.cookies.get(f'neuroglass_{sid}')}"}
    client.post(f"/api/v1/sessions/{sid}/train", json={"epochs": 4}, headers=auth)
    assert client.post(f"/ui/sessions/{sid}/lessons/{keep.slug}/variants/0").status_code == 200
    assert client.get(f"/api/v1/sessions/{sid}").json()["epoch"] == 4


def test_buttons_refuse_other_browsers_and_unknown_variants(client):
    lesson = _lesson_with_variants()
    sid = start(client, client.get(f"/lessons/{lesson.slug}").text)
    token = client.cookies.pop(f"neuroglass_{sid}")
    for path in ("start-over", "variants/0"):
        r = client.post(f"/ui/sessions/{sid}/lessons/{lesson.slug}/{path}")
        assert r.status_code == 403 and "owner" in r.json()["detail"]
    client.cookies.set(f"neuroglass_{sid}", token)
    r = client.post(f"/ui/sessions/{sid}/lessons/{lesson.slug}/variants/{len(lesson.variants)}")
    assert r.status_code == 404 and "variants" in r.json()["detail"]
    r = client.post(f"/ui/sessions/{sid}/lessons/no-such-lesson/start-over")
    assert r.status_code == 404 and "no-such-lesson" in r.json()["detail"]


def _found(selector: str, html: str) -> bool:
    """Whether the page's HTML has an element the (simple) selector names: #id, tag.class, .class, tag[attr="v"]."""
    if selector.startswith("#"):
        return f'id="{selector[1:]}"' in html
    if "[" in selector:
        tag, attr = selector.rstrip("]").split("[")
        return re.search(rf"<{tag}\b[^>]*\b{attr}", html) is not None
    tag, cls = selector.split(".")
    return re.search(rf'<{tag or "[a-z]+"}\b[^>]*\bclass="(?:[^"]* )?{cls}[ "]', html) is not None


def test_every_lessons_panels_are_on_its_kinds_page(client):
    pages = {"mlp": client.get("/").text, "cnn": client.get("/presets/cnn-lenet-digits", follow_redirects=True).text}
    for kind, where in lesson_routes.PANEL_SELECTORS.items():
        missing = [key for key, selector in where.items() if not _found(selector, pages[kind])]
        assert not missing, f"the {kind} page has nothing for {missing}"
    for lesson in LESSONS.values():
        unplaced = set(lesson.panels) - set(lesson_routes.PANEL_SELECTORS[lesson.kind])
        assert not unplaced, f"{lesson.slug} points at {unplaced}, which its {lesson.kind} page lacks"


@pytest.mark.parametrize("page", ["/", "/presets/cnn-lenet-digits"])
def test_both_playgrounds_top_bars_list_every_lesson(client, with_coming, page):
    html = client.get(page, follow_redirects=True).text
    menu = html[html.index('id="lessons-menu"') :].split("</details>")[0]
    assert re.findall(r'href="/lessons/([^"]+)"', menu) == list(lesson_routes.LESSONS)
    assert 'href="/lessons">all lessons<' in menu and "· coming" in menu
    assert "onchange" not in html and 'id="preset-picker"' not in html


def test_the_sessions_own_page_and_its_watchers_show_the_lesson(client):
    lesson = _lesson_with_variants()
    sid = start(client, client.get(f"/lessons/{lesson.slug}").text)
    own = client.get(f"/s/{sid}").text
    assert 'id="lesson-aside"' in own and 'id="lesson-start-over"' in own
    assert "data-address=" not in own  # the address bar keeps /s/{id} (the lesson page itself keeps its own)
    assert f'href="/lessons/{lesson.slug}" aria-current="page"' in own  # the menu marks it
    watcher = client.get(f"/watch/{sid}").text  # read-only, whoever asks
    assert 'id="lesson-aside"' in watcher and lesson.question.replace("'", "&#39;") in watcher
    assert 'id="lesson-start-over"' not in watcher and "try: " not in watcher
    plain = client.get("/").text
    assert 'id="lesson-aside"' not in plain and 'aria-current="page" class=' not in plain
