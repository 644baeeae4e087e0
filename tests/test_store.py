"""The store on both backends users have (the embedded SQLite file, a real PostgreSQL server), and saved
work through the REST API: save, list, open and continue exactly, rename, delete, the safetensors file."""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from PIL import Image
from safetensors import safe_open
from safetensors.numpy import save as save_tensors
from sqlalchemy import text

from server.store import Store
from server.store.models import Base
from tests.conftest import SESSIONS, create_session

EXPERIMENTS = "/api/v1/experiments"
SPIRAL = {"dataset": {"name": "spiral", "n": 200}, "network": {"hidden": [{"units": 6, "activation": "tanh"}] * 2}}
POINTS = {"inputs": [[0.5, 1.0], [-2.0, 3.0], [4.0, -4.5]]}


def run(coro):
    return asyncio.run(coro)


async def _started(url: str) -> Store:
    store = Store(url)
    await store.start()
    return store


def _add(store: Store, name: str, **kw):
    values = dict(
        name=name,
        description="",
        kind="mlp",
        spec={"seed": 0},
        epoch=1,
        metrics={"train_loss": 0.5},
        state=b"state",
        thumbnail=b"png",
    )
    return store.add_experiment(**{**values, **kw})


def test_store_saves_searches_pages_and_checks_owners(database_url):
    async def go():
        store = await _started(database_url)
        await store.start()  # migrations are idempotent: a second start changes nothing
        try:
            first, owner = await _add(store, "Spiral, 3 layers")
            await _add(store, "XOR 100%_done")
            await _add(store, "circle")
            items, total = await store.experiments()
            assert total == 3 and [r.name for r in items] == ["circle", "XOR 100%_done", "Spiral, 3 layers"]
            assert [r.name for r in (await store.experiments("SPIRAL"))[0]] == ["Spiral, 3 layers"]
            assert [r.name for r in (await store.experiments("%_"))[0]] == ["XOR 100%_done"]  # escaped, not wildcards
            page, total = await store.experiments(limit=2, offset=2)
            assert total == 3 and [r.name for r in page] == ["Spiral, 3 layers"]
            assert first.created_at.tzinfo is not None
            assert (await store.experiment(first.slug, by="slug")).id == first.id
            assert await store.owns(first.id, owner) and not await store.owns(first.id, owner + "x")
            assert not await store.owns(first.id, None)
            renamed = await store.update_experiment(first.id, name="Spiral (kept)", description="3 × 6 tanh")
            assert renamed.name == "Spiral (kept)" and renamed.description == "3 × 6 tanh"
            assert await store.experiment_state(first.id) == b"state"
            await store.delete_experiment(first.id)
            assert await store.experiment(first.id) is None and await store.experiment_state(first.id) is None

            await store.put_live("abc", "token-1", 5, b"one")
            await store.put_live("abc", "token-1", 9, b"two")  # overwritten, not duplicated
            live = await store.live()
            assert [(r.id, r.token, r.epoch, r.state) for r in live] == [("abc", "token-1", 9, b"two")]
            await store.drop_live("abc")
            assert await store.live() == []
        finally:
            await store.close()

    run(go())


def test_the_tables_are_what_the_migrations_make(database_url):
    """The ORM models and the Alembic migrations describe the same schema (no drift either way)."""

    async def go():
        store = await _started(database_url)
        try:
            async with store.engine.connect() as conn:
                diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata))
                version = (await conn.execute(text("select version_num from alembic_version"))).scalar_one()
        finally:
            await store.close()
        assert diff == [] and version == "0003"

    run(go())


def _save(client, sid, auth, name="spiral run", **extra):
    r = client.post(EXPERIMENTS, json={"session_id": sid, "name": name, **extra}, headers=auth)
    assert r.status_code == 201, r.text
    return r.json()


def _open(client, experiment_id):
    r = client.post(f"{EXPERIMENTS}/{experiment_id}/open")
    assert r.status_code == 201, r.text
    body = r.json()
    return body, {"Authorization": f"Bearer {body['token']}"}


