"""The page: GET / (the preview of ?spec=...), GET /watch/{id} (read-only), and htmx form endpoints.

A visit creates no session: the page shows the spec's preview (server/sessions/previews.py, its stand-in id
``draft-<key>`` in the page's URLs) until the visitor's first action, when the page posts ``/ui/sessions`` (the
new session, its token in the cookie) and then sends the action to it (static/js/session.js).

Every form endpoint turns form fields into a partial spec, calls the same SessionManager methods as the REST
API (the token cookie must match), and answers with re-rendered fragments: the sending panel (errors beside
their fields, 422) plus, out of band, the other panels the change affected. The share link is
``/?spec=<base64url of the compact JSON spec>``; docs/page.md describes the page.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import secrets
from typing import Annotated, Any, Literal, overload
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError

from server.csvdata import parse_csv
from server.deps import ManagerDep, PageSessionDep, owns, token_cookie
from server.ml.datasets import DATASETS, FEATURE_LABELS, FEATURES, generate
from server.ml.images import IMAGE_DATASETS
from server.ml.models import ACTIVATIONS
from server.ml.train import OPTIMIZERS
from server.presets import PRESETS
from server.routes.class_context import class_context
from server.routes.embed import embed_of, hide_css
from server.routes.experiments import owner_cookie
from server.routes.kinds import page_kind
from server.routes.views import get_saliency
from server.sessions import NotFound, Session, SessionError
from server.sessions.previews import DRAFT, Preview
from server.spec import MAX_CNN_LAYERS, MAX_HIDDEN_LAYERS, MAX_UNITS, ExperimentSpec, merge_patch
from server.view_schemas import DataPublic, SaliencyPublic

router = APIRouter(tags=["pages"], include_in_schema=False)

NEW_LAYER_UNITS = 2  # TF Playground's choice for an added layer
MAX_CSV_BYTES = 1_000_000

# Each panel: its template and what in the spec it shows (re-rendered out of band when that changes).
PANELS: dict[str, tuple[str, Any]] = {
    "run": (
        "partials/run_form.html",
        lambda sp: (sp.problem, sp.speed, sp.training.model_dump(exclude={"batch_size"}), sp.network.hidden),
    ),
    "data": ("partials/data_panel.html", lambda sp: (sp.problem, sp.dataset.model_dump(), sp.training.batch_size)),
    "network": ("partials/network.html", lambda sp: (sp.features, sp.network, sp.problem, sp.n_classes)),
    "points": ("partials/points.html", lambda sp: (sp.problem, sp.n_classes, len(sp.dataset.added))),
}

# The CNN page's panels, the same way.
CNN_PANELS: dict[str, tuple[str, Any]] = {
    "settings": ("partials/cnn_settings.html", lambda sp: (sp.training, sp.dataset)),
    "layers": ("partials/cnn_layers.html", lambda sp: (sp.network.layers, sp.dataset)),
}


PANELS_BY_KIND = {"mlp": PANELS, "cnn": CNN_PANELS}


def panels_for(s: Session) -> dict[str, tuple[str, Any]]:
    return PANELS_BY_KIND[page_kind(s).name]


# The "more settings" fields of both top bars (partials/more_settings.html): how each one's form text reads —
# "value" as sent, "flag" a checkbox after a hidden "false" (the last value wins), "optional" empty = null (off).
MORE_FIELDS: dict[str, Literal["value", "flag", "optional"]] = {
    "training.loss": "value",
    "training.algorithm": "value",
    "training.momentum": "value",
    "training.dropout": "value",
    "training.batch_norm": "flag",
    "network.init": "value",
    **{f"training.schedule.{k}": "value" for k in ("kind", "warmup_epochs", "every", "factor", "epochs", "floor")},
    **{f"stop.{k}": "optional" for k in ("at_epoch", "test_loss_below", "patience")},
    "stop.restore_best": "flag",
    "dataset.seed": "value",
    "seed": "value",
}

# Where each panel shows errors: the field's own slot, else the panel's (named like the panel).
SLOTS = {
    "run": ["training.learning_rate", "training.optimizer", "training.regularization", "training.regularization_rate"]
    + ["problem", "speed", "network.hidden", *MORE_FIELDS],
    "data": ["dataset.name", "dataset.n", "dataset.train_percent", "dataset.noise", "training.batch_size"]
    + ["csv", "dataset.points", "dataset.split"],
    "network": ["features", "network.hidden"] + [f"network.hidden.{i}" for i in range(MAX_HIDDEN_LAYERS + 1)],
    "points": ["label", "dataset.added"],
    "settings": [f"training.{k}" for k in ("learning_rate", "optimizer", "batch_size")]
    + [f"dataset.{k}" for k in ("name", "noise", "image_size", "n", "augment")]
    + [*MORE_FIELDS],
    "layers": ["network.layers"] + [f"network.layers.{i}" for i in range(MAX_CNN_LAYERS + 1)],
}

# Words a student knows for each field (errors and titles use them).
LABELS = {
    "problem": "problem type",
    "speed": "speed",
    "features": "inputs",
    "dataset.name": "dataset",
    "dataset.n": "number of points",
    "dataset.noise": "noise",
    "dataset.train_percent": "training share",
    "dataset.points": "your points",
    "dataset.added": "added points",
    "network.hidden": "hidden layers",
    "units": "neurons in a layer",
    "training.learning_rate": "learning rate",
    "training.batch_size": "batch size",
    "training.regularization_rate": "regularization rate",
    "training.momentum": "momentum",
    "training.dropout": "dropout rate",
    "training.schedule.warmup_epochs": "warm-up epochs",
    "training.schedule.every": "epochs per drop",
    "training.schedule.factor": "factor",
    "training.schedule.epochs": "cosine epochs",
    "training.schedule.floor": "floor",
    "stop.at_epoch": "stop epoch",
    "stop.test_loss_below": "target test loss",
    "stop.patience": "patience",
    "dataset.seed": "data seed",
    "seed": "weight seed",
}

# What a change that waits for the next reset is called in the change note.
AT_RESET = {"seed": "the weight seed", "network.init": "the initialisation"}


class LinkError(ValueError):
    """A ?spec= value that is not base64url-encoded JSON."""


# ------------------------------------------------------------------------------------------ spec links


def encode_spec(spec: ExperimentSpec) -> str:
    """base64url (no padding) of the compact JSON spec: what ?spec= carries."""
    raw = json.dumps(spec.model_dump(mode="json", exclude_none=True), separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_spec(text: str) -> ExperimentSpec:
    """The spec a ?spec= value stands for; LinkError or pydantic ValidationError when it cannot be read."""
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise LinkError("the link's 'spec' is not base64url-encoded JSON (was it cut short?)") from exc
    if not isinstance(data, dict):
        raise LinkError("the link's 'spec' must be a JSON object")
    return ExperimentSpec.model_validate(data)


def spec_url(spec: ExperimentSpec) -> str:
    return f"/?spec={encode_spec(spec)}"


# ------------------------------------------------------------------------------------------ errors in words


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def friendly(loc: tuple[Any, ...] | list[Any], kind: str, msg: str, ctx: dict[str, Any] | None, given: Any) -> str:
    """A validation error as a sentence a student understands."""
    key = ".".join(str(p) for p in loc)
    label = LABELS.get(key) or LABELS.get(str(loc[-1]) if loc else "", str(loc[-1] if loc else "value"))
    label = label.replace("_", " ")
    ctx = ctx or {}
    you = f" (you entered {given})" if isinstance(given, str | int | float) and str(given) != "" else ""
    if kind == "less_than":
        return f"{label} must be less than {_num(ctx.get('lt'))}{you}"
    if kind == "less_than_equal":
        return f"{label} can be at most {_num(ctx.get('le'))}{you}"
    if kind in ("greater_than_equal", "greater_than"):
        word = "at least" if kind.endswith("equal") else "more than"
        return f"{label} must be {word} {_num(ctx.get('ge', ctx.get('gt')))}{you}"
    if kind in ("int_parsing", "int_from_float", "int_type"):
        return f"{label} must be a whole number{you}"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return f"{label} must be a number{you}"
    if kind == "too_short" and key == "features":
        return "switch on at least one input: the network needs something to look at"
    if kind == "too_long":
        return f"at most {ctx.get('max_length')} {label}"
    if kind == "literal_error":
        return f"{label}: choose one of {ctx.get('expected')}"
    return msg.removeprefix("Value error, ")


def errors_of(exc: ValidationError | SessionError) -> dict[str, str]:
    """{field path: message}, first error per field."""
    if isinstance(exc, SessionError):
        return {".".join(map(str, exc.loc)): exc.message}
    out: dict[str, str] = {}
    for e in exc.errors(include_url=False):
        key = ".".join(map(str, e["loc"]))
        out.setdefault(key, friendly(e["loc"], e["type"], e["msg"], e.get("ctx"), e.get("input")))
    return out


def place(errors: dict[str, str], slots: list[str], fallback: str) -> dict[str, str]:
    """Each error in the slot whose name is the longest prefix of its field (else the panel's own slot)."""
    placed: dict[str, str] = {}
    for key, message in errors.items():
        fits = [s for s in slots if key == s or key.startswith(s + ".")]
        slot = max(fits, key=len) if fits else fallback
        placed[slot] = f"{placed[slot]}; {message}" if slot in placed else message
    return placed


def change_note(report: dict[str, Any], old: ExperimentSpec, new: ExperimentSpec) -> str:
    """What a live edit kept and changed, in one line."""
    w = report["weights"]
    parts = [f"{w['kept']} weights kept" + (f", {w['initialized']} new" if w["initialized"] else "")]
    # (switching inputs rebuilds the server's copy of the data too, but the points stay the same)
    if report["data"] == "regenerated" and (old.dataset, old.problem) != (new.dataset, new.problem):
        parts.insert(0, "data regenerated")
    if report["optimizer_state"] == "reinitialized":
        parts.append("optimizer state restarted")
    if report["applies_at_reset"]:
        names = [AT_RESET.get(name, name) for name in report["applies_at_reset"]]
        parts.append(f"{' and '.join(names)} {'take' if len(names) > 1 else 'takes'} effect at the next reset")
    return "Applied without a reset: " + "; ".join(parts) + "."


# ------------------------------------------------------------------------------------------ rendering


@functools.cache
def catalog(frame_rate: float) -> dict[str, Any]:
    """What the controls offer (fixed for the server's life)."""
    return {
        "datasets": list(DATASETS.values()),
        "activations": ACTIVATIONS,
        "optimizers": OPTIMIZERS,
        "momentum_optimizers": [name for name, o in OPTIMIZERS.items() if "momentum" in o.uses],
        "more_fields": list(MORE_FIELDS),
        "features": [(name, FEATURE_LABELS[name]) for name in FEATURES],
        "frame_rate": frame_rate,
        "speeds": [(None, "max")]
        + [(float(frame_rate), "1 epoch per frame")]
        + [(v, f"{v:g} epoch{'' if v == 1 else 's'}/s") for v in (1.0, 3.0, 10.0, 100.0, 1000.0)],
        "max_layers": MAX_HIDDEN_LAYERS,
        "max_units": MAX_UNITS,
        "learning_rates": [0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10],
        "image_datasets": list(IMAGE_DATASETS.values()),
        "cnn_presets": [(name, p["title"]) for name, p in PRESETS.items() if name.startswith("cnn-")],
        "max_cnn_layers": MAX_CNN_LAYERS,
        "regularization_rates": [0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10],
    }


def context(request: Request, s: Session, readonly: bool, **extra: Any) -> dict[str, Any]:
    manager = request.app.state.sessions
    return {
        "request": request,
        "s": s,
        "spec": s.spec,
        "state": manager.public(s),
        "readonly": readonly,
        "kind": page_kind(s),
        "catalog": catalog(request.app.state.settings.frame_rate),
        "link_chars": len(encode_spec(s.spec)),
        "errs": {},
        "form": {},
        "oob": False,
        "draft": s.id.startswith(DRAFT),  # a preview: the first action creates the session
        "lesson_slug": None,
        **extra,
    }


def templates(request: Request) -> Jinja2Templates:
    """The app's Jinja templates (set up once in server.app)."""
    t: Jinja2Templates = request.app.state.templates
    return t


def fragment(request: Request, name: str, ctx: dict[str, Any]) -> str:
    return templates(request).get_template(name).render(ctx)


def respond(
    request: Request,
    s: Session,
    sender: str,
    old: ExperimentSpec,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    note: str | None = None,
    readonly: bool = False,
) -> HTMLResponse:
    """The sender's panel (errors beside their fields, the values as the user sent them) plus, out of band, the
    other panels the change touched and the note of what it kept."""
    errs = place(errors or {}, SLOTS.get(sender, []), sender)
    ctx = context(request, s, readonly, errs=errs, form=form or {})
    panels = panels_for(s)
    html = [fragment(request, panels[sender][0], ctx)] if sender in panels else []
    if not errors:
        for name, (template, key) in panels.items():
            if name != sender and key(old) != key(s.spec):
                html.append(fragment(request, template, {**ctx, "oob": True}))
        html.append(fragment(request, "partials/change_note.html", {**ctx, "note": note, "oob": True}))
    response = HTMLResponse("".join(html), status_code=422 if errors else 200)
    if not errors:
        trigger = {"ng:spec": {"url": spec_url(s.spec), "spec_version": s.spec_version}}
        response.headers["HX-Trigger"] = json.dumps(trigger)
    return response


# ------------------------------------------------------------------------------------------ dependencies


async def form_fields(request: Request) -> dict[str, list[str]]:
    """URL-encoded form fields (what htmx sends: in the body, or the query for DELETE), each with all its values."""
    fields = parse_qs(request.url.query, keep_blank_values=True)
    for name, values in parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True).items():
        fields.setdefault(name, []).extend(values)
    return fields


