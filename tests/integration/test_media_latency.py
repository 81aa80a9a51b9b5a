"""The media round trip's latency and the worker's time per frame, measured from the
frames between real studio and worker processes: they track what really happens
when the worker gets slower."""

from __future__ import annotations

import statistics
from typing import Any

import httpx
import pytest

from tests.helpers import Services, get_status, wait_until
from tests.integration.slow_pipeline import plugin_env
from tests.integration.test_cli import tether
from tether.tools.probe import FrameSink, NumberedSource, StudioClient

pytestmark = pytest.mark.timeout(120)

DELAY_MS = 200


async def stats(studio: Any) -> dict[str, Any]:
    return (await get_status(studio))["stats"]


async def set_delay(studio: Any, delay_ms: int) -> None:
    async with httpx.AsyncClient(base_url=studio.url, timeout=10) as http:
        response = await http.post("/api/v1/parameters", json={"delay_ms": delay_ms})
        assert response.status_code == 200, response.text


async def _quality_names_the_pipeline(studio: Any) -> dict[str, Any] | None:
    quality = (await get_status(studio))["quality"]
    return quality if quality and quality["factor"] == "pipeline" else None


async def settled(studio: Any, what: str, check: Any) -> dict[str, Any]:
    """Stats once ``check(stats)`` holds on three polls in a row (the window moved on)."""
    streak: list[dict[str, Any]] = []

    async def holds() -> bool:
        current = await stats(studio)
        if current["media_latency_ms"] is not None and check(current):
            streak.append(current)
        else:
            streak.clear()
        return len(streak) >= 3

    await wait_until(holds, 30, what, every_s=0.3)
    return streak[-1]


@pytest.mark.parametrize("forward", [True, False], ids=["forwarding", "decoding"])
async def test_latency_is_measured_from_the_frames_and_tracks_a_slower_worker(
    services: Services, tmp_path: Any, forward: bool
) -> None:
    worker = services.worker(**plugin_env(tmp_path / "plugin"))
    studio = services.studio(worker, TETHER_FORWARD_VIDEO=str(forward).lower())
    source = NumberedSource(256, 256, fps=30)
    sink = FrameSink(source=source)
    client = StudioClient(studio.url, source, sink)
    try:
        await client.start({"pipeline": "slow", "delay_ms": 0})
        await wait_until(lambda: sink.frames >= 30, 30, "processed frames")
        fast = await settled(studio, "a measured latency", lambda s: s["worker_ms"] is not None)
        assert 0 < fast["media_latency_ms"] < 500, fast
        assert fast["worker_ms"] < 50, fast
        # Part of the client's own glass to glass (read from the frame numbers).
        start = len(sink.latencies_ms)
        await wait_until(lambda: len(sink.latencies_ms) >= start + 20, 20, "frames back")
        glass = statistics.median(sink.latencies_ms[start:])
        assert fast["media_latency_ms"] < glass + 50, (fast, glass)

        await set_delay(studio, DELAY_MS)
        slow = await settled(
            studio,
            "the latency to rise with the worker's delay",
            lambda s: s["worker_ms"] >= DELAY_MS * 0.9,
        )
        added = slow["media_latency_ms"] - fast["media_latency_ms"]
        # Up by the pipeline's time, and at most a few frames more of queueing.
        assert slow["media_latency_ms"] > DELAY_MS, (fast, slow)
        assert DELAY_MS * 0.6 < added < DELAY_MS + 150, (fast, slow)
        assert DELAY_MS * 0.9 <= slow["worker_ms"] < DELAY_MS * 1.5, slow
        # The link's quality says so: the model caps the frame rate, the link is fine.
        quality = await wait_until(
            lambda: _quality_names_the_pipeline(studio), 10, "quality to name it", every_s=0.3
        )
        assert quality["level"] == "fair", quality
        # `tether status` shows both.
        shown = tether("status", "--studio", studio.url)
        assert shown.returncode == 0, shown.stderr
        assert "media round trip / worker" in shown.stdout and " ms / 2" in shown.stdout

        # And down again when the worker is fast again.
        await set_delay(studio, 0)
        await settled(
            studio,
            "the latency to fall back",
            lambda s: s["worker_ms"] < 50 and s["media_latency_ms"] < DELAY_MS / 2,
        )
    finally:
        await client.close()
