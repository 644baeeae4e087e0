"""The CNN page's htmx endpoints: its settings and layers forms (the same respond/apply path as the MLP
page's panels) and the "how a convolution works" walkthrough fragment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from server.deps import ManagerDep
from server.ml.images import IMAGE_DATASETS
from server.routes.fields import spec_field
from server.routes.pages import FormDep, OwnedDep, apply, context, first, fragment, more_settings, respond, viewed
from server.sessions import SessionError
from server.spec import ConvLayerSpec, merge_patch

router = APIRouter(tags=["pages"], include_in_schema=False)

# ---------------------------------------------------------------------------------------------- forms


@router.patch("/ui/sessions/{session_id}/cnn/settings", response_class=HTMLResponse)
async def cnn_settings(request: Request, s: OwnedDep, form: FormDep) -> HTMLResponse:
    """CNN top bar: learning rate, optimizer, batch size; the image set, its noise and image size; more settings."""
    training = {k: first(form, f"training.{k}") for k in ("learning_rate", "optimizer", "batch_size")}
    dataset: dict[str, Any] = {k: first(form, f"dataset.{k}") for k in ("name", "noise")}
    patch = merge_patch(
        more_settings(form),  # momentum, schedule, stop conditions, seeds
        {
            "training": {k: v for k, v in training.items() if v is not None},
            "dataset": {k: v for k, v in dataset.items() if v is not None},
        },
    )
    augment = {k: first(form, f"dataset.augment.{k}") for k in ("shift", "rotate", "erase")}
    if any(v is not None for v in augment.values()):
        patch["dataset"]["augment"] = {k: v for k, v in augment.items() if v is not None}
    name = patch["dataset"].get("name", s.spec.dataset.name)
    if name in IMAGE_DATASETS:
        info = IMAGE_DATASETS[name]
        size = first(form, "dataset.image_size")
        patch["dataset"]["image_size"] = (int(size) if size and size.isdigit() else None) if info.sizes else None
        if name != s.spec.dataset.name:
            patch["dataset"]["n"] = min(info.max_n, 1797 if name == "digits" else 1200)
    return await apply(request, s, "settings", patch, form)


@router.patch("/ui/sessions/{session_id}/cnn/layers", response_class=HTMLResponse)
async def cnn_layers_form(request: Request, s: OwnedDep, form: FormDep) -> HTMLResponse:
    """CNN layers: + / − filters of a conv layer, a conv, pool or dropout layer added or the last layer removed,
    activations and dropout rates."""
    layers = [layer.model_dump(exclude_none=True) for layer in s.spec.network.layers]
    activations = form.get("activation", [])
    with_activation = [layer for layer in layers if "activation" in layer]
    if len(activations) == len(with_activation):  # a stale form (another tab changed the layers) only sends ops
        for layer, act in zip(with_activation, activations, strict=True):
            layer["activation"] = act
    rates = form.get("rate", [])
    dropouts = [layer for layer in layers if layer["type"] == "dropout"]
    if len(rates) == len(dropouts):
        for layer, rate in zip(dropouts, rates, strict=True):
            layer["rate"] = rate
    op, _, arg = (first(form, "op") or "").partition(":")
    i = int(arg) if arg.isdigit() else -1
    errors: dict[str, str] = {}
    if op in ("add_filter", "remove_filter") and 0 <= i < len(layers) and layers[i]["type"] == "conv":
        layers[i]["filters"] += 1 if op == "add_filter" else -1
        if layers[i]["filters"] < 1:
            errors[f"network.layers.{i}"] = "a conv layer needs at least one filter: remove the layer instead"
    elif op == "add_conv":
        layers.append({"type": "conv", "filters": 8, "kernel": 3, "padding": "same", "activation": "relu"})
    elif op == "add_pool":
        layers.append({"type": "pool", "kind": "max", "size": 2})
    elif op == "add_dropout":
        layers.append({"type": "dropout", "rate": spec_field("rate", "dropout").default})
    elif op == "remove_layer":
        if not layers:
            errors["network.layers"] = "there is no layer to remove"
        layers = layers[:-1]
    if errors:
        return respond(request, s, "layers", s.spec, errors=errors)
    return await apply(request, s, "layers", {"network": {"layers": layers}}, form)


# ------------------------------------------------------------------------------ how a convolution works

GREY = (20, 24, 28)  # dark cell of an input patch (value 0); white is the largest value
NEG, MID, POS = (245, 147, 34), (232, 234, 235), (8, 119, 189)  # the page's diverging scale (colors.js)


def _mix(a: tuple[int, ...], b: tuple[int, ...], t: float) -> str:
    return "rgb({},{},{})".format(*(round(x + (y - x) * t) for x, y in zip(a, b, strict=True)))


def _diverging(v: float, scale: float) -> str:
    t = max(-1.0, min(1.0, v / scale)) if scale > 0 else 0.0
    return _mix(MID, NEG, -t) if t < 0 else _mix(MID, POS, t)


def _needs_light_text(rgb: str) -> bool:
    """White text reads better than dark text on this background (WCAG relative luminance below 0.18)."""
    channels = [int(x) / 255 for x in rgb[4:-1].split(",")]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2] < 0.18


def _shade(v: float, scale: float) -> tuple[str, bool]:
    """Background of an input or output cell (dark = low, light = high) and whether it needs light text."""
    t = max(0.0, min(1.0, v / scale)) if scale > 0 else 0.0
    bg = _mix(GREY, (255, 255, 255), t)
    return bg, _needs_light_text(bg)


def _cell(v: float, scale: float, shown: bool, empty: str = "") -> dict[str, Any]:
    """A number cell's background and text colour; not shown yet: the empty background."""
    if not shown:
        return {"bg": empty, "light": False}
    bg, light = _shade(v, scale)
    return {"bg": bg, "light": light}


