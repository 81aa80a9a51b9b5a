"""Switching back and forth while models load, in any order, with loads ending at any
moment and frames in between: never two loads of one pipeline, and never a stuck
state (once the loads end, the stream runs what it chose last, and says so)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_pipeline_loading import Mark, Session, Staged, frame_of, pipelines_with
from tether.worker.engine import Engine

NAMES = ["old", "a", "b"]
actions = st.lists(
    st.one_of(
        st.tuples(st.just("choose"), st.sampled_from(NAMES)),
        st.tuples(st.just("finish"), st.sampled_from(["a", "b"])),
        st.tuples(st.just("frame"), st.just("")),
        st.tuples(st.just("wait"), st.just("")),
    ),
    max_size=14,
)


@settings(max_examples=80, deadline=None)
@given(actions)
def test_switches_during_loads_never_load_twice_nor_stick(steps: list[tuple[str, str]]) -> None:
    asyncio.run(_play(steps))


async def _play(steps: list[tuple[str, str]]) -> None:
    engine = Engine()
    models = {"old": Mark("old", 50), "a": Staged("a", 100), "b": Staged("b", 200)}
    s = Session(engine, pipelines_with(*models.values()))
    session, version, chosen = s.session, 1, "old"
    session.apply({"pipeline": "old"}, version)
    await session.process(frame_of())
    frame: asyncio.Future[Any] | None = None  # one frame at a time, as a track takes them
    try:
        for action, name in steps:
            if action == "choose":
                version, chosen = version + 1, name
                session.apply({"pipeline": name}, version)
            elif action == "finish":
                models[name].gate.set()  # type: ignore[attr-defined]
            elif action == "frame" and (frame is None or frame.done()):
                frame = asyncio.ensure_future(session.process(frame_of()))
            await asyncio.sleep(0.005 if action == "wait" else 0)
        for model in models.values():
            if isinstance(model, Staged):
                model.gate.set()
        if frame is not None:
            await frame
        deadline = time.monotonic() + 5

        def said() -> tuple[Any, ...]:
            state = s.states()[-1]
            return (state.state, state.pipeline, state.running)

        # (A pipeline is said ready once its frames come: frames until then.)
        while session.describe()["pipeline"] != chosen or said() != ("ready", chosen, chosen):
            assert time.monotonic() < deadline, (chosen, session.describe(), s.states()[-3:])
            await session.process(frame_of())
            await asyncio.sleep(0.005)
        assert session.describe()["pipeline_loading"] is None
        for name in ("a", "b"):
            assert models[name].loads <= 1  # type: ignore[attr-defined]
            assert engine.models.loads_started.get(name, 0) <= 1
    finally:
        await session.close()
        await engine.close()