@pytest.mark.parametrize(
    "spec",
    [
        {**SPIRAL, "training": {"optimizer": "adam", "learning_rate": 0.01, "batch_size": 10}},
        {
            **SPIRAL,
            "network": {"hidden": [{"units": 5, "activation": "relu"}] * 2},
            "training": {"batch_norm": True, "dropout": 0.2},
        },
        {"dataset": {"name": "gauss", "n": 100}, "training": {"algorithm": "perceptron"}, "network": {"hidden": []}},
    ],
    ids=["adam", "batch-norm-dropout", "perceptron"],
)
def test_an_opened_experiment_predicts_the_same_and_trains_on_to_the_same_numbers(make_client, database_url, spec):
    client = make_client(database_url=database_url)
    sid, auth = create_session(client, spec)
    client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 40}, headers=auth)
    saved = _save(client, sid, auth, description="before the plateau")
    assert saved["epoch"] == 40 and saved["description"] == "before the plateau" and saved["kind"] == "mlp"
    assert saved["share_url"] == f"/e/{saved['slug']}" and len(saved["slug"]) >= 10
    opened, auth2 = _open(client, saved["id"])
    assert opened["epoch"] == 40 and opened["status"] == "paused" and opened["id"] != sid
    assert opened["metrics"] == saved["metrics"]
    p1 = client.post(f"{SESSIONS}/{sid}/predict", json=POINTS).json()
    p2 = client.post(f"{SESSIONS}/{opened['id']}/predict", json=POINTS).json()
    assert p1 == p2
    a = client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 25}, headers=auth).json()
    b = client.post(f"{SESSIONS}/{opened['id']}/train", json={"epochs": 25}, headers=auth2).json()
    assert (a["epoch"], a["step"], a["metrics"]) == (b["epoch"], b["step"], b["metrics"])
    w1 = client.get(f"{SESSIONS}/{sid}/weights").json()["layers"]
    w2 = client.get(f"{SESSIONS}/{opened['id']}/weights").json()["layers"]
    assert w1 == w2
    h1 = client.get(f"{SESSIONS}/{sid}/history").json()["records"]
    h2 = client.get(f"{SESSIONS}/{opened['id']}/history").json()["records"]
    assert [r["epoch"] for r in h2] == [r["epoch"] for r in h1]  # the history came with it


def test_a_cnn_experiment_opens_exactly_and_its_thumbnail_shows_its_filters(make_client):
    client = make_client()
    spec = {
        "dataset": {"name": "bars", "n": 120},
        "network": {"kind": "cnn", "layers": [{"type": "conv", "filters": 4, "kernel": 3}, {"type": "flatten"}]},
        "training": {"batch_size": 20, "learning_rate": 0.05},
    }
    sid, auth = create_session(client, spec)
    client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 3}, headers=auth)
    saved = _save(client, sid, auth, name="bars edges")
    assert saved["kind"] == "cnn"
    opened, auth2 = _open(client, saved["id"])
    a = client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 2}, headers=auth).json()["metrics"]
    b = client.post(f"{SESSIONS}/{opened['id']}/train", json={"epochs": 2}, headers=auth2).json()["metrics"]
    assert a == b
    png = client.get(saved["thumbnail_url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    picture = np.asarray(Image.open(io.BytesIO(png.content)))
    assert picture.shape == (96, 96, 3)
    tiles = [picture[1:40, 1:40], picture[1:40, 49:88], picture[49:88, 1:40], picture[49:88, 49:88]]
    assert all(t.std() > 5 for t in tiles)  # four filters drawn, each with its own pattern
    assert not (picture[1:40, 1:40] == picture[1:40, 49:88]).all()


def test_an_mlp_thumbnail_is_the_decision_map(make_client):
    client = make_client()
    sid, auth = create_session(client, {"dataset": {"name": "gauss"}, "seed": 1})
    client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 30}, headers=auth)
    saved = _save(client, sid, auth, name="two blobs")
    picture = np.asarray(Image.open(io.BytesIO(client.get(saved["thumbnail_url"]).content))).astype(int)
    out = client.post(f"{SESSIONS}/{sid}/predict", json={"inputs": [[-5.9, 5.9], [5.9, -5.9]]}).json()["outputs"]
    orange, blue = np.array([245, 147, 34]), np.array([8, 119, 189])
    for (row, col), value in zip([(0, 0), (95, 95)], out, strict=True):
        toward = blue if value > 0 else orange
        away = orange if value > 0 else blue
        px = picture[row, col]
        assert np.abs(px - toward).sum() < np.abs(px - away).sum()  # the colour the page paints there


