"""The sweeps page: ``GET /sweeps`` (the form: a base experiment and the fields to sweep), ``GET /sweeps/{id}``
(one sweep: progress, the small decision maps, the table, the chart, parallel coordinates) and opening one
configuration as a live session of this browser's own.

The form posts JSON to ``POST /api/v1/sweeps`` itself (static/js/sweepform.js), and the sweep's view reads
``GET /api/v1/sweeps/{id}`` and the stream ``/ws/sweeps/{id}`` (static/js/sweepview.js): the same API a script
uses. The POST answer leaves the sweep's token in the cookie ``neuroglass_sweep_{id}``, so this browser may
cancel it; docs/page.md describes the page.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from server.deps import ManagerDep
from server.ml.train import OPTIMIZERS
from server.presets import PRESETS
from server.routes.experiment_pages import _error_page, _land
from server.routes.fields import spec_field
from server.routes.pages import templates
from server.routes.sweeps import sweep_cookie
from server.sessions import SessionError
from server.spec import MAX_UNITS, ExperimentSpec, merge_patch
from server.store import StoreError

router = APIRouter(tags=["pages"], include_in_schema=False)

RECENT = 10  # sweeps listed under the form

Kind = Literal["number", "integer", "choice", "widths", "architectures"]


@dataclass(frozen=True)
class Sweepable:
    """A field the form offers to sweep: its dotted path (two entries may share one), words and inputs."""

    key: str  # the entry's own name (the form's id); `path` is what the request names
    path: str
    label: str
    kind: Kind
    hint: str = ""
    log: bool = False  # a range of it is log-spaced unless the visitor says otherwise
    options: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    example: str = ""


def _numeric(path: str, label: str, kind: Kind, example: str, log: bool = False, hint: str = "") -> Sweepable:
    info = spec_field(path)
    hint = hint or f"range {info.span()}"
    return Sweepable(path, path, label, kind, hint, log, minimum=info.minimum, maximum=info.maximum, example=example)


def _choice(path: str, label: str, options: tuple[str, ...]) -> Sweepable:
    return Sweepable(path, path, label, "choice", hint="tick the ones to try", options=options)


@functools.cache
def sweepables() -> tuple[Sweepable, ...]:
    """Every field the form offers, in the order of its list."""
    return (
        _numeric("training.learning_rate", "learning rate", "number", "0.003, 0.03, 0.3", log=True),
        _numeric("training.momentum", "momentum", "number", "0, 0.5, 0.9", hint="with the momentum optimizers"),
        _numeric("training.regularization_rate", "regularization rate", "number", "0.001, 0.01", log=True),
        _numeric("training.dropout", "dropout rate", "number", "0, 0.1, 0.3"),
        _numeric("training.batch_size", "batch size", "integer", "1, 10, 50"),
        _choice("training.optimizer", "optimizer", tuple(OPTIMIZERS)),
        _choice("training.regularization", "regularization", ("none", "l1", "l2")),
        _choice("training.loss", "loss", ("mse", "cross_entropy")),
        _numeric("seed", "weight seed", "integer", "0, 1, 2", hint="repeats with other initial weights"),
        _numeric("dataset.seed", "data seed", "integer", "0, 1", hint="other draws of the same data"),
        _numeric("dataset.noise", "noise", "number", "0, 10, 25"),
        _numeric("dataset.train_percent", "training share (%)", "number", "30, 50, 80"),
        Sweepable(
            "network.hidden.widths",
            "network.hidden",
            "neurons in one hidden layer",
            "widths",
            hint="one hidden layer of each width",
            minimum=1,
            maximum=MAX_UNITS,
            example="2, 4, 8",
        ),
        Sweepable(
            "network.hidden",
            "network.hidden",
            "hidden layers (architectures)",
            "architectures",
            hint="architectures separated by ';', each its layers' widths: “4,2; 8,8” (empty: none)",
            example="4,2; 8,8",
        ),
    )


def _bases(manager: ManagerDep, came_from: str | None) -> tuple[list[dict[str, Any]], str, str | None]:
    """The experiments a sweep may start from (each a whole spec), the chosen one, and why ?from= was not used."""
    bases: list[dict[str, Any]] = [
        {"key": "default", "title": "the default (TF Playground's first screen)", "spec": ExperimentSpec()}
    ]
    for name, preset in PRESETS.items():
        spec = ExperimentSpec.model_validate(merge_patch(ExperimentSpec().model_dump(), preset["spec"]))
        bases.append({"key": f"preset:{name}", "title": f"preset: {preset['title']}", "spec": spec})
    chosen, note = "default", None
    if came_from:
        s = manager.sessions.get(came_from)
        if s is None:
            note = f"there is no session {came_from!r} any more: the sweep starts from the default instead"
        else:
            title = f"the session I came from (at epoch {s.epoch:,}; the sweep trains its settings from scratch)"
            bases.insert(0, {"key": f"session:{s.id}", "title": title, "spec": s.spec})
            chosen = f"session:{s.id}"
    out = [{**b, "spec": b["spec"].model_dump(mode="json"), "kind": b["spec"].network.kind} for b in bases]
    return out, chosen, note


def _render(request: Request, manager: ManagerDep, ctx: dict[str, Any]) -> HTMLResponse:
    bases, chosen, note = _bases(manager, ctx.pop("came_from", None))
    full = {
        "request": request,
        "bases": bases,
        "chosen": chosen,
        "base_note": note,
        "fields": [asdict(f) for f in sweepables()],
        **ctx,
    }
    return templates(request).TemplateResponse(request, "sweeps.html", full)


@router.get("/sweeps", response_class=HTMLResponse)
async def sweeps_page(request: Request, manager: ManagerDep) -> HTMLResponse:
    """The form of a new sweep; ``?from=<session id>`` offers that session's settings as the base."""
    came_from = request.query_params.get("from")
    try:
        recent = (await manager.sweeps.listing(RECENT, 0))["items"]
    except StoreError:  # the store is unreachable: the form still works
        recent = []
    ctx = {"sweep_id": None, "came_from": came_from, "owner": False, "live": True, "recent": recent}
    return _render(request, manager, ctx)


@router.get("/sweeps/{sweep_id}", response_class=HTMLResponse)
async def sweep_page(request: Request, sweep_id: str, manager: ManagerDep) -> HTMLResponse:
    """One sweep as it goes (or as the store kept it); this browser may cancel it if it started it."""
    try:
        await manager.sweeps.find(sweep_id)
    except SessionError as exc:
        return _error_page(request, f"{exc.message[:1].upper()}{exc.message[1:]}.", exc.status_code)
    owner = sweep_cookie(sweep_id) in request.cookies
    try:
        manager.sweeps.get(sweep_id)
        live = True
    except SessionError:  # read back from the store: its configurations' weights went with an earlier run
        live = False
    return _render(request, manager, {"sweep_id": sweep_id, "owner": owner, "live": live})


@router.post("/ui/sweeps/{sweep_id}/configurations/{k}/open")
async def open_configuration(request: Request, sweep_id: str, k: int, manager: ManagerDep) -> Response:
    """ "open as a session": a live session of this browser's own continuing from configuration ``k``."""
    try:
        s = await manager.sweeps.open(manager.sweeps.get(sweep_id), k)
    except SessionError as exc:
        return _error_page(request, f"This configuration cannot be opened: {exc.message}.", exc.status_code)
    return _land(request, s)
