"""?embed=1&hide=...: what the server renders — the hiding rule from known names only, a note for the rest
(escaped), the addresses keeping both, and no session made."""

from __future__ import annotations

from fastapi.testclient import TestClient

from server.routes.embed import HIDE, embed_of, hide_css
from tests.pages import attribute


def test_names_are_read_per_page_kind() -> None:
    e = embed_of("1", "learningRate, filters,,bogus,learningRate", "mlp")
    assert e.embed and e.hidden == ("learningRate",) and e.absent == ("filters",) and e.unknown == ("bogus",)
    assert str(hide_css(e, "mlp")) == f"{HIDE['learningRate'][1]['mlp']} {{ display: none !important; }}"
    assert embed_of(None, None, "cnn").query() == "" and not embed_of("0", "", "cnn").embed
    assert all(set(kinds) <= {"mlp", "cnn"} and words for words, kinds in HIDE.values())


def test_the_page_hides_what_it_is_told_and_notes_the_rest(client: TestClient) -> None:
    before = len(client.app.state.sessions.sessions)  # type: ignore[attr-defined]
    r = client.get("/", params={"embed": "1", "hide": "data,charts,<script>x</script>"})
    assert r.status_code == 200
    assert 'class="embed"' in r.text and '<style id="embed-hide">.data-col, #charts { display' in r.text
    assert "&lt;script&gt;x&lt;/script&gt;" in r.text and "<script>x</script>" not in r.text
    assert "embed=1" in (attribute(r.text, "data-url") or "") and "embed=1" in (attribute(r.text, "data-keep") or "")
    assert len(client.app.state.sessions.sessions) == before  # type: ignore[attr-defined]
    plain = client.get("/")
    assert 'id="embed-hide"' not in plain.text and 'id="embed-note"' not in plain.text


def test_presets_and_lessons_pass_the_embed_on(client: TestClient) -> None:
    r = client.get("/presets/cnn-lenet-digits", params={"embed": "1", "hide": "maps"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("&embed=1&hide=maps")
    page = client.get(r.headers["location"]).text
    assert "#maps-h" in page and 'class="embed"' in page
