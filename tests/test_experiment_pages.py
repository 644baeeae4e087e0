"""Saved work's pages without a browser: saving from the top bar, the experiments page, the share page
/e/{slug}, opening a copy, renaming and deleting with the owner cookie, opening a file; errors in words."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from server.deps import token_cookie
from server.routes import experiment_pages
from server.routes.experiments import owner_cookie
from tests.pages import start

SPIRAL = {"dataset": {"name": "spiral", "n": 200}, "network": {"hidden": [{"units": 5, "activation": "tanh"}]}}


def errors(html: str) -> list[str]:
    """The error lines of a fragment, as a student reads them."""
    return [m.strip() for m in re.findall(r'class="error"[^>]*>([^<]*)<', html)]


def session_of(html: str) -> str:
    return re.search(r'data-session="([^"]+)"', html).group(1)


def epoch_of(html: str) -> int:
    return int(re.search(r'<output id="epoch"[^>]*>([\d,]+)<', html).group(1).replace(",", ""))


def visitor(client: TestClient) -> TestClient:
    """Another browser on the same server: its own cookie jar."""
    return TestClient(client.app)


@pytest.fixture
def trained(client: TestClient) -> tuple[TestClient, str]:
    """A browser holding a fresh page's session, trained 7 epochs."""
    client.cookies.clear()
    sid = start(client, client.get("/", params={}).text)
    auth = {"Authorization": f"Bearer {client.cookies.get(token_cookie(sid))}"}
    assert client.post(f"/api/v1/sessions/{sid}/train", json={"epochs": 7}, headers=auth).status_code == 200
    return client, sid


def save(client: TestClient, sid: str, name: str, description: str = "") -> dict[str, str]:
    """Save through the page's form; returns the experiment's id and slug."""
    r = client.post(f"/ui/sessions/{sid}/save", data={"name": name, "description": description})
    assert r.status_code == 200, r.text
    slug = re.search(r'id="saved-share" href="/e/([^"]+)"', r.text).group(1)
    found = client.get("/api/v1/experiments", params={"q": name}).json()["items"]
    return {"id": next(e["id"] for e in found if e["slug"] == slug), "slug": slug}


# ------------------------------------------------------------------------------------------ save


def test_saving_from_the_top_bar_sets_the_owner_cookie_and_answers_the_share_link(trained) -> None:
    client, sid = trained
    page = client.get(f"/s/{sid}").text
    assert 'id="save-btn"' in page and 'popovertarget="save-pop"' in page and 'id="save-form"' in page
    assert f'href="/api/v1/sessions/{sid}/export?format=safetensors"' in page and 'id="open-file"' in page
    r = client.post(f"/ui/sessions/{sid}/save", data={"name": "  spiral, 7 epochs ", "description": "tanh"})
    assert r.status_code == 200
    assert re.search(r"saved as <strong[^>]*>spiral, 7 epochs</strong> · epoch <span[^>]*>7<", r.text)
    rec = client.get("/api/v1/experiments", params={"q": "spiral, 7"}).json()["items"][0]
    assert (rec["epoch"], rec["description"]) == (7, "tanh")
    assert f'value="http://testserver/e/{rec["slug"]}"' in r.text and 'data-copy="saved-link"' in r.text
    assert 'href="/experiments"' in r.text
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(owner_cookie(rec["id"])))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert client.cookies.get(owner_cookie(rec["id"]))
    # The owner cookie is the owner token itself: the REST API takes it as a bearer token too.
    owner = {"Authorization": f"Bearer {client.cookies.get(owner_cookie(rec['id']))}"}
    assert client.patch(f"/api/v1/experiments/{rec['id']}", json={"name": "x"}, headers=owner).status_code == 200


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"name": ""}, "save-name", "give it a name, so you can find it again"),
        ({"name": "   "}, "save-name", "a name needs at least one character that is not a space"),
        ({"name": "x" * 201}, "save-name", "a name can be at most 200 characters (this one has 201)"),
        ({"name": "ok", "description": "d" * 5001}, "save-description", "a description can be at most 5000"),
    ],
)
def test_bad_names_are_answered_in_words_beside_the_field(trained, fields, field, words) -> None:
    client, sid = trained
    before = client.get("/api/v1/experiments").json()["total"]
    r = client.post(f"/ui/sessions/{sid}/save", data=fields)
    assert r.status_code == 422
    assert any(e.startswith(words) for e in errors(r.text)), errors(r.text)
    assert f'id="{field}-error"' in r.text and f'aria-describedby="{field}-error"' in r.text
    assert f'value="{fields["name"]}"' in r.text  # what was typed stays
    assert client.get("/api/v1/experiments").json()["total"] == before
    assert not [c for c in client.cookies if c.startswith("neuroglass_exp_")]


def test_saving_needs_this_browsers_session_cookie(trained) -> None:
    client, sid = trained
    assert visitor(client).post(f"/ui/sessions/{sid}/save", data={"name": "not mine"}).status_code == 403