FormDep = Annotated[dict[str, list[str]], Depends(form_fields)]
OwnedDep = PageSessionDep


@overload
def first(form: dict[str, list[str]], name: str, default: str) -> str: ...


@overload
def first(form: dict[str, list[str]], name: str, default: None = None) -> str | None: ...


def first(form: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    """A form field's first value, or ``default`` when the form does not send it."""
    values = form.get(name)
    return values[0] if values else default


def more_settings(form: dict[str, list[str]]) -> dict[str, Any]:
    """The partial spec of the "more settings" fields the form sends (MORE_FIELDS says how each one reads)."""
    patch: dict[str, Any] = {}
    for name, how in MORE_FIELDS.items():
        values = form.get(name)
        if not values:
            continue
        value: Any = values[0]
        if how == "flag":
            value = values[-1] == "true"
        elif how == "optional":
            value = value.strip() or None
        patch = merge_patch(patch, _nest(name, value))
    return patch


def _nest(path: str, value: Any) -> dict[str, Any]:
    """``"a.b.c", v`` → ``{"a": {"b": {"c": v}}}``."""
    out: Any = value
    for part in reversed(path.split(".")):
        out = {part: out}
    result: dict[str, Any] = out
    return result


async def apply(
    request: Request,
    s: Session,
    sender: str,
    patch: dict[str, Any],
    form: dict[str, list[str]],
    moved: dict[str, str] | None = None,
) -> HTMLResponse:
    """Patch the session; answer with fragments (errors placed beside their fields on failure; ``moved`` puts
    an error of one field beside another control, the one whose change the rule refused)."""
    old = s.spec
    flat = {k: v[-1] if k in MORE_FIELDS and MORE_FIELDS[k] == "flag" else v[0] for k, v in form.items() if v}
    try:
        report = await request.app.state.sessions.patch(s, patch)
    except (ValidationError, SessionError) as exc:
        errors = {(moved or {}).get(k, k): v for k, v in errors_of(exc).items()}
        return respond(request, s, sender, old, errors=errors, form=flat)
    return respond(request, s, sender, old, note=change_note(report, old, s.spec), form=flat)


# ------------------------------------------------------------------------------------------ pages


def _page(request: Request, s: Session, readonly: bool, page_error: str | None = None, **extra: Any) -> HTMLResponse:
    extra = {"url": spec_url(s.spec), **extra}
    if "classroom" not in extra:
        extra["classroom"] = class_context(request, s)
    ctx = context(request, s, readonly, page_error=page_error, **extra)
    ctx["mlp_url"] = spec_url(ExperimentSpec())
    ctx["cnn_url"] = spec_url(ExperimentSpec.model_validate(PRESETS["cnn-lenet-digits"]["spec"]))
    ctx["spec_text"] = encode_spec(s.spec)  # what a preview page posts to create its session
    return templates(request).TemplateResponse(request, page_kind(s).template, ctx)


def embedded(request: Request, s: Session, address: str) -> dict[str, Any]:
    """What ``?embed=1&hide=...`` asks of this page (server/routes/embed.py): the template's ``embed``, the
    style that hides, the names it does not know, and the page's ``url`` keeping them."""
    kind = page_kind(s).name
    e = embed_of(request.query_params.get("embed"), request.query_params.get("hide"), kind)
    return {"embed": e, "hide_css": hide_css(e, kind), "url": address + e.query()}


@router.get("/presets/{name}")
async def open_preset(request: Request, name: str) -> RedirectResponse:
    """A lesson's experiment: the page of that preset (``embed`` and ``hide`` go along)."""
    if name not in PRESETS:
        raise HTTPException(404, f"no preset {name!r}")
    keep = {k: v for k, v in request.query_params.items() if k in ("embed", "hide")}
    more = "&" + urlencode(keep) if keep else ""
    return RedirectResponse(spec_url(ExperimentSpec.model_validate(PRESETS[name]["spec"])) + more, status_code=303)


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, manager: ManagerDep, spec: Annotated[str | None, Query()] = None) -> HTMLResponse:
    """The link's spec (or the defaults, with the reason shown) as a preview: no session until the visitor acts."""
    page_error = None
    try:
        wanted = decode_spec(spec) if spec else ExperimentSpec()
    except (LinkError, ValidationError) as exc:
        why = str(exc) if isinstance(exc, LinkError) else "; ".join(errors_of(exc).values())
        page_error = f"This link's experiment could not be opened: {why}. Showing the default experiment instead."
        wanted = ExperimentSpec()
    try:
        preview = await manager.previews.of(wanted)
    except SessionError as exc:
        if exc.status_code != 422:
            ctx = {"request": request, "message": exc.message}
            return templates(request).TemplateResponse(request, "error.html", ctx, exc.status_code)
        page_error = (
            f"This link's experiment could not be opened: {exc.message}. Showing the default experiment instead."
        )
        preview = await manager.previews.of(ExperimentSpec())
    view = embedded(request, preview.session, spec_url(preview.session.spec))
    response = _page(request, preview.session, readonly=False, page_error=page_error, create_url="/ui/sessions", **view)
    for name in request.cookies:  # forget the keys of sessions that are gone; saved experiments' owner keys stay
        session_id = name.removeprefix("neuroglass_")
        if name != session_id and not name.startswith(owner_cookie("")) and session_id not in manager.sessions:
            response.delete_cookie(name, path="/")
    return response