def num(v: float) -> str:
    """Two decimals with a real minus sign."""
    return f"{v:.2f}".replace("-", "−")


def _int(form: dict[str, list[str]], name: str) -> int | None:
    text = (first(form, name) or "").strip()
    return int(text) if text.lstrip("-").isdigit() else None


def walk_steps(walk: dict[str, Any]) -> int:
    """Steps of the walkthrough: one per conv output, then one per pooling window."""
    n = len(walk["sums"])
    return n * n + (len(walk["pool"]["windows"]) if walk["pool"] else 0)


def walk_view(walk: dict[str, Any], step: int, channel: int) -> dict[str, Any]:
    """What the walkthrough fragment shows at ``step``: the patch (of one input channel), the filter, the
    outputs so far, the pooling so far, and the sum being worked out, as display-ready cells."""
    n, k, s = len(walk["sums"]), walk["kernel"], walk["stride"]
    total = walk_steps(walk)
    step = min(max(step, 0), total - 1)
    conv_step = step < n * n
    oi, oj = divmod(step, n) if conv_step else (n - 1, n - 1)
    window = {(oi * s + a, oj * s + b) for a in range(k) for b in range(k)} if conv_step else set()
    pool = walk["pool"]
    pool_step = step - n * n if not conv_step else -1
    pool_win = pool["windows"][pool_step] if pool and pool_step >= 0 else None
    outputs = walk["outputs"]
    o_scale = max((abs(v) for row in outputs for v in row), default=1.0) or 1.0
    weights = walk["weights"][channel]
    w_scale = max(abs(v) for row in weights for v in row) or 1.0
    return {
        "thumb": _walk_thumb(walk, channel),
        "has_pad": any(any(r) for r in walk["padding_cells"]),
        "step": step,
        "total": total,
        "conv_step": conv_step,
        "n": n,
        "patch": _walk_patch(walk, channel, window),
        "weights": [
            [{"text": num(v), "bg": (bg := _diverging(v, w_scale)), "light": _needs_light_text(bg)} for v in row]
            for row in weights
        ],
        "outputs": _walk_outputs(
            outputs, o_scale, step + 1 if conv_step else n * n, (oi, oj) if conv_step else None, pool_win
        ),
        "pooled": _walk_pooled(pool, pool_step, o_scale),
        "equation": _walk_sum(walk, channel, oi, oj) if conv_step else _walk_pool_sum(walk, pool_win),
        "channels": len(walk["patch"]),
        "channel": channel,
    }


def _walk_patch(walk: dict[str, Any], channel: int, window: set[tuple[int, int]]) -> list[list[dict[str, Any]]]:
    """The input patch of one channel, padding shown as 0 and the filter's window marked."""
    patch, pad = walk["patch"][channel], walk["padding_cells"]
    scale = max((abs(v) for row in patch for v in row), default=1.0) or 1.0
    if walk["layer"] == 0:
        scale = max(scale, 1.0)  # pixels are 0..1: keep their greys honest
    return [
        [
            {
                "text": "0" if pad[y][x] else num(v),
                **_cell(v, scale, shown=not pad[y][x], empty="transparent"),
                "pad": pad[y][x],
                "win": (y, x) in window,
            }
            for x, v in enumerate(row)
        ]
        for y, row in enumerate(patch)
    ]


def _walk_outputs(
    outputs: list[list[float]],
    scale: float,
    done: int,
    at: tuple[int, int] | None,
    pool_win: dict[str, Any] | None,
) -> list[list[dict[str, Any]]]:
    """The convolution's outputs: the first ``done`` filled in, the one being computed (``at``) or the
    cells of the pooling window marked, and the pooling winner flagged."""
    n = len(outputs)
    in_pool = {tuple(c) for c in pool_win["cells"]} if pool_win else set()
    return [
        [
            {
                "text": num(v) if i * n + j < done else "",
                **_cell(v, scale, shown=i * n + j < done),
                "win": (i, j) == at or (i, j) in in_pool,
                "winner": bool(pool_win and pool_win.get("winner") == [i, j]),
            }
            for j, v in enumerate(row)
        ]
        for i, row in enumerate(outputs)
    ]


