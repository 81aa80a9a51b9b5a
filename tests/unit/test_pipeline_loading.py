"""A pipeline's load, seen from a session: a lazy first call that takes long is a load
(``first frame``), a declared load step says its stages and progress, a load that
raises or passes its deadline is an error in words, loads happen once per process, and
a mid-stream switch keeps the running pipeline's frames coming while the next loads."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import av
import numpy as np
import pytest

from tether import protocol
from tether.clock import VirtualClock
from tether.pipelines import load_pipelines
from tether.pipelines.builtin import NoParams
from tether.worker.engine import Engine
from tether.worker.session import MediaSession


def frame_of(value: int = 10) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((32, 32, 3), value, np.uint8), format="rgb24")


def value_of(frame: av.VideoFrame) -> int:
    return int(round(float(frame.to_ndarray(format="rgb24").mean())))


class Mark:
    """Paints every frame one grey level (which pipeline made a frame is plain to see);
    its first call or its load step waits for ``gate`` when given one."""

    params_model = NoParams

    def __init__(self, name: str, value: int, lazy: threading.Event | None = None) -> None:
        self.name, self.value, self.lazy = name, value, lazy
        self.calls = 0

    def process(self, frame: np.ndarray, params: NoParams) -> np.ndarray:
        self.calls += 1
        if self.lazy is not None:
            assert self.lazy.wait(10)
            self.lazy = None
        return np.full_like(frame, self.value)


class Staged(Mark):
    """Declares ``load(progress)``: says its stages and how far it is, waits for ``gate``."""

    def __init__(self, name: str, value: int, fails: str | None = None) -> None:
        super().__init__(name, value)
        self.gate, self.fails, self.loads = threading.Event(), fails, 0
        self.reached = threading.Event()

    def load(self, progress: Any) -> None:
        self.loads += 1
        progress("loading weights", 0.25)
        self.reached.set()
        assert self.gate.wait(10)
        if self.fails:
            raise OSError(self.fails)
        progress("warming up", 1.0)


class Session:
    """A MediaSession on a test engine, with what it told the studio."""

    def __init__(self, engine: Engine, pipelines: dict[str, Any]) -> None:
        self.session = MediaSession(pipelines, engine)
        self.sent: list[Any] = []
        self.session._send = self.sent.append

    def states(self) -> list[protocol.PipelineState]:
        return [m for m in self.sent if isinstance(m, protocol.PipelineState)]

    def said(self) -> list[tuple[Any, ...]]:
        return [(m.state, m.pipeline, m.stage, m.running) for m in self.states()]


def pipelines_with(*extra: Any) -> dict[str, Any]:
    return {**load_pipelines(), **{p.name: p for p in extra}}


async def until(check: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_slow_first_call_is_a_load_said_after_the_warmup_then_ready() -> None:
    clock, gate = VirtualClock(), threading.Event()
    engine = Engine(clock=clock)
    lazy = Mark("lazy", 200, lazy=gate)
    s = Session(engine, pipelines_with(lazy))
    s.session.apply({"pipeline": "lazy"}, 1)
    processing = asyncio.ensure_future(s.session.process(frame_of()))
    await until(lambda: lazy.calls == 1)
    await clock.advance(0.4)
    assert s.states() == []  # quick enough so far: nothing to say
    await clock.advance(0.1)
    assert s.said() == [("loading", "lazy", "first frame", None)]
    assert s.states()[-1].elapsed_s == 0.5
    await clock.advance(2.0)  # about once a second while it loads
    assert [m.elapsed_s for m in s.states()] == [0.5, 1.5, 2.5]
    gate.set()
    assert value_of(await processing) == 200
    assert s.said()[-1] == ("ready", "lazy", None, "lazy")
    assert s.states()[-1].elapsed_s == 2.5  # how long the load took
    await s.session.close()
    await engine.close()


async def test_a_quick_first_call_is_just_ready_and_a_later_slow_call_no_load() -> None:
    engine = Engine(clock=VirtualClock())
    s = Session(engine, pipelines_with(Mark("quick", 90)))
    s.session.apply({"pipeline": "quick"}, 1)
    for _ in range(3):
        assert value_of(await s.session.process(frame_of())) == 90
    assert s.said() == [("ready", "quick", None, "quick")]
    assert s.states()[0].elapsed_s is None
    await s.session.close()
    await engine.close()


async def test_a_declared_load_says_its_stages_and_progress_and_runs_once() -> None:
    engine = Engine()
    staged = Staged("staged", 120)
    pipelines = pipelines_with(staged)
    first, second = Session(engine, pipelines), Session(engine, pipelines)
    for s in (first, second):
        s.session.apply({"pipeline": "staged"}, 1)
    both = asyncio.gather(*(s.session.process(frame_of()) for s in (first, second)))
    await until(lambda: any(m.stage == "loading weights" for m in first.states()))
    loading = first.states()[-1]
    assert (loading.state, loading.progress, loading.running) == ("loading", 0.25, None)
    assert second.states()[-1].stage == "loading weights"  # both hear of the one load
    staged.gate.set()
    assert [value_of(f) for f in await both] == [120, 120]
    assert staged.loads == 1
    for s in (first, second):
        assert s.said()[-1] == ("ready", "staged", None, "staged")
    # A later session (a reconnect, another stream) finds it loaded.
    third = Session(engine, pipelines)
    third.session.apply({"pipeline": "staged"}, 1)
    assert value_of(await third.session.process(frame_of())) == 120
    assert third.said() == [("ready", "staged", None, "staged")]
    assert staged.loads == 1 and engine.models.loads_started["staged"] == 1
    for s in (first, second, third):
        await s.session.close()
    await engine.close()


class OldStyle(Mark):
    """``load()`` with no argument, saying its stage by ``load_stage`` (still works)."""

    def __init__(self) -> None:
        super().__init__("old", 70)
        self.load_stage: str | None = None
        self.gate = threading.Event()

    def load(self) -> None:
        self.load_stage = "warming up"
        assert self.gate.wait(10)


async def test_a_load_step_without_arguments_still_works_and_says_its_stage() -> None:
    engine = Engine()
    old = OldStyle()
    s = Session(engine, pipelines_with(old))
    s.session.apply({"pipeline": "old"}, 1)
    processing = asyncio.ensure_future(s.session.process(frame_of()))
    await until(lambda: old.load_stage is not None)
    await until(lambda: any(m.stage == "warming up" for m in s.states()), 3)
    old.gate.set()
    assert value_of(await processing) == 70
    assert s.said()[-1][0] == "ready"
    await s.session.close()
    await engine.close()


async def test_a_load_that_raises_is_an_error_in_words_and_frames_go_back_unprocessed() -> None:
    engine = Engine()
    broken = Staged("broken", 30, fails="weights not found")
    s = Session(engine, pipelines_with(broken))
    s.session.apply({"pipeline": "broken"}, 1)
    broken.gate.set()
    for _ in range(3):
        assert value_of(await s.session.process(frame_of(10))) == 10  # the raw frame
    error = s.states()[-1]
    assert error.state == "error" and error.running is None
    assert error.error == "failed to load: OSError: weights not found"
    assert s.session.pipeline_error == f"broken: {error.error}"
    assert s.session.pipeline_errors == 3
    errors = [m for m in s.sent if isinstance(m, protocol.PipelineError)]
    assert [m.message for m in errors] == [s.session.pipeline_error]  # told once, not per frame
    assert broken.loads == 1  # failed for the life of the process: never tried again
    await s.session.close()
    await engine.close()


async def test_a_load_past_its_deadline_is_an_error() -> None:
    clock = VirtualClock()
    engine = Engine(clock=clock, load_timeout_s=5)
    staged = Staged("staged", 120)
    s = Session(engine, pipelines_with(staged))
    s.session.apply({"pipeline": "staged"}, 1)
    processing = asyncio.ensure_future(s.session.process(frame_of(10)))
    await asyncio.to_thread(staged.reached.wait, 5)
    await clock.advance(4.9)
    assert s.states()[-1].state == "loading"
    await clock.advance(0.2)
    assert value_of(await processing) == 10
    assert s.states()[-1].state == "error"
    assert s.states()[-1].error == "did not load within 5 s"
    staged.gate.set()  # its thread ends some time: the load stays failed
    await s.session.close()
    await engine.close()


async def test_a_switch_keeps_the_running_pipeline_until_the_next_is_loaded() -> None:
    engine = Engine()
    gate = threading.Event()
    old, new = Mark("old", 50), Mark("new", 200, lazy=gate)
    s = Session(engine, pipelines_with(old, new))
    s.session.apply({"pipeline": "old"}, 1)
    assert value_of(await s.session.process(frame_of())) == 50
    s.session.apply({"pipeline": "new"}, 2)
    # Frames keep coming from the old pipeline while the new one loads.
    for _ in range(3):
        assert value_of(await s.session.process(frame_of())) == 50
    await until(lambda: s.said()[-1] == ("loading", "new", "first frame", "old"), 3)
    assert s.session.describe()["pipeline_loading"] == "new"
    gate.set()
    await until(lambda: engine.models.ready(new))
    assert value_of(await s.session.process(frame_of())) == 200
    assert s.said()[-1] == ("ready", "new", None, "new")
    assert new.calls == 2  # the load's first call, then this frame
    await s.session.close()
    await engine.close()


async def test_no_make_before_break_where_memory_does_not_fit_and_the_note_says_so() -> None:
    engine = Engine(memory_mb=1000)
    old, new = Mark("old", 50), Staged("new", 200)
    old.memory_mb, new.memory_mb = 600, 600  # type: ignore[attr-defined]
    s = Session(engine, pipelines_with(old, new))
    s.session.apply({"pipeline": "old"}, 1)
    await s.session.process(frame_of())
    s.session.apply({"pipeline": "new"}, 2)
    processing = asyncio.ensure_future(s.session.process(frame_of()))
    await until(lambda: s.states()[-1].state == "loading")
    said = s.states()[-1]
    assert said.running is None  # the fallback shows meanwhile
    assert said.note == (
        "old (600 MB) and new (600 MB) do not fit in 1000 MB together: old stopped while new loads"
    )
    new.gate.set()
    assert value_of(await processing) == 200
    await s.session.close()
    await engine.close()


async def test_no_make_before_break_from_a_failing_pipeline() -> None:
    engine = Engine()
    broken, new = Staged("broken", 30, fails="no weights"), Staged("new", 200)
    broken.gate.set()
    s = Session(engine, pipelines_with(broken, new))
    s.session.apply({"pipeline": "broken"}, 1)
    await s.session.process(frame_of())
    s.session.apply({"pipeline": "new"}, 2)
    assert s.session.describe()["pipeline"] == "new"
    processing = asyncio.ensure_future(s.session.process(frame_of()))
    await until(lambda: s.states()[-1].state == "loading")
    assert s.states()[-1].note == "broken failed: nothing to keep running while new loads"
    new.gate.set()
    assert value_of(await processing) == 200
    assert s.session.pipeline_error is None
    await s.session.close()
    await engine.close()


async def test_a_switch_to_a_load_that_fails_says_so_at_once_and_falls_back() -> None:
    engine = Engine()
    old, broken = Mark("old", 50), Staged("broken", 30, fails="out of memory")
    s = Session(engine, pipelines_with(old, broken))
    s.session.apply({"pipeline": "old"}, 1)
    await s.session.process(frame_of())
    s.session.apply({"pipeline": "broken"}, 2)
    assert value_of(await s.session.process(frame_of())) == 50
    await until(lambda: s.states()[-1].state == "loading")
    broken.gate.set()
    # Told when the load fails, before any frame: within a moment.
    await until(lambda: s.states()[-1].state == "error", 1)
    assert s.states()[-1].error == "failed to load: OSError: out of memory"
    assert value_of(await s.session.process(frame_of(10))) == 10  # unprocessed, said
    await s.session.close()
    await engine.close()


@pytest.mark.parametrize("back", [True, False])
async def test_switching_back_during_a_load_keeps_the_one_load(back: bool) -> None:
    engine = Engine()
    old, new = Mark("old", 50), Staged("new", 200)
    s = Session(engine, pipelines_with(old, new))
    s.session.apply({"pipeline": "old"}, 1)
    await s.session.process(frame_of())
    s.session.apply({"pipeline": "new"}, 2)
    await s.session.process(frame_of())
    s.session.apply({"pipeline": "old"}, 3)  # back, during the load
    assert value_of(await s.session.process(frame_of())) == 50
    assert s.session.describe()["pipeline_loading"] is None
    if back:
        s.session.apply({"pipeline": "new"}, 4)  # and forth: the same load, not a second
        assert s.session.describe()["pipeline_loading"] == "new"
    new.gate.set()
    await until(lambda: engine.models.ready(new))
    assert value_of(await s.session.process(frame_of())) == (200 if back else 50)
    assert new.loads == 1
    await s.session.close()
    await engine.close()