class PageSession(BaseModel):
    """The session a page's first action created. Its token is in the cookie, and — for an embedded page
    only — here too: in another site's iframe the browser keeps the cookie apart (or refuses it), so the page's
    script holds the token and presents it itself."""

    id: str
    token: str | None = None


async def create_for_page(
    manager: Any, spec: ExperimentSpec, status: int = 201, embedded: bool = False
) -> tuple[Session, JSONResponse]:
    """A new session of ``spec`` owned by this browser: the answer ``{id}`` (and the token for an embedded
    page) with the token cookie set."""
    s = await manager.create(spec)
    answer = PageSession(id=s.id, token=s.token if embedded else None)
    response = JSONResponse(answer.model_dump(exclude_none=True), status_code=status)
    response.set_cookie(token_cookie(s.id), s.token, path="/", httponly=True, samesite="lax")  # for the browser session
    return s, response


@router.post("/ui/sessions", response_model=PageSession, status_code=201)
async def start_session(manager: ManagerDep, form: FormDep) -> JSONResponse:
    """A preview page's first action: the session of the spec it shows (``spec``: what ?spec= carries)."""
    try:
        spec = decode_spec(first(form, "spec", ""))
    except LinkError as exc:
        raise HTTPException(422, str(exc)) from None
    _, response = await create_for_page(manager, spec, embedded=first(form, "embed", "") == "1")
    return response


