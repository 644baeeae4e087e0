"""REST API: a CNN session's own views (/api/v1/sessions/{id}/actmax, saliency, convolution)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from server.deps import ManagerDep, SessionDep
from server.frames import encode_json
from server.view_schemas import ActmaxPublic, ConvolutionPublic, SaliencyPublic

router = APIRouter(prefix="/api/v1/sessions", tags=["views"])


@router.get("/{session_id}/actmax", response_model=ActmaxPublic)
async def get_actmax(
    s: SessionDep,
    manager: ManagerDep,
    layer: Annotated[int, Query(ge=0, le=63, description="index of a CNN layer (0 = the first)")] = 0,
    steps: Annotated[int, Query(ge=1, le=200, description="gradient-ascent steps")] = 20,
    encoding: Annotated[Literal["base64", "list"], Query(description="how arrays are written")] = "base64",
) -> dict[str, Any]:
    """CNN: for every filter of a layer, the input image that excites it most (activation maximization:
    gradient ascent on the input with jitter, L2 and blur). ``images`` (filters, C, H, W) bytes 0..255;
    ``start``/``end``: each filter's mean activation on its image before and after the climb."""
    out = await manager.view(s, "actmax", layer=layer, steps=steps)
    arrays = {k: out.pop(k) for k in ("images", "start", "end")}
    return encode_json(out, arrays, encoding)


@router.get("/{session_id}/convolution", response_model=ConvolutionPublic)
async def get_convolution(
    s: SessionDep,
    manager: ManagerDep,
    layer: Annotated[int, Query(ge=0, le=63, description="index of a conv layer (0 = the first)")] = 0,
    filter: Annotated[  # noqa: A002
        int | None, Query(ge=0, le=63, description="which of the layer's filters (default: the most excited)")
    ] = None,
    example: Annotated[int, Query(ge=0, description="test-image index")] = 0,
    row: Annotated[int | None, Query(ge=0, description="top output row of the region (default: strongest)")] = None,
    col: Annotated[int | None, Query(ge=0, description="left output column of the region")] = None,
) -> dict[str, Any]:
    """CNN: how a convolution works, on this network's numbers — one filter sliding over a small patch of
    a test image (or of the previous layer's maps): ``patch`` (C, P, P) with ``padding_cells``, ``weights``
    (C, k, k), ``bias``, ``products`` (n, n, C, k, k), ``sums`` (n, n) = Σ products + bias, ``outputs``
    after the activation (equal to ``feature_map``, the layer's real output there), and ``pool``: the
    pooling layer after it over those outputs (windows, winners), or null."""
    return await manager.view(s, "convolution", layer=layer, filter_=filter, example=example, row=row, col=col)


@router.get("/{session_id}/saliency", response_model=SaliencyPublic)
async def get_saliency(
    s: SessionDep,
    manager: ManagerDep,
    examples: Annotated[list[int], Query(max_length=64, description="test-image indices")] = [0],  # noqa: B006
    encoding: Annotated[Literal["base64", "list"], Query(description="how arrays are written")] = "base64",
) -> dict[str, Any]:
    """CNN: which pixels the predicted class depends on — |∂ logit / ∂ pixel| of each chosen test image,
    scaled to 0..255 per image: ``maps`` (n, H, W)."""
    out = await manager.view(s, "saliency", examples=examples)
    maps = out.pop("maps")
    return encode_json(out, {"maps": maps}, encoding)
