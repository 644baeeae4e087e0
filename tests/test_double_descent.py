"""Double descent, reproduced: the README's example (examples/double_descent.py) runs its width sweep
through REST, and the test loss against width has the shape the lesson describes — up to a peak, then down
again below where it started. It is also the check of lesson 16 (the same sweep)."""

from __future__ import annotations

import sys
from pathlib import Path

from server.lessons import LESSONS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import double_descent  # noqa: E402


def test_the_lesson_runs_the_readmes_sweep() -> None:
    assert LESSONS["double-descent"].sweep == double_descent.SWEEP
    assert LESSONS["double-descent"].spec == double_descent.SWEEP["base"]


def test_test_loss_against_width_descends_twice(client) -> None:
    curve = double_descent.run(client)
    widths = list(curve)
    assert widths == double_descent.WIDTHS
    losses = [curve[w] for w in widths]
    peak = max(range(len(losses)), key=losses.__getitem__)
    assert 0 < peak < len(losses) - 1, f"the peak is inside the range of widths: {curve}"
    assert losses[peak] > 1.3 * losses[0], f"it first climbs: {curve}"
    assert losses[-1] < 0.75 * losses[peak], f"then descends again: {curve}"
    assert losses[-1] < losses[0], f"and the widest ends below the narrowest: {curve}"


def test_the_example_prints_the_curve(client, monkeypatch, capsys) -> None:
    """``main`` as a user runs it (its client pointed at the test app)."""
    import contextlib

    import httpx

    monkeypatch.setattr(httpx, "Client", lambda **_: contextlib.nullcontext(client))
    small = dict(double_descent.SWEEP, grid={"network.hidden": [[1], [64]], "seed": [0]}, epochs=50)
    monkeypatch.setattr(double_descent, "SWEEP", small)
    monkeypatch.setattr(double_descent.run, "__defaults__", (small,))
    double_descent.main()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "width  test loss" and len(out) == 3
    assert out[1].split()[0] == "1" and out[2].split()[0] == "64" and "#" in out[2]


def test_the_readmes_own_code_runs_as_printed(client, monkeypatch, capsys) -> None:
    """The Python block of the README's "Sweeps" section, run as a user pastes it (its client pointed at the test
    app): it waits for the sweep through "queued" and "running" and prints a mean test loss for every width."""
    import httpx

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Sweeps", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setattr(httpx, "Client", lambda **_: client)
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own text, as a reader would run it
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [int(width) for width, _ in rows] == double_descent.WIDTHS
    assert all(float(loss) > 0 for _, loss in rows)