def preview_or_404(manager: Any, key: str) -> Preview:
    preview: Preview | None = manager.previews.find(key)
    if preview is None:
        raise HTTPException(404, "this page's preview is no longer kept: reload the page")
    return preview


def viewed(manager: Any, session_id: str) -> Session:
    """The session a read-only fragment shows: a live one, or a page's preview (``draft-<key>``)."""
    if session_id.startswith(DRAFT):
        preview: Preview | None = manager.previews.find(session_id)
        if preview is None:
            raise NotFound("this page's preview is no longer kept: reload the page")
        return preview.session
    s: Session = manager.get(session_id)
    return s


@router.get("/ui/previews/{key}/frame")
async def preview_frame(manager: ManagerDep, key: str) -> Response:
    """A preview's frame at epoch 0, in the websocket's binary envelope (computed once per spec)."""
    return Response(preview_or_404(manager, key).frame, media_type="application/octet-stream")


@router.get("/ui/previews/{key}/data", response_model=DataPublic, response_model_exclude_unset=True)
async def preview_data(manager: ManagerDep, key: str) -> dict[str, Any]:
    """A preview's data, as GET /api/v1/sessions/{id}/data answers it."""
    return manager.data(preview_or_404(manager, key).session)


@router.get("/ui/previews/{key}/saliency", response_model=SaliencyPublic)
async def preview_saliency(
    manager: ManagerDep,
    key: str,
    examples: Annotated[list[int], Query(max_length=64)] = [0],  # noqa: B006
    encoding: Annotated[Literal["base64", "list"], Query()] = "base64",
) -> dict[str, Any]:
    """A CNN preview's saliency maps, as GET /api/v1/sessions/{id}/saliency answers them."""
    return await get_saliency(preview_or_404(manager, key).session, manager, examples, encoding)