def test_the_list_searches_pages_and_the_owner_alone_renames_and_deletes(make_client):
    client = make_client()
    sid, auth = create_session(client)
    made = [_save(client, sid, auth, name=n) for n in ("Alpha spiral", "beta circle", "Gamma SPIRAL")]
    listing = client.get(EXPERIMENTS, params={"q": "spiral"}).json()
    assert listing["total"] == 2 and [e["name"] for e in listing["items"]] == ["Gamma SPIRAL", "Alpha spiral"]
    page = client.get(EXPERIMENTS, params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and [e["name"] for e in page["items"]] == ["beta circle"]
    assert "owner_token" not in listing["items"][0] and "owner_token" not in client.get(made[0]["share_url"]).text

    target = made[0]
    url = f"{EXPERIMENTS}/{target['id']}"
    assert client.patch(url, json={"name": "x"}).status_code == 401
    wrong = {"Authorization": f"Bearer {made[1]['owner_token']}"}
    assert client.patch(url, json={"name": "x"}, headers=wrong).status_code == 403
    assert client.delete(url, headers=wrong).status_code == 403
    owner = {"Authorization": f"Bearer {target['owner_token']}"}
    changed = client.patch(url, json={"name": "  Alpha, kept  ", "description": "the good one"}, headers=owner).json()
    assert changed["name"] == "Alpha, kept" and changed["description"] == "the good one"
    assert client.get(url).json()["name"] == "Alpha, kept"
    client.cookies.set(f"neuroglass_exp_{made[2]['id']}", made[2]["owner_token"])  # the page's cookie
    assert client.delete(f"{EXPERIMENTS}/{made[2]['id']}").status_code == 204
    client.cookies.clear()
    assert client.delete(url, headers=owner).status_code == 204
    assert client.get(url).status_code == 404
    assert client.post(f"{url}/open").status_code == 404
    assert client.get(EXPERIMENTS).json()["total"] == 1


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"name": ""}, ["body", "name"]),
        ({"name": "   "}, ["body", "name"]),
        ({"name": "n" * 201}, ["body", "name"]),
        ({"name": "ok", "description": "d" * 5001}, ["body", "description"]),
        ({"name": "ok", "colour": "red"}, ["body", "colour"]),
    ],
)
def test_bad_saves_are_422_naming_the_field(client, body, loc):
    sid, auth = create_session(client)
    r = client.post(EXPERIMENTS, json={"session_id": sid, **body}, headers=auth)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == loc


def test_saving_needs_the_sessions_token(client):
    sid, auth = create_session(client)
    other, other_auth = create_session(client)
    assert client.post(EXPERIMENTS, json={"session_id": sid, "name": "mine"}).status_code == 401
    assert client.post(EXPERIMENTS, json={"session_id": sid, "name": "mine"}, headers=other_auth).status_code == 403
    assert client.post(EXPERIMENTS, json={"session_id": "nope", "name": "mine"}, headers=auth).status_code == 404
    assert client.get(f"{EXPERIMENTS}/nope").status_code == 404
    assert client.get(f"{EXPERIMENTS}/nope/thumbnail.png").status_code == 404
    assert client.get(EXPERIMENTS, params={"limit": 0}).status_code == 422


def test_the_safetensors_file_opens_anywhere_and_continues(client):
    sid, auth = create_session(client, SPIRAL)
    client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 30}, headers=auth)
    r = client.get(f"{SESSIONS}/{sid}/export", params={"format": "safetensors"})
    assert r.status_code == 200 and 'filename="neuroglass-mlp-epoch30.safetensors"' in r.headers["content-disposition"]
    path = client.app.state.settings.data_dir.parent / "export-test.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(r.content)
    try:  # any safetensors reader: the weights by name, the spec and history as metadata
        with safe_open(str(path), "np") as f:
            meta = f.metadata()
            w0 = f.get_tensor("params.0.w")
    finally:
        path.unlink()
    assert json.loads(meta["spec"])["dataset"]["name"] == "spiral" and meta["epoch"] == "30"
    assert json.loads(meta["architecture"])["parameters"] == 2 * 6 + 6 + 6 * 6 + 6 + 6 + 1
    assert [rec["epoch"] for rec in json.loads(meta["history"])][-1] == 30
    assert np.allclose(w0, client.get(f"{SESSIONS}/{sid}/weights").json()["layers"][0]["w"])
    assert client.get(f"{SESSIONS}/{sid}/export").json()["epoch"] == 30  # the JSON export stays

    imported = client.post(f"{SESSIONS}/import", files={"file": ("run.safetensors", r.content)})
    assert imported.status_code == 201, imported.text
    new, auth2 = imported.json()["id"], {"Authorization": f"Bearer {imported.json()['token']}"}
    assert (
        client.post(f"{SESSIONS}/{new}/predict", json=POINTS).json()
        == client.post(f"{SESSIONS}/{sid}/predict", json=POINTS).json()
    )
    a = client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 10}, headers=auth).json()["metrics"]
    b = client.post(f"{SESSIONS}/{new}/train", json={"epochs": 10}, headers=auth2).json()["metrics"]
    assert a == b


def _rewritten(blob: bytes, **meta_changes: str) -> bytes:
    """The same tensors with changed metadata (a file edited by hand, or from another version)."""
    header_size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + header_size])
    meta = {**header.pop("__metadata__"), **meta_changes}
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        dtype = {"F32": np.float32, "I32": np.int32, "U32": np.uint32}[info["dtype"]]
        raw = blob[8 + header_size + start : 8 + header_size + end]
        tensors[name] = np.frombuffer(raw, dtype).reshape(info["shape"])
    return save_tensors(tensors, metadata=meta)


