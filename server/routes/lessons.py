"""The lessons: ``GET /api/v1/lessons`` (and one by slug), the ``/lessons`` gallery, a lesson's page (the preview
of its spec — its session is created at the student's first action — on the playground of its kind with the
lesson's text beside it), and the lesson page's buttons: a variant (its patch merged into the lesson's spec) and
"start over" (the lesson's spec, fresh weights).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from server.deps import ManagerDep
from server.lessons import LESSONS, PANELS, Lesson
from server.routes.pages import (
    FormDep,
    OwnedDep,
    PageSession,
    _page,
    context,
    create_for_page,
    embedded,
    first,
    fragment,
    panels_for,
    spec_url,
    templates,
)
from server.routes.sweeps import sweep_cookie
from server.schemas import LessonList, LessonPublic
from server.sessions import Session
from server.spec import ExperimentSpec, merge_patch
from server.sweepspec import SweepSpec

api = APIRouter(prefix="/api/v1/lessons", tags=["lessons"])
router = APIRouter(tags=["pages"], include_in_schema=False)

# Where each of PANELS is on each kind's page: a CSS selector of the element(s) the lesson page outlines.
PANEL_SELECTORS: dict[str, dict[str, str]] = {
    "mlp": {
        "data": "#data-panel",
        "network": 'section[aria-labelledby="network-h"]',
        "output": 'section[aria-labelledby="output-h"]',
        "metrics": "table.metrics",
        "loss-chart": "#charts",
        "gradients": ".grads",
        "settings": "#run-form",
        "landscape": "#landscape-tab",
        "confusion": "#confusion-block",
    },
    "cnn": {
        "data": "#cnn-settings",
        "network": 'section[aria-labelledby="layers-h"]',
        "output": 'section[aria-labelledby="results-h"]',
        "metrics": "table.metrics",
        "loss-chart": "#charts",
        "gradients": ".grads",
        "settings": "#cnn-settings",
        "landscape": "#landscape-tab",
        "filters": "#filters",
        "feature-maps": "#maps",
        "confusion": ".confusion-wrap",
        "actmax": "#actmax",
    },
}
assert all(set(where) <= set(PANELS) for where in PANEL_SELECTORS.values()), "a panel PANELS lacks"


def lesson_or_404(slug: str) -> Lesson:
    lesson = LESSONS.get(slug)
    if lesson is None:
        raise HTTPException(404, f"there is no lesson {slug!r}: GET /api/v1/lessons lists them all")
    return lesson


def lesson_spec(lesson: Lesson, patch: dict[str, Any] | None = None) -> ExperimentSpec:
    """The lesson's whole spec (defaults filling the rest), with a variant's ``patch`` merged in."""
    return ExperimentSpec.model_validate(merge_patch(lesson.spec, patch or {}))


def numbered() -> list[tuple[int, Lesson]]:
    """Every lesson with its number in the lectures' order (1-based)."""
    return list(enumerate(LESSONS.values(), start=1))


def first_sentence(text: str) -> str:
    end = next((i for i, c in enumerate(text) if c in ".!?" and text[i + 1 : i + 2] in (" ", "")), len(text) - 1)
    return text[: end + 1]


# ------------------------------------------------------------------------------------------ REST


@api.get("", response_model=LessonList)
async def list_lessons() -> dict[str, Any]:
    """Every lesson in the lectures' order, the coming ones too (``status: "coming"``)."""
    return {"lessons": [lesson.public() for lesson in LESSONS.values()]}


@api.get("/{slug}", response_model=LessonPublic)
async def get_lesson(slug: str) -> dict[str, Any]:
    """One lesson; 404 for an unknown slug."""
    return lesson_or_404(slug).public()


# ------------------------------------------------------------------------------------------ pages


def _gallery(request: Request, status: int = 200, **extra: Any) -> HTMLResponse:
    ctx = {"request": request, "lessons": numbered(), "first_sentence": first_sentence, **extra}
    return templates(request).TemplateResponse(request, "lessons.html", ctx, status)


@router.get("/lessons", response_class=HTMLResponse)
async def gallery(request: Request) -> HTMLResponse:
    """Every lesson as a card, in the lectures' order."""
    return _gallery(request)


# Which lesson each session was opened from (its pages, /s/{id} and /watch/{id} too, show the lesson's text).
OPENED_FROM: dict[str, str] = {}


def lesson_view(s: Session, slug: str | None = None) -> dict[str, Any] | None:
    """What the aside shows for a session opened from a lesson (or a lesson's preview: ``slug``; None
    otherwise): the lesson, its number, the selectors of the panels it outlines and their descriptions. A
    template global (the playground pages)."""
    lesson = LESSONS.get(slug or OPENED_FROM.get(s.id, ""))
    if lesson is None:
        return None
    number = list(LESSONS).index(lesson.slug) + 1
    where = PANEL_SELECTORS[lesson.kind]
    panels = [where[p] for p in lesson.panels if p in where]
    return {"lesson": lesson, "number": number, "panels": panels, "panel_words": PANELS}