@router.get("/watch/{session_id}", response_class=HTMLResponse)
async def watch(request: Request, session_id: str, manager: ManagerDep) -> HTMLResponse:
    """Follow someone's session live, read-only."""
    s = manager.sessions.get(session_id)
    if s is None:
        ctx = {"request": request, "message": f"There is no session {session_id!r} to watch (it may have ended)."}
        return templates(request).TemplateResponse(request, "error.html", ctx, 404)
    return _page(request, s, readonly=True)


@router.get("/s/{session_id}", response_class=HTMLResponse)
async def session_page(request: Request, session_id: str, manager: ManagerDep) -> HTMLResponse:
    """A session's own page (where opening a saved experiment or a file lands, at its epoch): the owner's
    browser changes it, any other watches it read-only."""
    s = manager.sessions.get(session_id)
    if s is None:
        message = f"There is no session {session_id!r} (it may have been deleted, or it expired unwatched)."
        return templates(request).TemplateResponse(request, "error.html", {"request": request, "message": message}, 404)
    return _page(request, manager.get(session_id), readonly=not owns(s, request))


@functools.cache
def _previews() -> dict[str, Any]:
    out = {}
    for name in DATASETS:
        points, labels = generate(name, 120, 0.0, 0)
        out[name] = {"points": points.round(2).tolist(), "labels": labels.round(3).tolist()}
    return out


