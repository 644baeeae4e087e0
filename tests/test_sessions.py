"""The session loop: play trains in the background and feeds latest-only mailboxes; limits and reaping."""

from __future__ import annotations

import asyncio
import time

import pytest

from server.config import Settings
from server.sessions import Mailbox, SessionManager
from server.spec import ExperimentSpec


def run(coro):
    return asyncio.run(coro)


def test_mailbox_keeps_only_the_latest():
    async def scenario():
        box = Mailbox()
        for i in range(5):
            box.put(i)  # a slow reader: five frames arrive before it looks
        first = await box.get()
        box.put(99)
        second = await asyncio.wait_for(box.get(), 1)
        return first, second

    assert run(scenario()) == (4, 99)


def test_play_streams_frames_and_pause_stops():
    async def scenario():
        manager = SessionManager(Settings(compile_cache_dir=None))
        s = await manager.create(ExperimentSpec())
        box = manager.subscribe(s)
        await manager.play(s)
        header, arrays = await asyncio.wait_for(box.get(), 30)
        frames = [header]
        for _ in range(3):
            frames.append((await asyncio.wait_for(box.get(), 10))[0])
        await manager.pause(s)
        epoch = s.epoch
        await asyncio.sleep(0.3)
        still = s.epoch
        await manager.close()
        return frames, arrays, epoch, still, s.status

    frames, arrays, epoch, still, status = run(scenario())
    epochs = [f["epoch"] for f in frames]
    assert epochs == sorted(epochs) and epochs[-1] > epochs[0] >= 1  # training moves forward
    assert all(f["status"] == "running" for f in frames)
    assert arrays["output"].shape == (100, 100) and arrays["neurons"].shape == (6, 25, 25)
    assert epoch == still and status == "paused"  # nothing trains after pause returns


def test_speed_caps_epochs_per_second():
    async def scenario():
        manager = SessionManager(Settings(compile_cache_dir=None))
        s = await manager.create(ExperimentSpec(speed=20))
        await manager.train(s, 1)  # compile outside the timed window
        start_epoch, t = s.epoch, time.perf_counter()
        await manager.play(s)
        await asyncio.sleep(1.0)
        await manager.pause(s)
        elapsed = time.perf_counter() - t
        await manager.close()
        return s.epoch - start_epoch, elapsed

    epochs, elapsed = run(scenario())
    assert 1 <= epochs <= 20 * elapsed + 2  # never faster than the cap (a slow machine may be slower)


def test_patch_while_running_applies_between_chunks_without_reset():
    async def scenario():
        manager = SessionManager(Settings(compile_cache_dir=None))
        s = await manager.create(ExperimentSpec())
        await manager.play(s)
        while s.epoch < 5:
            await asyncio.sleep(0.02)
        before = s.epoch
        report = await manager.patch(s, {"training": {"learning_rate": 0.1}})
        after = s.epoch
        await asyncio.sleep(0.2)
        await manager.pause(s)
        await manager.close()
        return before, after, s.epoch, report, s.spec.training.learning_rate

    before, after, final, report, lr = run(scenario())
    assert after >= before and final > after  # the counter never goes back and training continues
    assert report["optimizer_state"] == "kept" and report["weights"]["initialized"] == 0
    assert lr == pytest.approx(0.1)


def test_session_limit_and_idle_reaping():
    async def scenario():
        manager = SessionManager(Settings(compile_cache_dir=None, max_sessions=2, session_idle_seconds=0.05))
        a = await manager.create(ExperimentSpec())
        b = await manager.create(ExperimentSpec())
        for s in (a, b):
            await manager.play(s, watched=False)
        try:
            await manager.create(ExperimentSpec())
            refused = False
        except Exception as exc:  # noqa: BLE001 - the type is checked below
            refused = type(exc).__name__ == "TooMany" and exc.status_code == 429
        for s in (a, b):
            await manager.pause(s)
        manager.subscribe(b)  # b has a watcher: it stays
        await asyncio.sleep(0.1)
        removed = await manager.reap_idle()
        left = set(manager.sessions)
        await manager.close()
        return refused, removed, left, a.id, b.id

    refused, removed, left, a_id, b_id = run(scenario())
    assert refused, "every session training: no room"
    assert removed == 1 and left == {b_id}


def test_a_new_architecture_is_compiled_before_play():
    """The training program compiles in the background once a session exists (or its architecture changes):
    the first chunk after play finds it ready."""
    from server.ml.train import train_epochs

    async def scenario():
        manager = SessionManager(Settings(compile_cache_dir=None))
        spec = ExperimentSpec.model_validate({"network": {"hidden": [{"units": 3, "activation": "elu"}] * 3}})
        s = await manager.create(spec)
        assert s.warm is not None
        await s.warm
        compiled = train_epochs._cache_size()
        await manager.train(s, 3)
        after_train = train_epochs._cache_size()
        await manager.patch(s, {"network": {"hidden": [{"units": 5, "activation": "elu"}] * 2}})
        await s.warm
        rewarmed = train_epochs._cache_size()
        await manager.step(s)
        after_step = train_epochs._cache_size()
        await manager.close()
        return compiled, after_train, rewarmed, after_step, s.epoch

    compiled, after_train, rewarmed, after_step, epoch = run(scenario())
    assert after_train == compiled  # training ran the program compiled in the background
    assert rewarmed == compiled + 1 and after_step == rewarmed  # the new architecture: compiled once, up front
    assert epoch == 4


def test_pause_shows_exactly_where_training_stopped():
    """After pause, the state's metrics and the last frame belong to the epoch training stopped at."""

    async def scenario():
        manager = SessionManager(Settings(compile_cache_dir=None))
        s = await manager.create(ExperimentSpec())
        box = manager.subscribe(s)
        await manager.play(s)
        while (await asyncio.wait_for(box.get(), 30))[0]["epoch"] < 20:
            pass
        await manager.pause(s)
        header, _ = await asyncio.wait_for(box.get(), 10)
        history = s.history.items[-1]
        await manager.close()
        return header, history, s.epoch, s.metrics

    header, history, epoch, metrics = run(scenario())
    assert header["epoch"] == epoch and header["status"] == "paused"
    assert header["metrics"] == metrics
    assert history["epoch"] == epoch and history["train_loss"] == metrics["train_loss"]
