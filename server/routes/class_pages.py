"""The classroom's pages: the join page (``/join``, a code and a name), a student's class page
(``/class/{id}``: the session the class follows, read-only, under the class bar), and the teacher's
dashboard (``/classes/{id}``: the roster, the leaderboard, every student's decision map, the challenge
form). The presenter's own page (``/s/{id}``) gets the teacher's class bar through ``class_context``.

Who is who comes from the cookies the class API sets: ``neuroglass_class_{id}`` (the teacher) and
``neuroglass_student_{id}`` (a student)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from server.classspec import COMPARE, WORDS, ClassJoin
from server.deps import ManagerDep
from server.errors import SessionError
from server.ml.datasets import DATASETS
from server.ml.images import IMAGE_DATASETS
from server.routes import pages
from server.routes.class_context import bar, join_address, qr_svg, teacher_of
from server.routes.classes import student_cookie, teacher_tokens
from server.sessions.classroom import CODE_LENGTH

router = APIRouter(tags=["pages"])


def _join_page(request: Request, status: int = 200, **ctx: Any) -> HTMLResponse:
    ctx = {"request": request, "code": "", "name": "", "error": None, "code_length": CODE_LENGTH, **ctx}
    return pages.templates(request).TemplateResponse(request, "join.html", ctx, status)


@router.get("/join", response_class=HTMLResponse)
async def join_form(request: Request, code: str = "") -> HTMLResponse:
    """Join a class: the code the teacher shows (a QR code's link fills it in) and a name."""
    return _join_page(request, code=code[:32])


def _field_error(err: ValidationError) -> str:
    first = err.errors()[0]
    field = first["loc"][-1] if first["loc"] else "the form"
    if field == "name":
        return "Type the name the class will see you by (1 to 40 characters)."
    if field == "code":
        return f"Type the {CODE_LENGTH}-character code your teacher shows."
    return str(first["msg"])


@router.post("/join", response_class=HTMLResponse, response_model=None)
async def join(
    request: Request, manager: ManagerDep, code: Annotated[str, Form()] = "", name: Annotated[str, Form()] = ""
) -> Response:
    """The join form, sent: into the class (its page), or the form again saying what went wrong."""
    try:
        body = ClassJoin(code=code, name=name)
    except ValidationError as err:
        return _join_page(request, 422, code=code[:32], name=name[:40], error=_field_error(err))
    try:
        c, _, token = await manager.classes.join(body.code, body.name)
    except SessionError as err:
        return _join_page(request, err.status_code, code=code[:32], name=name[:40], error=str(err))
    response = RedirectResponse(f"/class/{c.id}", status_code=303)
    response.set_cookie(student_cookie(c.id), token, path="/", httponly=True, samesite="lax")
    return response


def _message(request: Request, message: str, status: int) -> HTMLResponse:
    ctx = {"request": request, "message": message}
    return pages.templates(request).TemplateResponse(request, "error.html", ctx, status)


@router.get("/class/{class_id}", response_class=HTMLResponse, response_model=None)
async def class_page(request: Request, class_id: str, manager: ManagerDep) -> Response:
    """A student's page in the class: the session the class follows (the presenter's, or the spotlighted
    student's), live and read-only, with the class bar. The teacher lands on the presenter's page; a
    visitor not yet in the class, on the join page."""
    c = manager.classes.open.get(class_id)
    if c is None:
        return _message(request, "This class has ended (or never was): ask your teacher for a new code.", 404)
    if teacher_of(request, c):
        return RedirectResponse(f"/s/{c.presenter_id}", status_code=303)
    st = c.student_by_token(request.cookies.get(student_cookie(c.id)))
    if st is None:
        return RedirectResponse(f"/join?code={c.code}", status_code=303)
    s = manager.sessions.get(c.followed()) or manager.sessions.get(c.presenter_id)
    if s is None:
        return _message(request, "The class's session is not running right now: try again in a moment.", 503)
    return pages._page(request, s, readonly=True, classroom=bar(c, "student", student=st, forked=False))


@router.get("/classes", response_class=HTMLResponse)
async def my_classes(request: Request, manager: ManagerDep) -> HTMLResponse:
    """The classes this browser runs (its teacher cookies), open or ended, newest first: each opens its
    dashboard, where an ended one shows its results and reopens."""
    classes = await manager.classes.taught(teacher_tokens(request))
    items = [c.summary() | {"results": c.results()} for c in classes]
    return pages.templates(request).TemplateResponse(request, "classes.html", {"request": request, "items": items})


@router.get("/classes/{class_id}", response_class=HTMLResponse)
async def dashboard(request: Request, class_id: str, manager: ManagerDep) -> HTMLResponse:
    """The teacher's dashboard: the roster as it changes, the leaderboard, small decision maps, the challenge."""
    c = manager.classes.open.get(class_id)
    if c is None:
        try:
            c = await manager.classes.read(class_id)
        except SessionError:
            return _message(request, f"There is no class {class_id!r}.", 404)
    if not teacher_of(request, c):
        return _message(request, "Only the class's teacher sees its dashboard (open it from their browser).", 403)
    address = join_address(request, c) if c.status == "open" else ""
    ctx = {
        "request": request,
        "c": c.public(),
        "roster": manager.classes.roster(c),  # an ended class's: who came and their results
        "rounds": c.results(),
        "join_url": address,
        "qr": qr_svg(address) if address else "",
        "metrics": WORDS,
        "comparisons": list(COMPARE),
        "datasets": [*DATASETS, *IMAGE_DATASETS],
    }
    return pages.templates(request).TemplateResponse(request, "classdash.html", ctx)