def test_imports_that_do_not_fit_are_422_saying_why(make_client):
    client = make_client(max_upload_bytes=200_000)
    sid, auth = create_session(client, SPIRAL)
    blob = client.get(f"{SESSIONS}/{sid}/export", params={"format": "safetensors"}).content

    def refused(content: bytes) -> str:
        r = client.post(f"{SESSIONS}/import", files={"file": ("f.safetensors", content)})
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["body", "file"]
        return r.json()["detail"][0]["msg"]

    assert "not a safetensors file" in refused(b"PK\x03\x04 a zip, not ours")
    assert "not a safetensors file" in refused(b"")
    bigger = {**SPIRAL, "network": {"hidden": [{"units": 7, "activation": "tanh"}] * 2}}
    spec = client.post(SESSIONS, json=bigger).json()["spec"]
    assert "tensor 'params.0.b' is 6 but its spec's network needs 7" in refused(_rewritten(blob, spec=json.dumps(spec)))
    assert "not valid here" in refused(_rewritten(blob, spec=json.dumps({"dataset": {"name": "no-such-set"}})))
    assert "not a saved Neuroglass session" in refused(_rewritten(blob, format="something-else"))
    foreign = save_tensors({"weight": np.zeros((2, 2), np.float32)})
    assert "not a saved Neuroglass session" in refused(foreign)
    big = client.post(f"{SESSIONS}/import", files={"file": ("f.safetensors", b"x" * 300_000)})
    assert big.status_code == 413


def test_an_experiment_saved_by_an_older_version_opens_with_words_not_a_500(make_client):
    client = make_client()
    sid, auth = create_session(client, SPIRAL)
    saved = _save(client, sid, auth, name="old")
    store = client.app.state.sessions.library.store
    old_spec = {**json.loads(json.dumps(SPIRAL)), "network": {"hidden": [{"units": 6, "activation": "swish-2019"}]}}

    async def age() -> None:
        blob = await store.experiment_state(saved["id"])
        async with store.session() as db, db.begin():
            from server.store.models import Experiment

            row = await db.get(Experiment, saved["id"])
            row.state = _rewritten(blob, spec=json.dumps(old_spec))

    client.portal.call(age)
    r = client.post(f"{EXPERIMENTS}/{saved['id']}/open")
    assert r.status_code == 422
    assert "cannot be opened by this version" in r.json()["detail"][0]["msg"]
    assert client.get(f"{EXPERIMENTS}/{saved['id']}").status_code == 200  # still listed, still there


def test_a_failed_write_is_503_and_what_was_saved_stays(make_client):
    """A real database failure (a trigger refusing the write, as a full disk would): the request fails
    with 503 and every earlier save and its name are intact."""
    client = make_client()
    sid, auth = create_session(client)
    kept = _save(client, sid, auth, name="kept")
    store = client.app.state.sessions.library.store

    async def sabotage() -> None:
        async with store.engine.begin() as conn:
            for verb in ("INSERT", "UPDATE"):
                await conn.execute(
                    text(
                        f"CREATE TRIGGER refuse_{verb.lower()} BEFORE {verb} ON experiments "
                        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
                    )
                )

    client.portal.call(sabotage)
    r = client.post(EXPERIMENTS, json={"session_id": sid, "name": "lost"}, headers=auth)
    assert r.status_code == 503 and "store is unavailable" in r.json()["detail"]
    owner = {"Authorization": f"Bearer {kept['owner_token']}"}
    assert client.patch(f"{EXPERIMENTS}/{kept['id']}", json={"name": "renamed"}, headers=owner).status_code == 503
    listing = client.get(EXPERIMENTS).json()
    assert [e["name"] for e in listing["items"]] == ["kept"]
    assert client.post(f"{EXPERIMENTS}/{kept['id']}/open").status_code == 201


def test_a_save_of_an_opened_experiment_is_a_fork_of_it(client):
    sid, auth = create_session(client, SPIRAL)
    first = _save(client, sid, auth, name="original")
    assert first["parent_id"] is None
    opened, auth2 = _open(client, first["id"])
    client.post(f"{SESSIONS}/{opened['id']}/train", json={"epochs": 5}, headers=auth2)
    fork = _save(client, opened["id"], auth2, name="my fork")
    assert fork["parent_id"] == first["id"] and fork["epoch"] == 5


def test_deleting_over_rest_ends_the_share_pages_session(client):
    sid, auth = create_session(client, SPIRAL)
    saved = _save(client, sid, auth, name="shared")
    assert client.get(saved["share_url"]).status_code == 200
    library = client.app.state.sessions.library
    viewer = library.viewers[saved["id"]]
    assert viewer in client.app.state.sessions.sessions
    owner = {"Authorization": f"Bearer {saved['owner_token']}"}
    assert client.delete(f"{EXPERIMENTS}/{saved['id']}", headers=owner).status_code == 204
    assert viewer not in client.app.state.sessions.sessions
    assert client.get(saved["share_url"]).status_code == 404