@router.get("/lessons/{slug}", response_class=HTMLResponse)
async def lesson_page(request: Request, slug: str, manager: ManagerDep) -> HTMLResponse:
    """The lesson's spec as a preview (its session comes at the first action, POST /ui/lessons/{slug}/session),
    on its kind's playground page with the lesson's text beside it."""
    lesson = LESSONS.get(slug)
    if lesson is None:
        return _gallery(request, 404, notice=f"There is no lesson {slug!r}. Here are all the lessons.")
    if lesson.status == "coming":
        notice = f"The lesson “{lesson.title}” is coming, not ready to open yet. {lesson.todo}"
        return _gallery(request, 200, notice=notice, coming=lesson.slug)
    preview = await manager.previews.of(lesson_spec(lesson))
    view = embedded(request, preview.session, spec_url(preview.session.spec))
    address = f"/lessons/{lesson.slug}" + ("?" + view["embed"].query()[1:] if view["embed"].query() else "")
    return _page(
        request,
        preview.session,
        readonly=False,
        lesson_address=address,
        lesson_slug=lesson.slug,
        create_url=f"/ui/lessons/{lesson.slug}/session",
        **view,
    )


@router.post("/ui/lessons/{slug}/session", response_model=PageSession, status_code=201)
async def start_lesson_session(slug: str, manager: ManagerDep, form: FormDep) -> JSONResponse:
    """A lesson page's first action: the session of the lesson's spec, the lesson's text following it."""
    lesson = lesson_or_404(slug)
    s, response = await create_for_page(manager, lesson_spec(lesson), embedded=first(form, "embed", "") == "1")
    for gone in [sid for sid in OPENED_FROM if sid not in manager.sessions]:
        del OPENED_FROM[gone]
    OPENED_FROM[s.id] = lesson.slug
    return response


@router.post("/ui/lessons/{slug}/sweep", response_class=RedirectResponse, status_code=303)
async def run_lesson_sweep(request: Request, slug: str, manager: ManagerDep) -> RedirectResponse:
    """Start the lesson's sweep and go to its page (the sweep's token in a cookie, as POST /api/v1/sweeps)."""
    lesson = lesson_or_404(slug)
    if lesson.sweep is None:
        raise HTTPException(404, f"the lesson {slug!r} has no sweep")
    client = request.client.host if request.client is not None else "unknown"
    sweep = await manager.sweeps.create(SweepSpec.model_validate(lesson.sweep), client)
    response = RedirectResponse(f"/sweeps/{sweep.id}", status_code=303)
    response.set_cookie(sweep_cookie(sweep.id), sweep.token, httponly=True, samesite="strict")
    return response


# ------------------------------------------------------------------------------------------ the aside's buttons


def _all_panels(request: Request, s: Session, note: str) -> HTMLResponse:
    """Every panel of the page out of band (the spec was replaced: any control may have changed), the run
    buttons (a reset pauses), and the note saying what happened."""
    ctx = context(request, s, False, oob=True)
    html = [fragment(request, template, ctx) for template, _ in panels_for(s).values()]
    html.append(fragment(request, "partials/run_buttons.html", ctx))
    html.append(fragment(request, "partials/change_note.html", {**ctx, "note": note}))
    response = HTMLResponse("".join(html))
    trigger = {"ng:spec": {"url": spec_url(s.spec), "spec_version": s.spec_version}}
    response.headers["HX-Trigger"] = json.dumps(trigger)
    return response


async def _replace(request: Request, s: Session, spec: ExperimentSpec, reset: bool) -> None:
    """The session's spec replaced wholly by ``spec`` (every field given, so nothing the student changed
    stays), then fresh weights when ``reset``."""
    manager = request.app.state.sessions
    if s.status == "running":
        await manager.pause(s)
    await manager.patch(s, spec.model_dump(mode="json"))
    if reset:
        await manager.reset(s)


@router.post("/ui/sessions/{session_id}/lessons/{slug}/start-over", response_class=HTMLResponse)
async def start_over(request: Request, s: OwnedDep, slug: str) -> HTMLResponse:
    """The lesson's settings again and fresh weights, in the same session."""
    lesson = lesson_or_404(slug)
    await _replace(request, s, lesson_spec(lesson), reset=True)
    return _all_panels(request, s, f"Started over: the lesson's settings, fresh weights, epoch {s.epoch}.")


@router.post("/ui/sessions/{session_id}/lessons/{slug}/variants/{index}", response_class=HTMLResponse)
async def variant(request: Request, s: OwnedDep, slug: str, index: int) -> HTMLResponse:
    """A variant the text asks for: its patch merged into the lesson's spec; fresh weights when it says so."""
    lesson = lesson_or_404(slug)
    if not 0 <= index < len(lesson.variants):
        raise HTTPException(404, f"the lesson {slug!r} has {len(lesson.variants)} variants; there is no {index}")
    v = lesson.variants[index]
    await _replace(request, s, lesson_spec(lesson, v.patch), reset=v.reset)
    how = "fresh weights" if v.reset else "the weights kept"
    return _all_panels(request, s, f"Now trying {v.label}: the lesson's settings with that change, {how}.")