def _walk_pooled(pool: dict[str, Any] | None, pool_step: int, scale: float) -> list[list[dict[str, Any]]]:
    """The pooled map: windows up to ``pool_step`` filled in, the current one marked."""
    if not pool:
        return []
    side = round(len(pool["windows"]) ** 0.5)
    cells = []
    for m, win in enumerate(pool["windows"]):
        shown = pool_step >= m
        cells.append(
            {
                "text": num(win["value"]) if shown else "",
                **_cell(win["value"], scale, shown=shown),
                "win": m == pool_step,
            }
        )
    return [cells[r * side : (r + 1) * side] for r in range(side)]


def _walk_sum(walk: dict[str, Any], channel: int, oi: int, oj: int) -> dict[str, Any]:
    """The weighted sum behind output (oi, oj): this channel's terms, the other channels' sums, the bias."""
    k, s = walk["kernel"], walk["stride"]
    patch, weights = walk["patch"][channel], walk["weights"][channel]
    products = walk["products"][oi][oj]  # (C, k, k)
    per_channel = [sum(sum(r) for r in products[c]) for c in range(len(walk["patch"]))]
    return {
        "terms": [f"{num(patch[oi * s + a][oj * s + b])}×{_paren(weights[a][b])}" for a in range(k) for b in range(k)],
        "channel_sum": num(per_channel[channel]),
        "others": [(c, num(v)) for c, v in enumerate(per_channel) if c != channel],
        "bias": _paren(walk["bias"]),
        "sum": num(walk["sums"][oi][oj]),
        "output": num(walk["outputs"][oi][oj]),
        "at": (oi, oj),
    }


def _walk_pool_sum(walk: dict[str, Any], pool_win: dict[str, Any] | None) -> dict[str, Any]:
    """The pooling step being worked out: its kind, the window's inputs and its value."""
    assert pool_win is not None  # a pooling step exists only when the walk has a pool
    cells = [walk["outputs"][i][j] for i, j in pool_win["cells"]]
    return {"pool": walk["pool"]["kind"], "inputs": [num(v) for v in cells], "value": num(pool_win["value"])}


def _walk_thumb(walk: dict[str, Any], channel: int) -> list[list[int]]:
    """The whole input plane of one channel as 0..255 greys (pixels keep their 0..1 scale)."""
    plane = walk["input"][channel]
    top = max((v for r in plane for v in r), default=0.0)
    lo = min(min((v for r in plane for v in r), default=0.0), 0.0)
    span = (max(top, 1.0) if walk["layer"] == 0 else top) - lo or 1.0
    return [[round(255 * (v - lo) / span) for v in r] for r in plane]


def _paren(v: float) -> str:
    return f"({num(v)})" if v < 0 else num(v)


@router.get("/ui/sessions/{session_id}/cnn/convolution", response_class=HTMLResponse)
async def convolution(request: Request, session_id: str, manager: ManagerDep, form: FormDep) -> HTMLResponse:
    """The worked example fragment (anyone watching may step through it: it changes nothing). Query:
    layer, filter, channel, example, row, col, step (and was, was_layer, picked: what the form showed). A page's
    preview (``draft-<key>``) shows its own: stepping through it creates no session."""
    s = viewed(manager, session_id)
    convs = [(i, layer) for i, layer in enumerate(s.spec.network.layers) if layer.type == "conv"]
    ctx = context(request, s, readonly=True, convs=convs, walk=None, view=None, walk_error=None)
    if not convs:
        ctx["walk_error"] = "This network has no conv layer: add one to see how a convolution works."
        return HTMLResponse(fragment(request, "partials/conv_walk.html", ctx))
    layer = _int(form, "layer")
    layer = layer if layer in {i for i, _ in convs} else convs[0][0]
    conv = s.spec.network.layers[layer]
    assert isinstance(conv, ConvLayerSpec)  # layer is one of convs
    filters = conv.filters
    asked = _int(form, "filter")
    filter_ = None if asked is None else min(max(asked, 0), filters - 1)  # None: the most excited filter
    example = max(_int(form, "example") or 0, 0)
    row, col = _int(form, "row"), _int(form, "col")
    picked = first(form, "picked") == "1" and first(form, "was_layer") == str(layer)
    step = _int(form, "step") or 0
    if first(form, "was") != f"{layer},{asked},{example}" and not picked:
        row = col = None  # a new layer, filter or image: start where this filter responds most
        step = 0
    try:
        walk = await manager.view(s, "convolution", layer=layer, filter_=filter_, example=example, row=row, col=col)
    except SessionError as exc:
        ctx["walk_error"] = exc.message
        return HTMLResponse(fragment(request, "partials/conv_walk.html", ctx))
    channel = min(max(_int(form, "channel") or 0, 0), len(walk["patch"]) - 1)
    view = walk_view(walk, step, channel)
    ctx |= {"walk": walk, "view": view, "filters": filters, "picked": picked}
    ctx["was"] = f"{layer},{walk['filter']},{example}"
    return HTMLResponse(fragment(request, "partials/conv_walk.html", ctx))
