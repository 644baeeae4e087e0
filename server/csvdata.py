"""Your own 2-D data as CSV: reading a file (the page's upload) and writing a session's data back out.

One point per line, ``x1,x2,label``, with an optional fourth column ``split`` (``train`` or ``test``); a
first line of column names is skipped; ``;`` and tabs separate as well as commas; ``#`` starts a comment
line. Without a split column the points are shuffled (by the data seed) and split by the training share;
with one, every point goes where its line says and the file's order is kept.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

MAX_POINTS = 5000
PARTS = ("train", "test")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _row(number: int, cells: list[str], problem: str, with_split: bool) -> tuple[list[float], str | None]:
    """One data line → ([x1, x2, label], split or None); ValueError names the line."""
    if with_split:
        part = cells[3].lower()
        if part not in PARTS:
            raise ValueError(f"line {number}: the split column says {cells[3][:20]!r}; write 'train' or 'test'")
    bad = [c for c in cells[:3] if not _is_number(c)]
    if bad:
        raise ValueError(f"line {number}: {bad[0]!r} is not a number")
    x1, x2, label = (float(c) for c in cells[:3])
    for name, v in (("x1", x1), ("x2", x2)):
        if not -6 <= v <= 6:
            raise ValueError(f"line {number}: {name} = {v:g} is outside the plotted square (−6 to 6)")
    if problem == "classification" and label not in (0, 1, 2):
        raise ValueError(
            f"line {number}: label {label:g} is not a class (0, 1 or 2); for numeric targets choose "
            "problem type 'regression' first"
        )
    return [x1, x2, label], part if with_split else None


def parse_csv(text: str, problem: str) -> tuple[list[list[float]], list[str] | None]:
    """Points [x1, x2, label] and their split (None without a split column); ValueError names the line."""
    points: list[list[float]] = []
    split: list[str] = []
    width: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.replace(";", ",").replace("\t", ",").split(",")]
        if len(cells) not in (3, 4) or (width is not None and len(cells) != width):
            expected = "3 values x1,x2,label (or 4: x1,x2,label,split)" if width is None else f"{width} values"
            raise ValueError(f"line {number}: expected {expected} but found {len(cells)}: {line[:40]!r}")
        if width is None and not points and not all(_is_number(c) for c in cells[:3]):
            width = len(cells)  # the first line names the columns
            continue
        width = len(cells)
        point, part = _row(number, cells, problem, width == 4)
        points.append(point)
        if part is not None:
            split.append(part)
    if len(points) < 2:
        raise ValueError("the file needs at least 2 points, one per line as x1,x2,label")
    if len(points) > MAX_POINTS:
        raise ValueError(f"the file has {len(points)} points; at most {MAX_POINTS}")
    return points, (split if width == 4 else None)


def to_csv(train: tuple[Any, Any], test: tuple[Any, Any]) -> str:
    """The points of a session's data as CSV with a split column (what ``parse_csv`` reads back exactly):
    train then test, each as (points (n, 2), labels (n,))."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["x1", "x2", "label", "split"])
    for part, (points, labels) in zip(PARTS, (train, test), strict=True):
        for (x1, x2), label in zip(np.asarray(points).tolist(), np.asarray(labels).tolist(), strict=True):
            writer.writerow([f"{x1:.6g}", f"{x2:.6g}", f"{label:.6g}", part])
    return out.getvalue()
