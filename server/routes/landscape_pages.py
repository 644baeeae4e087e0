"""Both pages' "inside the optimization" panel: the gradient-health fragment (per-layer numbers and the
plain-words diagnosis) and its one-click fixes, which PATCH the session like any other control."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from server.deps import ManagerDep, owns
from server.routes.kinds import page_kind
from server.routes.pages import FormDep, OwnedDep, apply, context, first, fragment
from server.sessions import Engine, SessionError
from server.spec import ExperimentSpec

router = APIRouter(tags=["pages"], include_in_schema=False)


def fix_patch(spec: ExperimentSpec, engine: Engine, fix: dict[str, Any]) -> dict[str, Any]:
    """A diagnosis's fix ({"activation": "relu", "init": "he"}, {"learning_rate": 0.01}, {"batch_norm": True})
    as a partial spec: an activation goes to every hidden layer (a CNN's: every conv and dense layer)."""
    patch: dict[str, Any] = {}
    if "activation" in fix:
        patch = engine.activation_patch(spec, fix["activation"])
    if "init" in fix:
        patch.setdefault("network", {})["init"] = fix["init"]
    if "learning_rate" in fix:
        patch.setdefault("training", {})["learning_rate"] = fix["learning_rate"]
    if "batch_norm" in fix:
        patch.setdefault("training", {})["batch_norm"] = bool(fix["batch_norm"])
    return patch


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.0f} %"


def _sci(v: float | None) -> str:
    return "–" if v is None else f"{v:.1e}".replace("e-0", "e-").replace("e+0", "e")


@router.get("/ui/sessions/{session_id}/gradients", response_class=HTMLResponse)
async def gradients(request: Request, session_id: str, manager: ManagerDep) -> HTMLResponse:
    """Gradient health per layer and the diagnosis, with fixes (buttons only for the owner): the landscape
    feed's latest while a socket watches it (the panel asks for this fragment when a snapshot brings new
    numbers: one computation for every viewer), else computed now."""
    s = manager.get(session_id)
    readonly = not owns(s, request)
    ctx = context(request, s, readonly, health=None, health_error=None)
    try:
        out = manager.landscape_feed.gradients(s) or await manager.gradients(s)
    except SessionError as exc:
        ctx["health_error"] = exc.message
        return HTMLResponse(fragment(request, "partials/gradients.html", ctx))
    top = max((row["grad_norm"] or 0.0 for row in out["layers"]), default=0.0) or 1.0
    rows = []
    for row in out["layers"]:
        g = row["grad_norm"] or 0.0
        # bar length on a log scale: 10⁻⁸ of the largest layer's gradient and below is empty
        share = 0.0 if g <= 0 else max(0.0, 1.0 + min(0.0, math.log10(g / top)) / 8.0)
        rows.append(
            {
                **row,
                "grad_text": _sci(row["grad_norm"]),
                "ratio_text": _sci(row["update_ratio"]),
                "dead_text": _pct(row["dead_fraction"]),
                "saturated_text": _pct(row["saturated_fraction"]),
                "bar": round(100 * share),
                "nonfinite": row["nonfinite_grads"] + row["nonfinite_params"],
            }
        )
    findings = [{**d, "fix_buttons": [(json.dumps(f), _fix_words(f)) for f in d["fixes"]]} for d in out["diagnosis"]]
    ctx |= {"health": {"epoch": out["epoch"], "rows": rows, "findings": findings}}
    return HTMLResponse(fragment(request, "partials/gradients.html", ctx))


def _fix_words(fix: dict[str, Any]) -> str:
    words: dict[str, Callable[[Any], str]] = {
        "activation": lambda v: f"activation {v}",
        "init": lambda v: f"{v} init (at the next reset)",
        "learning_rate": lambda v: f"learning rate {v:g}",
        "batch_norm": lambda v: "batch norm" if v else "no batch norm",
    }
    return " + ".join(words[k](v) for k, v in fix.items() if k in words)


@router.patch("/ui/sessions/{session_id}/fix", response_class=HTMLResponse)
async def apply_fix(request: Request, s: OwnedDep, form: FormDep) -> HTMLResponse:
    """One click on a diagnosis's fix: the patch it names, applied live (no reset)."""
    try:
        fix = json.loads(first(form, "fix") or "{}")
    except json.JSONDecodeError:
        fix = {}
    patch = fix_patch(s.spec, s.engine, fix if isinstance(fix, dict) else {})
    return await apply(request, s, page_kind(s).settings_panel, patch, form)