@router.get("/copy/{session_id}")
async def copy(session_id: str, manager: ManagerDep) -> RedirectResponse:
    """A watcher's way to experiment: a new session of their own from the session's current spec."""
    return RedirectResponse(spec_url(viewed(manager, session_id).spec), status_code=303)


@router.get("/ui/datasets/preview")
async def dataset_previews() -> dict[str, Any]:
    """A few points of every dataset, for the pictures in the dataset picker."""
    return _previews()


@router.get("/ui/sessions/{session_id}/panels", response_class=HTMLResponse)
async def panels(request: Request, session_id: str, manager: ManagerDep) -> HTMLResponse:
    """Every panel out of band, read-only: what a watching page reloads when the presenter changes the spec."""
    s = manager.get(session_id)
    ctx = context(request, s, True, oob=True)
    return HTMLResponse("".join(fragment(request, t, ctx) for t, _ in panels_for(s).values()))


# ------------------------------------------------------------------------------------------ run buttons


@router.post("/ui/sessions/{session_id}/run/{action}", response_class=HTMLResponse)
async def run(
    request: Request, s: OwnedDep, manager: ManagerDep, action: Literal["play", "pause", "toggle", "step", "reset"]
) -> HTMLResponse:
    """play / pause / toggle / step / reset; answers the run buttons."""
    error = None
    if action == "toggle":
        action = "pause" if s.status == "running" else "play"
    try:
        await getattr(manager, action)(s)
    except SessionError as exc:
        error = exc.message
    ctx = context(request, s, False, run_error=error)
    return HTMLResponse(fragment(request, "partials/run_buttons.html", ctx), status_code=409 if error else 200)


