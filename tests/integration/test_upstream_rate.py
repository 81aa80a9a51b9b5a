"""The upstream follows the model's pace, with real studio and worker processes and the
``slow`` plugin: a 150 ms/frame pipeline gets at most twice what it processes (counted
by the worker, not only reported by the studio), and when the pipeline gets faster
the rate follows, up to every frame."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.helpers import Service, Services, get_status, wait_until
from tests.integration.slow_pipeline import plugin_env
from tests.integration.test_pipeline_loading import set_parameters
from tether.tools.probe import FrameSink, NumberedSource, StudioClient

pytestmark = pytest.mark.timeout(120)


async def worker_frames_in(worker: Service) -> int:
    async with httpx.AsyncClient(timeout=5) as http:
        headers = {"Authorization": f"Bearer {worker.token}"}
        answer = await http.get(f"{worker.url}/api/v1/sessions", headers=headers)
    sessions = [s for s in answer.json()["sessions"] if s["state"] == "active"]
    assert len(sessions) == 1, sessions
    return int(sessions[0]["frames_in"])


async def worker_input_fps(worker: Service, seconds: float) -> float:
    """The frames a second the worker received, counted by the worker."""
    start, t0 = await worker_frames_in(worker), time.monotonic()
    await asyncio.sleep(seconds)  # a measuring window: counting over fixed time is the point
    return (await worker_frames_in(worker) - start) / (time.monotonic() - t0)


async def test_the_upstream_follows_a_slow_pipelines_pace(
    services: Services, tmp_path: Any
) -> None:
    worker = services.worker(**plugin_env(tmp_path / "plugin"))
    studio = services.studio(worker)
    source = NumberedSource(256, 256, fps=30, scene="camera")
    sink = FrameSink(source=source, keep_rgb=False)
    client = StudioClient(studio.url, source, sink)
    try:
        await client.start({"pipeline": "slow", "delay_ms": 150})
        await wait_until(lambda: sink.frames >= 10, 30, "processed frames")

        async def throttled() -> dict[str, Any] | None:
            status = await get_status(studio)
            assert status["state"] == "connected", status["error"]
            stats = status["stats"]
            return status if stats["upstream_fps_limit"] and stats["worker_ms"] else None

        status = await wait_until(throttled, 20, "the upstream to be throttled", every_s=0.2)
        pipeline_fps = 1000.0 / status["stats"]["worker_ms"]  # about 6.7
        assert status["stats"]["upstream_fps_limit"] <= 2 * pipeline_fps, status["stats"]
        received = await worker_input_fps(worker, 4.0)
        assert received <= 2 * pipeline_fps, (received, pipeline_fps)
        assert received >= 0.5 * pipeline_fps, (received, pipeline_fps)  # still fed
        status = await get_status(studio)
        assert status["stats"]["upstream_fps"] <= 2 * pipeline_fps, status["stats"]
        assert status["stats"]["fps_in"] > 20  # the client still sends its 30
        frames = sink.frames
        await wait_until(lambda: sink.frames >= frames + 10, 10, "frames keep coming")

        # Faster (20 ms a frame: up to 50 a second): every frame goes again.
        await set_parameters(studio, {"delay_ms": 20})

        async def lifted() -> dict[str, Any] | None:
            status = await get_status(studio)
            stats = status["stats"]
            fast = stats["worker_ms"] is not None and stats["worker_ms"] < 60
            return status if fast and stats["upstream_fps_limit"] is None else None

        await wait_until(lifted, 20, "the throttle to lift", every_s=0.2)
        received = await worker_input_fps(worker, 3.0)
        assert received >= 20, received
        status = await get_status(studio)
        assert status["state"] == "connected"
        assert status["stats"]["reconnects"] == 0
    finally:
        await client.close()
