"""The class bar on a session's page (templates/partials/class_bar.html): which class the page belongs to
and who is looking — the teacher on the presenter's page, a student on the session they made theirs."""

from __future__ import annotations

from typing import Any

import segno
from fastapi import Request

from server.routes.classes import student_cookie, teacher_cookie
from server.sessions.classroom import Classroom
from server.sessions.session import Session


def join_address(request: Request, c: Classroom) -> str:
    """The join link as a student's phone opens it (the host the teacher's browser reached)."""
    return f"{str(request.base_url).rstrip('/')}/join?code={c.code}"


def qr_svg(text: str) -> str:
    """The link as a QR code, inline SVG (dark modules on the page's background; scales with its box)."""
    svg: str = segno.make(text, error="m").svg_inline(scale=1, dark="#1b1f24", light=None, omitsize=True)
    return svg


def teacher_of(request: Request, c: Classroom) -> bool:
    return c.is_teacher(request.cookies.get(teacher_cookie(c.id)))


def bar(c: Classroom, role: str, **more: Any) -> dict[str, Any]:
    return {"role": role, "c": c.public(), "id": c.id, **more}


def class_context(request: Request, s: Session) -> dict[str, Any] | None:
    """The class bar a session's own page shows: the teacher's on the presenter's page, a student's on the
    session they made theirs; none when the session is in no open class or the visitor is not in it."""
    classes = request.app.state.sessions.classes
    c = classes.presenting(s.id)
    if c is not None and teacher_of(request, c):
        address = join_address(request, c)
        return bar(c, "teacher", join_url=address, qr=qr_svg(address))
    found = classes.class_of(s.id)
    if found is not None:
        c, st = found
        if st.check(request.cookies.get(student_cookie(c.id))):
            return bar(c, "student", student=st, forked=True)
    return None
