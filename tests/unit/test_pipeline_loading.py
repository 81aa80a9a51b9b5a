"""A pipeline's first call that takes long is a load, said as such: ``loading`` after the
warm-up (stage ``first frame``, the time so far), about once a second while it lasts,
``ready`` when it returns, ``error`` when it raises; a later slow call is no load."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import av
import numpy as np
import pytest

from tether import protocol
from tether.clock import VirtualClock
from tether.pipelines import load_pipelines
from tether.pipelines.builtin import NoParams
from tether.worker.loading import PipelineLoading
from tether.worker.session import MediaSession


def _loading() -> tuple[PipelineLoading, VirtualClock, list[protocol.PipelineState]]:
    clock = VirtualClock()
    told: list[protocol.PipelineState] = []
    return PipelineLoading(told.append, clock), clock, told


def _said(told: list[protocol.PipelineState]) -> list[tuple[Any, ...]]:
    return [(m.state, m.pipeline, m.stage, m.elapsed_s) for m in told]


async def test_a_slow_first_call_is_loading_then_ready() -> None:
    loading, clock, told = _loading()
    work: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    call = asyncio.ensure_future(loading.call("sd", work))
    await clock.advance(0.4)
    assert told == [] and not loading.loading  # quick enough so far: nothing to say
    await clock.advance(0.2)
    assert _said(told) == [("loading", "sd", "first frame", 0.5)]
    assert loading.loading
    await clock.advance(2.0)  # about once a second while it loads
    assert _said(told)[1:] == [
        ("loading", "sd", "first frame", 1.5),
        ("loading", "sd", "first frame", 2.5),
    ]
    work.set_result("frame")
    assert await call == "frame"
    assert _said(told)[-1] == ("ready", "sd", None, 2.6)  # and how long the load took
    assert not loading.loading
    assert clock.sleepers == 0  # nothing left waiting on the clock


async def test_a_quick_first_call_is_just_ready_and_later_calls_are_never_loads() -> None:
    loading, clock, told = _loading()
    assert await loading.call("tint", asyncio.sleep(0, "a")) == "a"
    assert _said(told) == [("ready", "tint", None, None)]
    # A slow call once the pipeline is loaded is a slow model (the quality's business).
    work: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    call = asyncio.ensure_future(loading.call("tint", work))
    await clock.advance(3.0)
    work.set_result("b")
    assert await call == "b"
    assert len(told) == 1


async def test_a_switch_to_a_pipeline_that_loads_is_a_load_of_that_pipeline() -> None:
    loading, clock, told = _loading()
    await loading.call("tint", asyncio.sleep(0))
    work: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    call = asyncio.ensure_future(loading.call("sd", work))
    await clock.advance(0.5)
    assert _said(told)[-1] == ("loading", "sd", "first frame", 0.5)
    work.set_result(None)
    await call
    assert _said(told)[-1] == ("ready", "sd", None, 0.5)


async def test_a_load_that_raises_is_an_error_told_once() -> None:
    loading, clock, told = _loading()
    work: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    call = asyncio.ensure_future(loading.call("sd", work))
    await clock.advance(1.0)
    work.set_exception(RuntimeError("no weights"))
    with pytest.raises(RuntimeError):
        await call
    assert _said(told)[-1] == ("error", "sd", None, None)
    for _ in range(3):  # failing on every frame after: no message per frame
        with pytest.raises(RuntimeError):
            await loading.call("sd", _raise())
    assert [m.state for m in told].count("error") == 1
    await loading.call("sd", asyncio.sleep(0))
    assert told[-1].state == "ready"


async def _raise() -> None:
    raise RuntimeError("no weights")


class Lazy:
    """Loads its 'model' in its first call, as many real pipelines do."""

    name = "lazy"
    params_model = NoParams

    def __init__(self, load_s: float) -> None:
        self.load_s, self.loaded = load_s, False

    def process(self, frame: np.ndarray, params: NoParams) -> np.ndarray:
        if not self.loaded:
            time.sleep(self.load_s)
            self.loaded = True
        return frame


async def test_a_session_says_its_pipeline_loads_while_the_loop_stays_free() -> None:
    pipelines = {**load_pipelines(), "lazy": Lazy(0.8)}
    sent: list[Any] = []
    with ThreadPoolExecutor(1) as executor:
        session = MediaSession(pipelines, executor)
        session._send = sent.append
        session.apply({"pipeline": "lazy"}, 1)
        frame = av.VideoFrame(32, 32, "yuv420p")
        processing = asyncio.ensure_future(session.process(frame))
        ticks = 0
        while not processing.done():  # the load runs in the executor, never on the loop
            await asyncio.sleep(0.05)
            ticks += 1
        await processing
        assert ticks >= 10
        states = [(m.state, m.pipeline) for m in sent if m.type == "pipeline_state"]
        assert states == [("loading", "lazy"), ("ready", "lazy")]
        assert session.describe()["pipeline_state"] == "ready"
        session.apply({"pipeline": "passthrough"}, 2)
        await session.process(frame)
        assert sent[-1].state == "ready" and sent[-1].pipeline == "passthrough"
        await session.close()


class Declared:
    """Declares its load step, and says what it is doing meanwhile."""

    name = "declared"
    params_model = NoParams

    def __init__(self, load_s: float, fails: bool = False) -> None:
        self.load_s, self.fails = load_s, fails
        self.loads = 0
        self.load_stage: str | None = None

    def load(self) -> None:
        self.loads += 1
        self.load_stage = "warming up"
        time.sleep(self.load_s)
        if self.fails:
            raise OSError("weights not found")

    def process(self, frame: np.ndarray, params: NoParams) -> np.ndarray:
        assert self.loads == 1
        return frame


async def test_a_declared_load_runs_once_per_worker_process_with_its_stage() -> None:
    from tether.worker.runner import PipelineRunner

    declared = Declared(0.8)
    pipelines = {**load_pipelines(), "declared": declared}
    frame = av.VideoFrame(32, 32, "yuv420p")
    with ThreadPoolExecutor(2) as executor:
        runner = PipelineRunner(executor)  # the worker's: shared by its sessions
        first, second = (MediaSession(pipelines, executor, runner) for _ in range(2))
        sent: dict[MediaSession, list[Any]] = {first: [], second: []}
        for session in (first, second):
            session._send = sent[session].append
            session.apply({"pipeline": "declared"}, 1)
        both = await asyncio.gather(first.process(frame), second.process(frame))
        assert both == [frame, frame] and declared.loads == 1
        for session in (first, second):  # each session says its pipeline loads
            states = [(m.state, m.stage) for m in sent[session]]
            assert states == [("loading", "warming up"), ("ready", None)], states
        # A later session (a reconnect, another stream) finds it loaded.
        third = MediaSession(pipelines, executor, runner)
        third._send = (later := []).append
        third.apply({"pipeline": "declared"}, 1)
        assert await third.process(frame) is frame
        assert [(m.state, m.elapsed_s) for m in later] == [("ready", None)]
        assert declared.loads == 1
        for session in (first, second, third):
            await session.close()


async def test_a_load_that_fails_is_the_pipelines_error() -> None:
    pipelines = {**load_pipelines(), "declared": Declared(0.0, fails=True)}
    frame = av.VideoFrame(32, 32, "yuv420p")
    with ThreadPoolExecutor(1) as executor:
        session = MediaSession(pipelines, executor)
        session._send = (sent := []).append
        session.apply({"pipeline": "declared"}, 1)
        for _ in range(3):
            assert await session.process(frame) is frame  # unprocessed, and said so
        assert [m.state for m in sent if m.type == "pipeline_state"] == ["error"]
        assert "weights not found" in (session.pipeline_error or "")
        assert session.pipeline_errors == 3
        await session.close()
