"""A sweep's group as members leave it (diverged, or cut at a rung): the vmapped batch shrinks through a few
bucketed sizes, so few programs compile, and the members who stay train exactly as they would have alone."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.sessions import sweep_groups as groups
from server.spec import ExperimentSpec


def _group(specs: list[ExperimentSpec]) -> groups.GroupRun:
    prepared = dict(enumerate(groups.prepare(specs, lambda engine, spec: engine.build_data(spec))))
    return groups.start_group(list(range(len(specs))), specs, prepared)


def _records(chunks: list[groups.Chunk]) -> dict[int, list[list[float]]]:
    """Each member's records (epoch and the four metrics) in the order made."""
    out: dict[int, list[list[float]]] = {}
    for chunk in chunks:
        for row, k in enumerate(chunk.members):
            rows = chunk.records[:, row]
            out.setdefault(k, []).extend(rows[rows[:, 0] >= 1].tolist())
    return out


def test_bucket_sizes_waste_at_most_a_quarter_and_shrink_in_few_steps() -> None:
    assert [groups.bucket(n) for n in (1, 2, 3, 4, 5, 7, 8, 9, 15, 17, 100, 255, 256)] == [
        1, 2, 3, 4, 5, 7, 8, 10, 16, 20, 112, 256, 256,
    ]  # fmt: skip
    assert all(n <= groups.bucket(n) <= 1.25 * n for n in range(1, 2000))
    assert len({groups.bucket(n) for n in range(129, 257)}) == 4


def test_members_leaving_one_at_a_time_reuse_a_few_sizes_and_the_rest_train_as_alone() -> None:
    specs = [
        ExperimentSpec.model_validate({"training": {"learning_rate": lr}, "seed": s})
        for lr in (0.01, 0.03, 0.1, 0.3)
        for s in range(4)
    ]
    run = _group(specs)
    sizes, chunks, left = [], [], {}
    for leaving in ([], [15], [14], [13], [12], [11], [10], [9]):
        if leaving:
            left |= groups.leave(run, set(leaving))
        sizes.append(int(run.alive.shape[0]))
        chunks.append(groups.train_chunk(run, 5, 5, 40, maps=True))
        assert chunks[-1].maps is not None and len(chunks[-1].maps) == len(run.members)
    assert sizes == [16, 16, 14, 14, 12, 12, 10, 10], "a new program for every other departure, not each one"
    assert set(left) == set(range(9, 16)) and run.members == list(range(9))
    alone = _group(specs[:9])
    together = [groups.train_chunk(alone, 5, 5, 40, maps=False) for _ in range(8)]
    mine, theirs = _records(chunks), _records(together)
    for k in range(9):
        assert [r[0] for r in mine[k]] == list(range(5, 41, 5))
        np.testing.assert_allclose(mine[k], theirs[k], rtol=1e-5, atol=1e-7)
    final: dict[int, Any] = groups.states_of(run)
    kept = groups.states_of(alone)
    for k in range(9):
        for a, b in zip(final[k].params, kept[k].params, strict=True):
            np.testing.assert_allclose(a["w"], b["w"], rtol=1e-5, atol=1e-7)
    # those who left kept the weights they had when they left: member 9 trained 35 epochs (7 calls)
    assert len(mine[9]) == 7


def test_cnn_configurations_train_vmapped_in_blocks_by_the_size_of_their_convolutions() -> None:
    from server.presets import PRESETS

    specs = {name: ExperimentSpec.model_validate(PRESETS[name]["spec"]) for name in ("cnn-bars-edges", "cnn-convnetjs")}
    bars = [specs["cnn-bars-edges"].model_copy(update={"seed": s}) for s in range(3)]
    assert _group(bars).block == 8  # small images: a block holds the whole group, one vmapped program
    big = specs["cnn-convnetjs"]
    assert _group([big, big.model_copy(update={"seed": 1})]).block == 2  # 28×28 with 5×5 kernels: two at a time
