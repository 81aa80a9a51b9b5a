"""Real models, seen from the link, with real studio and worker processes: a model that
loads for seconds is a load (the link stays connected, the status says so), and a
model that takes 150 ms a frame is named as the limit, not the network."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.helpers import Services, get_status, wait_until
from tests.integration.slow_pipeline import plugin_env
from tests.integration.test_cli import tether
from tether.timing import MEDIA_STALL_S
from tether.tools.probe import FrameSink, NumberedSource, StudioClient

pytestmark = pytest.mark.timeout(120)

# Longer than the watchdog's stall: without the loading state it would be a lost link.
LOAD_MS = int((MEDIA_STALL_S + 2) * 1000)


async def set_parameters(studio: Any, parameters: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=studio.url, timeout=10) as http:
        response = await http.post("/api/v1/parameters", json=parameters)
        assert response.status_code == 200, response.text


async def test_a_switch_to_a_model_that_loads_keeps_the_link_and_says_loading(
    services: Services, tmp_path: Any
) -> None:
    worker = services.worker(**plugin_env(tmp_path / "plugin"))
    studio = services.studio(worker, TETHER_FALLBACK="passthrough")
    source = NumberedSource(256, 256, fps=30)
    sink = FrameSink(source=source)
    client = StudioClient(studio.url, source, sink)
    try:
        await client.start({"pipeline": "slow", "delay_ms": 0})
        await wait_until(lambda: sink.frames >= 30, 30, "processed frames")
        before = await get_status(studio)
        assert before["state"] == "connected"
        assert before["pipeline_state"]["state"] == "ready"

        await set_parameters(studio, {"pipeline": "slow_load", "load_ms": LOAD_MS})
        switched = time.monotonic()
        seen: list[dict[str, Any]] = []

        async def loading() -> dict[str, Any] | None:
            status = await get_status(studio)
            seen.append(status)
            state = status["pipeline_state"]
            return status if state and state["state"] == "loading" else None

        status = await wait_until(loading, 5, "the status to say loading", every_s=0.05)
        said_after = time.monotonic() - switched
        assert said_after < 1.0, said_after
        assert status["pipeline_state"]["name"] == "slow_load"
        assert status["pipeline_state"]["stage"] == "first frame"
        # `tether status` says it in words.
        shown = tether("status", "--studio", studio.url)
        assert shown.returncode == 0, shown.stderr
        assert "loading slow_load: first frame" in shown.stdout, shown.stdout

        async def ready() -> dict[str, Any] | None:
            status = await get_status(studio)
            seen.append(status)
            state = status["pipeline_state"]
            return status if state and state["state"] == "ready" else None

        done = await wait_until(ready, LOAD_MS / 1000 + 10, "the model to load", every_s=0.1)
        loaded_at = time.monotonic()
        assert done["pipeline_state"]["name"] == "slow_load"
        assert done["pipeline_state"]["elapsed_s"] >= LOAD_MS / 1000 * 0.9
        # While it loaded: the time so far counted up, the fallback showed, and the
        # quality blamed the model if anything.
        elapsed = [s["pipeline_state"]["elapsed_s"] for s in seen if _loading(s)]
        assert max(elapsed) >= LOAD_MS / 1000 - 1.5, elapsed
        assert any(s["fallback_active"] == "passthrough" for s in seen if _loading(s))
        for s in seen:
            assert s["state"] == "connected", s["error"]
            if _loading(s) and s["quality"] is not None and s["quality"]["level"] != "good":
                assert s["quality"] == {"level": "fair", "factor": "pipeline"}, s["quality"]

        # Processed frames come back after.
        count = sink.frames
        await wait_until(lambda: sink.frames >= count + 15, 10, "processed frames after the load")
        assert time.monotonic() - loaded_at < 5
        after = await get_status(studio)
        # The link never left `connected`: its whole history is the first connect.
        assert after["events"] == before["events"]
        assert [e["to"] for e in after["events"]] == ["connecting", "connected"], after["events"]
        assert after["state"] == "connected" and after["error"] is None
        assert after["stats"]["outages"] == 0 and after["stats"]["reconnects"] == 0
    finally:
        await client.close()


def _loading(status: dict[str, Any]) -> bool:
    state = status["pipeline_state"]
    return state is not None and state["state"] == "loading"


async def test_a_slow_model_is_named_pipeline_never_a_loss(
    services: Services, tmp_path: Any
) -> None:
    worker = services.worker(**plugin_env(tmp_path / "plugin"))
    studio = services.studio(worker)
    source = NumberedSource(256, 256, fps=30)
    sink = FrameSink(source=source)
    client = StudioClient(studio.url, source, sink)
    try:
        await client.start({"pipeline": "slow", "delay_ms": 150})
        await wait_until(lambda: sink.frames >= 10, 30, "processed frames")
        streak: list[dict[str, Any]] = []

        async def named() -> bool:
            status = await get_status(studio)
            assert status["state"] == "connected", status["error"]
            quality = status["quality"]
            if quality is not None and quality["factor"] == "pipeline":
                streak.append(status)
            else:
                streak.clear()
            return len(streak) >= 5

        await wait_until(named, 20, "the quality to name the pipeline", every_s=0.3)
        status = streak[-1]
        assert status["quality"] == {"level": "fair", "factor": "pipeline"}
        assert 130 <= status["stats"]["worker_ms"] < 250, status["stats"]
        assert status["stats"]["fps_out"] < 10, status["stats"]
        # Ten seconds more at the model's pace: no loss, no reconnect, never bad.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = await get_status(studio)
            assert status["state"] == "connected", status["error"]
            assert status["quality"] == {"level": "fair", "factor": "pipeline"}, status
            await asyncio.sleep(0.3)  # watching an invariant: a fixed pace is the point
        assert status["stats"]["outages"] == 0 and status["stats"]["reconnects"] == 0
        assert [e["to"] for e in status["events"]] == ["connecting", "connected"], status["events"]
    finally:
        await client.close()


async def test_tether_run_waits_for_a_model_that_loads(services: Services, tmp_path: Any) -> None:
    from tests.integration.test_run_exact import make_numbered_clip
    from tether.tools.runner import run_file

    worker = services.worker(**plugin_env(tmp_path / "plugin"))
    clip, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    make_numbered_clip(clip, 10)
    # The first frame takes 2.5 s, longer than a frame may: the worker says it loads.
    result = await run_file(
        clip,
        out,
        {"pipeline": "slow_load", "load_ms": 2500},
        worker_url=worker.url,
        token=worker.token,
        frame_timeout_s=1.0,
    )
    assert (result.frames_in, result.frames_out, result.dropped) == (10, 10, 0)
    assert result.seconds >= 2.5