def test_a_store_that_fails_is_503_in_words_not_a_crash(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    sid = start(client, client.get("/").text)
    store = client.app.state.sessions.library.store

    async def refuse_writes() -> None:
        async with store.engine.begin() as conn:
            await conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON experiments "
                    "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
                )
            )

    client.portal.call(refuse_writes)
    r = client.post(f"/ui/sessions/{sid}/save", data={"name": "lost"})
    assert r.status_code == 503
    assert errors(r.text) == [f"not saved: {experiment_pages.STORE_DOWN}"]
    assert 'id="save-form"' in r.text and 'value="lost"' in r.text and "data-swap-errors" in r.text


# ------------------------------------------------------------------------------------------ the experiments page


def test_the_experiments_page_says_when_nothing_is_saved(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    r = client.get("/experiments")
    assert r.status_code == 200
    assert "Nothing saved yet — press <strong>save</strong> on a playground page" in r.text
    assert 'id="search"' in r.text and 'hx-get="/ui/experiments"' in r.text and 'id="open-file"' in r.text
    r = client.get("/ui/experiments", params={"q": "zzz"})
    assert "Nothing saved has “zzz” in its name." in r.text


def test_cards_search_and_pages_newest_first(make_client, monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client()
    sid = start(client, client.get("/").text)
    for name in ("alpha one", "beta", "Alpha two", "alpha three"):
        save(client, sid, name)
    monkeypatch.setattr(experiment_pages, "PER_PAGE", 2)
    names = lambda html: re.findall(r'class="card-name"><a [^>]*>([^<]*)<', html)  # noqa: E731
    r = client.get("/experiments")
    assert names(r.text) == ["alpha three", "Alpha two"] and "4 saved experiments · page 1 of 2" in r.text
    assert 'id="older"' in r.text and 'id="newer"' not in r.text
    r = client.get("/ui/experiments", params={"page": "2"})
    assert names(r.text) == ["beta", "alpha one"] and 'id="newer"' in r.text and 'id="older"' not in r.text
    r = client.get("/ui/experiments", params={"q": "ALPHA"})
    assert "3 saved experiments with “ALPHA” in the name" in r.text and names(r.text) == ["alpha three", "Alpha two"]
    assert 'href="/experiments?q=ALPHA&amp;page=2"' in r.text and 'data-url="/experiments?q=ALPHA&amp;page=1"' in r.text
    assert names(client.get("/ui/experiments", params={"page": "junk"}).text) == ["alpha three", "Alpha two"]
    # every card: picture, kind, data, epoch, test loss, date, and "open a copy"; only the owner's can change
    card = r.text[r.text.index('class="card"') :]
    assert re.search(r'<img src="/api/v1/experiments/[\w-]+/thumbnail.png"', card)
    assert '<span class="card-kind">MLP</span> · circle · epoch <span class="card-epoch">0</span>' in card
    assert re.search(r'test loss <span class="card-loss">[\d.]+</span>', card) and "saved <time" in card
    assert "open a copy" in card and "rename" in card and "delete" in card
    other = visitor(client).get("/experiments").text
    assert other.count("open a copy") == 2 and "rename" not in other and "hx-delete" not in other


def test_opening_a_copy_gives_this_browser_a_session_at_the_saved_epoch(trained) -> None:
    client, sid = trained
    exp = save(client, sid, "to open")
    guest = visitor(client)
    r = guest.post(f"/ui/experiments/{exp['id']}/open", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/s/")
    new = r.headers["location"].removeprefix("/s/")
    assert new != sid and guest.cookies.get(token_cookie(new))
    page = guest.get(f"/s/{new}")
    assert 'data-role="owner"' in page.text and epoch_of(page.text) == 7
    # htmx asks: the answer is HX-Redirect; another browser sees the new session read-only
    r = guest.post(f"/ui/experiments/{exp['id']}/open", headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.headers["HX-Redirect"].startswith("/s/")
    assert 'data-role="viewer"' in visitor(client).get(f"/s/{new}").text
    assert client.get("/s/no-such-session").status_code == 404
    r = guest.post("/ui/experiments/nope/open", follow_redirects=False)
    assert r.status_code == 404 and "cannot be opened" in r.text


# ------------------------------------------------------------------------------------------ rename and delete


def test_rename_and_delete_need_the_owner_cookie(trained) -> None:
    client, sid = trained
    exp = save(client, sid, "mine")
    guest = visitor(client)
    r = guest.patch(f"/ui/experiments/{exp['id']}", data={"name": "stolen"})
    assert r.status_code == 403
    assert errors(r.text) == ["only the browser that saved this experiment can rename or delete it"]
    r = guest.delete(f"/ui/experiments/{exp['id']}")
    assert r.status_code == 403 and f'id="card-{exp["id"]}"' in r.text
    assert client.get(f"/api/v1/experiments/{exp['id']}").json()["name"] == "mine"

    r = client.patch(f"/ui/experiments/{exp['id']}", data={"name": ""})
    assert r.status_code == 422 and errors(r.text) == ["give it a name, so you can find it again"]
    assert '<details class="rename" open>' in r.text
    r = client.patch(f"/ui/experiments/{exp['id']}", data={"name": "renamed"})
    assert r.status_code == 200 and ">renamed</a></h3>" in r.text and "rename" in r.text
    assert client.get(f"/api/v1/experiments/{exp['id']}").json()["name"] == "renamed"

    client.get(f"/e/{exp['slug']}")  # its share page's session exists now
    viewers = client.app.state.sessions.library.viewers
    shown = viewers[exp["id"]]
    r = client.delete(f"/ui/experiments/{exp['id']}")
    assert r.status_code == 200 and r.text == ""
    forgotten = [h for h in r.headers.get_list("set-cookie") if "Max-Age=0" in h]
    assert [h.split("=")[0] for h in forgotten] == [owner_cookie(exp["id"])]
    assert client.get(f"/api/v1/experiments/{exp['id']}").status_code == 404
    assert client.get(f"/e/{exp['slug']}").status_code == 404
    assert shown not in client.app.state.sessions.sessions and exp["id"] not in viewers


def test_opening_the_playground_keeps_the_owner_cookies(trained) -> None:
    client, sid = trained
    exp = save(client, sid, "kept")
    client.cookies.set(token_cookie("gone-session"), "x")
    r = client.get("/")
    deleted = [h.split("=")[0] for h in r.headers.get_list("set-cookie") if "Max-Age=0" in h]
    assert token_cookie("gone-session") in deleted and owner_cookie(exp["id"]) not in deleted
    assert client.cookies.get(owner_cookie(exp["id"]))


# ------------------------------------------------------------------------------------------ the share page


def test_the_share_page_shows_the_saved_network_read_only_with_make_it_mine(trained) -> None:
    client, sid = trained
    exp = save(client, sid, "shared one", "look at the boundary")
    guest = visitor(client)
    r = guest.get(f"/e/{exp['slug']}")
    assert r.status_code == 200
    assert 'data-role="viewer"' in r.text and "saved — read only" in r.text and "<fieldset disabled>" in r.text
    assert re.search(r"saved experiment <strong[^>]*>shared one</strong>", r.text)
    assert "saved on <time" in r.text and "look at the boundary" in r.text and "circle data · sgd" in r.text
    assert f'action="/ui/experiments/{exp["id"]}/open"' in r.text and ">make it mine</button>" in r.text
    assert 'id="save-btn"' not in r.text and 'id="copy-link"' not in r.text
    shown = session_of(r.text)
    assert epoch_of(r.text) == 7 and shown != sid
    assert not [c for c in guest.cookies if c.startswith("neuroglass_")]  # nobody is given its token
    assert session_of(client.get(f"/e/{exp['slug']}").text) == shown  # one session per saved experiment
    # training the owner's session on does not change what the link shows
    auth = {"Authorization": f"Bearer {client.cookies.get(token_cookie(sid))}"}
    client.post(f"/api/v1/sessions/{sid}/train", json={"epochs": 3}, headers=auth)
    assert epoch_of(guest.get(f"/e/{exp['slug']}").text) == 7
    # the share page's session is never written as a live session
    assert client.app.state.sessions.library.written[shown].epoch == 7


def test_an_unknown_share_link_is_a_404_page_in_words(client: TestClient) -> None:
    r = client.get("/e/not-a-slug")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    assert "There is no saved experiment at this link: it may have been deleted, or the link was cut short." in r.text


# ------------------------------------------------------------------------------------------ files


def test_a_downloaded_file_opens_as_a_session_of_this_browser(client: TestClient, new_session) -> None:
    sid, auth = new_session(SPIRAL)
    client.post(f"/api/v1/sessions/{sid}/train", json={"epochs": 4}, headers=auth)
    blob = client.get(f"/api/v1/sessions/{sid}/export", params={"format": "safetensors"}).content
    guest = visitor(client)
    r = guest.post("/ui/import", files={"file": ("net.safetensors", blob)}, follow_redirects=False)
    assert r.status_code == 303
    new = r.headers["location"].removeprefix("/s/")
    assert guest.cookies.get(token_cookie(new)) and epoch_of(guest.get(f"/s/{new}").text) == 4
    r = guest.post("/ui/import", files={"file": ("net.safetensors", blob)}, headers={"HX-Request": "true"})
    assert r.headers["HX-Redirect"].startswith("/s/")


def test_a_file_that_does_not_fit_is_refused_beside_the_button(make_client) -> None:
    client = make_client(max_upload_bytes=10_000)
    r = client.post("/ui/import", files={"file": ("notes.txt", b"PK\x03\x04 a zip")})
    assert r.status_code == 422 and 'id="open-file-error"' in r.text
    assert errors(r.text)[0].startswith("notes.txt cannot be opened:") and "not a safetensors file" in r.text
    r = client.post("/ui/import", files={"file": ("big.safetensors", b"x" * 20_000)})
    assert r.status_code == 413 and errors(r.text) == ["big.safetensors is larger than 10 kB: not a file saved here"]
    r = client.post("/ui/import", files={"other": ("x", b"")})
    assert r.status_code == 422 and errors(r.text)[0].startswith("choose a file first")