# ------------------------------------------------------------------------------------------ forms


@router.patch("/ui/sessions/{session_id}/run", response_class=HTMLResponse)
async def run_form(request: Request, s: OwnedDep, form: FormDep) -> HTMLResponse:
    """Top bar: learning rate, optimizer, regularization, problem, speed; 'apply to all layers'; more settings
    (loss, algorithm, momentum, dropout, batch norm, init, schedule, stop conditions, seeds)."""
    spec = s.spec
    training = {k: first(form, f"training.{k}") for k in ("learning_rate", "optimizer", "regularization")}
    training["regularization_rate"] = first(form, "training.regularization_rate")
    patch = merge_patch(more_settings(form), {"training": {k: v for k, v in training.items() if v is not None}})
    if "speed" in form:
        patch["speed"] = first(form, "speed") or None
    problem = first(form, "problem", spec.problem)
    if problem != spec.problem:
        patch["problem"] = problem
        patch["dataset"] = {**patch.get("dataset", {}), "added": []}  # class labels and regression targets don't mix
        if spec.dataset.name != "custom" and problem in ("classification", "regression"):
            patch["dataset"]["name"] = next(d.name for d in DATASETS.values() if d.problem == problem)
        if problem == "regression":
            patch["training"].update(loss="mse", algorithm="backprop")
    if first(form, "op") == "apply_activation":
        act = first(form, "default_activation", "tanh")
        hidden = [{"units": layer.units, "activation": act} for layer in spec.network.hidden]
        patch = merge_patch(patch, {"network": {"hidden": hidden}})
    # the perceptron rule refused for the hidden layers: say so beside the algorithm picker that asked for it
    moved = {"network.hidden": "training.algorithm"} if patch["training"].get("algorithm") == "perceptron" else None
    return await apply(request, s, "run", patch, form, moved)


