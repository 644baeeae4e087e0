"""Saved work, the pages: save from a playground's top bar, the experiments page (search, pages, open a copy,
rename, delete), a saved experiment's share page ``/e/{slug}``, and opening a downloaded file.

The same Library calls as the REST API (server/routes/experiments.py) behind htmx forms: the answers are
fragments with errors in words beside their fields (each carries ``data-swap-errors``, so static/js/saved.js
lets htmx swap them whatever the status). This browser keeps each experiment it saved as the owner cookie
``neuroglass_exp_{id}``; opening a saved experiment or a file gives it the new session's token cookie and
lands on the session's page ``/s/{id}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from server.deps import ManagerDep, SettingsDep, token_cookie
from server.routes.experiments import owner_cookie, public
from server.routes.pages import FormDep, OwnedDep, _page, first, fragment, templates
from server.schemas import ExperimentChange, ExperimentIn
from server.sessions import Session, SessionError
from server.store import ExperimentRecord, StoreError

router = APIRouter(tags=["pages"], include_in_schema=False)

PER_PAGE = 24  # cards on a page of /experiments
OWNER_COOKIE_SECONDS = 365 * 24 * 3600  # saved work outlives the browser's session: so does the right to change it
NAME_LIMIT, DESCRIPTION_LIMIT = 200, 5000  # as ExperimentIn and ExperimentChange check them
STORE_DOWN = "the saved experiments cannot be reached right now (the store is unavailable); try again in a moment"

# ------------------------------------------------------------------------------------------ words


def saved_on(t: datetime) -> str:
    """'3 May 2025' (UTC: the server does not know the visitor's time zone)."""
    return f"{t.day} {t:%B %Y}"


def number(v: float | None) -> str:
    """A loss as the playground's top bar shows it (three decimals)."""
    return "–" if v is None else f"{v:.3f}"


def percent(v: float | None) -> str | None:
    return None if v is None else f"{100 * v:.1f}\u00a0%"  # as the playground shows it; no line break before %


def size(n: int) -> str:
    return f"{n / 1e6:g} MB" if n >= 1_000_000 else f"{n / 1e3:g} kB"


def facts(spec: dict[str, Any]) -> str:
    """The settings in one line: data, optimizer, learning rate, batch size (both kinds have them)."""
    data, training = spec.get("dataset", {}), spec.get("training", {})
    return (
        f"{data.get('name', '?')} data · {training.get('optimizer', '?')}, learning rate "
        f"{training.get('learning_rate', 0):g}, batch size {training.get('batch_size', '?')}"
    )


def card(rec: ExperimentRecord, request: Request, **extra: Any) -> dict[str, Any]:
    """What a card and the share banner show of a saved experiment."""
    m = rec.metrics
    return {
        **public(rec),
        "owner": owner_cookie(rec.id) in request.cookies,
        "saved_on": saved_on(rec.created_at),
        "saved_at": rec.created_at.strftime("%d %B %Y, %H:%M UTC"),
        "test_loss": number(m.get("test_loss")),
        "train_loss": number(m.get("train_loss")),
        "test_accuracy": percent(m.get("test_accuracy")),
        "facts": facts(rec.spec),
        "share_link": f"{str(request.base_url).rstrip('/')}/e/{rec.slug}",
        **extra,
    }


def in_words(exc: ValidationError) -> dict[str, str]:
    """{field: sentence} for a name or description a student typed."""
    out: dict[str, str] = {}
    for e in exc.errors(include_url=False):
        field = str(e["loc"][-1]) if e["loc"] else "name"
        given = e.get("input")
        size = f" (this one has {len(given)})" if isinstance(given, str) else ""
        if e["type"] == "string_too_short":
            message = "give it a name, so you can find it again"
        elif e["type"] == "string_too_long":
            message = f"a {field} can be at most {e.get('ctx', {}).get('max_length')} characters{size}"
        else:
            message = e["msg"].removeprefix("Value error, ")
        out.setdefault(field, message)
    return out


# ------------------------------------------------------------------------------------------ answers


def _html(request: Request, template: str, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
    return HTMLResponse(fragment(request, template, {"request": request, **ctx}), status_code=status)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _error_page(request: Request, message: str, status: int) -> HTMLResponse:
    ctx = {"request": request, "message": message}
    return templates(request).TemplateResponse(request, "error.html", ctx, status)


def _land(request: Request, s: Session) -> Response:
    """Go to a new session's page with its token cookie: htmx follows HX-Redirect, a plain form the 303."""
    where = f"/s/{s.id}"
    response: Response = (
        Response(headers={"HX-Redirect": where}) if request.headers.get("HX-Request") else RedirectResponse(where, 303)
    )
    response.set_cookie(token_cookie(s.id), s.token, path="/", httponly=True, samesite="lax")
    return response


# ------------------------------------------------------------------------------------------ save


@router.post("/ui/sessions/{session_id}/save", response_class=HTMLResponse)
async def save(request: Request, s: OwnedDep, manager: ManagerDep, form: FormDep) -> HTMLResponse:
    """The top bar's save form: the session as a saved experiment; this browser becomes its owner."""
    name, description = first(form, "name", ""), first(form, "description", "")
    ctx: dict[str, Any] = {"s": s, "form": {"name": name, "description": description}}
    try:
        body = ExperimentIn(session_id=s.id, name=name, description=description)
        rec, owner = await manager.saved.save(s, body.name, body.description)
    except ValidationError as exc:
        return _html(request, "partials/save.html", {**ctx, "errs": in_words(exc)}, 422)
    except (SessionError, StoreError) as exc:
        why = exc.message if isinstance(exc, SessionError) else STORE_DOWN
        return _html(request, "partials/save.html", {**ctx, "errs": {"form": f"not saved: {why}"}}, 503)
    response = _html(request, "partials/save.html", {"s": s, "saved": card(rec, request), "form": {}, "errs": {}})
    response.set_cookie(
        owner_cookie(rec.id), owner, max_age=OWNER_COOKIE_SECONDS, path="/", httponly=True, samesite="lax"
    )
    return response


# ------------------------------------------------------------------------------------------ files


@router.post("/ui/import")
async def open_file(
    request: Request,
    manager: ManagerDep,
    settings: SettingsDep,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """ "open a file": a new session continuing from a downloaded .safetensors file, then its page."""
    error, status = None, 422
    if file is None or not file.filename:
        error = "choose a file first: one you downloaded with “download as a file”"
    else:
        blob = await file.read(settings.max_upload_bytes + 1)
        if len(blob) > settings.max_upload_bytes:
            error = f"{file.filename} is larger than {size(settings.max_upload_bytes)}: not a file saved here"
            status = 413
        else:
            try:
                return _land(request, await manager.saved.open_file(blob))
            except SessionError as exc:
                error, status = f"{file.filename} cannot be opened: {exc.message}", exc.status_code
    return _html(request, "partials/open_file.html", {"file_error": error}, status)


# ------------------------------------------------------------------------------------------ the experiments page


async def _listing(request: Request, manager: ManagerDep, q: str, page: str) -> dict[str, Any]:
    """One page of cards, newest first (StoreError / SessionError when the store cannot answer)."""
    q = q.strip()[:NAME_LIMIT]
    number_ = max(1, min(int(page), 100_000)) if page.isdigit() else 1
    items, total = await manager.saved.experiments(q, PER_PAGE, (number_ - 1) * PER_PAGE)
    pages = max(1, -(-total // PER_PAGE))
    return {
        "cards": [card(rec, request) for rec in items],
        "q": q,
        "page": number_,
        "pages": pages,
        "total": total,
    }


Search = Annotated[str, Query(description="part of the name, any case")]
PageNumber = Annotated[str, Query()]


@router.get("/experiments", response_class=HTMLResponse)
async def experiments_page(request: Request, manager: ManagerDep, q: Search = "", page: PageNumber = "1") -> Any:
    """Every saved experiment as a card: search by name, a page of 24 at a time."""
    try:
        listing = await _listing(request, manager, q, page)
    except (SessionError, StoreError):
        return _error_page(request, _sentence(STORE_DOWN), 503)
    return templates(request).TemplateResponse(request, "experiments.html", {"request": request, **listing})


@router.get("/ui/experiments", response_class=HTMLResponse)
async def experiment_list(request: Request, manager: ManagerDep, q: Search = "", page: PageNumber = "1") -> Any:
    """The list alone: what the search box and the pager swap in."""
    try:
        listing = await _listing(request, manager, q, page)
    except (SessionError, StoreError):
        return _html(request, "partials/experiment_list.html", {"list_error": STORE_DOWN, "q": q}, 503)
    return _html(request, "partials/experiment_list.html", listing)


@router.post("/ui/experiments/{experiment_id}/open")
async def open_copy(request: Request, experiment_id: str, manager: ManagerDep) -> Response:
    """ "open a copy" / "make it mine": a live session of this browser's own continuing from the saved state."""
    try:
        s = await manager.saved.open(experiment_id)
    except (SessionError, StoreError) as exc:
        return _error_page(request, f"This saved experiment cannot be opened: {_why(exc)}.", _status(exc))
    return _land(request, s)


def _why(exc: SessionError | StoreError) -> str:
    """The reason in a page visitor's words (the REST wording of a refusal names a bearer token)."""
    if isinstance(exc, StoreError):
        return STORE_DOWN
    if exc.status_code == 403:
        return "only the browser that saved this experiment can rename or delete it"
    return exc.message


def _status(exc: SessionError | StoreError) -> int:
    return exc.status_code if isinstance(exc, SessionError) else 503


async def _card(request: Request, manager: ManagerDep, experiment_id: str, status: int, **extra: Any) -> HTMLResponse:
    """The card again, with what is said beside its controls (or a line saying it is gone)."""
    try:
        rec = await manager.saved.experiment(experiment_id)
    except (SessionError, StoreError) as exc:
        return _html(request, "partials/experiment_card.html", {"gone": _why(exc), "id": experiment_id}, status)
    return _html(request, "partials/experiment_card.html", {"c": card(rec, request, **extra)}, status)


@router.patch("/ui/experiments/{experiment_id}", response_class=HTMLResponse)
async def rename(request: Request, experiment_id: str, manager: ManagerDep, form: FormDep) -> HTMLResponse:
    """A card's rename form (this browser must hold the owner cookie)."""
    name = first(form, "name", "")
    try:
        change = ExperimentChange(name=name)
        await manager.saved.update(experiment_id, request.cookies.get(owner_cookie(experiment_id)), name=change.name)
    except ValidationError as exc:
        words = in_words(exc).get("name")
        return await _card(request, manager, experiment_id, 422, rename_error=words, renaming=name)
    except (SessionError, StoreError) as exc:
        return await _card(request, manager, experiment_id, _status(exc), rename_error=_why(exc), renaming=name)
    return await _card(request, manager, experiment_id, 200, note="renamed")


@router.delete("/ui/experiments/{experiment_id}", response_class=HTMLResponse)
async def delete(request: Request, experiment_id: str, manager: ManagerDep) -> HTMLResponse:
    """A card's delete button (after the browser's confirm): the card goes, and so does its share page."""
    try:
        await manager.saved.delete(experiment_id, request.cookies.get(owner_cookie(experiment_id)))
    except (SessionError, StoreError) as exc:
        return await _card(request, manager, experiment_id, _status(exc), card_error=_why(exc))
    await manager.saved.drop_viewer(experiment_id)
    response = HTMLResponse("")
    response.delete_cookie(owner_cookie(experiment_id), path="/")
    return response


# ------------------------------------------------------------------------------------------ the share page


@router.get("/e/{slug}", response_class=HTMLResponse)
async def share_page(request: Request, slug: str, manager: ManagerDep) -> HTMLResponse:
    """A saved experiment as it was saved, for anyone with the link: the playground read-only (one shared
    session per experiment that nobody holds the token of) under a banner with "make it mine"."""
    try:
        rec = await manager.saved.experiment_by_slug(slug)
        s = await manager.saved.viewer(rec.id)
    except (SessionError, StoreError) as exc:
        return _error_page(request, _sentence(_why(exc)), _status(exc))
    return _page(request, s, readonly=True, shared=card(rec, request))