@router.patch("/ui/sessions/{session_id}/data", response_class=HTMLResponse)
async def data_form(request: Request, s: OwnedDep, form: FormDep) -> HTMLResponse:
    """Data panel: dataset, number of points, training share, noise, batch size; regenerate."""
    dataset: dict[str, Any] = {k: first(form, f"dataset.{k}") for k in ("name", "n", "train_percent", "noise")}
    dataset = {k: v for k, v in dataset.items() if v is not None}
    if dataset.get("name", "custom") != "custom":
        dataset["points"] = None
    if first(form, "op") == "regenerate":
        dataset["seed"] = secrets.randbelow(2**31)
    patch: dict[str, Any] = {"dataset": dataset}
    if "training.batch_size" in form:
        patch["training"] = {"batch_size": first(form, "training.batch_size")}
    return await apply(request, s, "data", patch, form)


@router.post("/ui/sessions/{session_id}/csv", response_class=HTMLResponse)
async def csv_upload(request: Request, s: OwnedDep, form: FormDep) -> HTMLResponse:
    """Your own points from a CSV file (read by the page, sent as text): dataset 'custom'."""
    text, name = first(form, "csv", ""), first(form, "csv_name", "the file")
    try:
        if len(text.encode()) > MAX_CSV_BYTES:
            raise ValueError(f"the file is larger than {MAX_CSV_BYTES // 1_000_000} MB")
        points, split = parse_csv(text, s.spec.problem)
    except ValueError as exc:
        errors = {"csv": f"{name}: {exc}"}
        return respond(request, s, "data", s.spec, errors=errors, form={})
    return await apply(request, s, "data", {"dataset": {"name": "custom", "points": points, "split": split}}, form)


@router.patch("/ui/sessions/{session_id}/network", response_class=HTMLResponse)
async def network_form(request: Request, s: OwnedDep, form: FormDep) -> HTMLResponse:
    """Network: input features, layers (+/−), neurons per layer (+/−), each layer's activation."""
    spec = s.spec
    hidden = [layer.model_dump() for layer in spec.network.hidden]
    activations = form.get("activation", [])
    if len(activations) == len(hidden):  # a stale form (another tab changed the layers) only sends ops
        for layer, act in zip(hidden, activations, strict=True):
            layer["activation"] = act
    op, _, arg = (first(form, "op") or "").partition(":")
    i = int(arg) if arg.isdigit() else -1
    errors: dict[str, str] = {}
    if op == "add_layer":
        default = first(form, "default_activation") or (hidden[-1]["activation"] if hidden else "tanh")
        hidden.append({"units": NEW_LAYER_UNITS, "activation": default})
    elif op == "remove_layer":
        if not hidden:
            errors["network.hidden"] = "there is no hidden layer to remove"
        hidden = hidden[:-1]
    elif op in ("add_unit", "remove_unit") and 0 <= i < len(hidden):
        hidden[i]["units"] += 1 if op == "add_unit" else -1
        if hidden[i]["units"] < 1:
            errors[f"network.hidden.{i}"] = "a layer needs at least one neuron: remove the whole layer instead"
    if errors:
        return respond(request, s, "network", spec, errors=errors)
    patch: dict[str, Any] = {"network": {"hidden": hidden}}
    if "features_sent" in form:
        patch["features"] = [f for f in FEATURES if f in form.get("features", [])]
    return await apply(request, s, "network", patch, form)


@router.post("/ui/sessions/{session_id}/points", response_class=HTMLResponse)
async def add_point(request: Request, s: OwnedDep, form: FormDep) -> HTMLResponse:
    """A point added by clicking the output map (x1, x2 in the plane; label = the chosen class or value)."""
    try:
        x1, x2 = (round(float(first(form, k, "")), 3) for k in ("x1", "x2"))
        label = float(first(form, "label", ""))
    except ValueError:
        return respond(request, s, "points", s.spec, errors={"label": "choose a class (or type a value) first"})
    patch = {"dataset": {"added": [list(p) for p in s.spec.dataset.added] + [[x1, x2, label]]}}
    return await apply(request, s, "points", patch, form)


@router.delete("/ui/sessions/{session_id}/points", response_class=HTMLResponse)
async def clear_points(request: Request, s: OwnedDep, form: FormDep) -> HTMLResponse:
    """Forget the points added by clicking."""
    return await apply(request, s, "points", {"dataset": {"added": []}}, form)
