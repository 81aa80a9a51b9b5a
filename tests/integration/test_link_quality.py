"""The link's quality measures with real studio and worker processes on loopback: the
media path's loss and bandwidth in the status and in /metrics."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.helpers import Services, get_status, wait_until
from tether.tools.probe import FrameSink, NumberedSource, StudioClient

pytestmark = pytest.mark.timeout(90)


def gauge(metrics: str, name: str) -> float | None:
    match = re.search(rf"^tether_{name} (\S+)$", metrics, re.MULTILINE)
    return None if match is None else float(match.group(1))


async def test_loss_and_bandwidth_are_measured_and_exported(services: Services) -> None:
    worker = services.worker()
    studio = services.studio(worker)
    source = NumberedSource(512, 512, fps=30)
    sink = FrameSink(source=source)
    client = StudioClient(studio.url, source, sink)
    await client.start({"pipeline": "tint"})
    try:

        async def measured() -> dict | None:
            status = await get_status(studio)
            stats = status["stats"]
            ready = stats["media_loss"] is not None and stats["bandwidth_kbps"] is not None
            return status if ready else None

        # aiortc's bitrate estimators settle a few seconds after the media starts.
        status = await wait_until(measured, 30, "media loss and bandwidth in the status")
        stats = status["stats"]
        assert status["state"] == "connected" and status["quality"] is not None
        assert stats["media_loss"] == 0.0  # loopback loses nothing
        assert 50 < stats["bandwidth_kbps"] < 100_000
        assert isinstance(stats["bandwidth_limited"], bool)
        async with httpx.AsyncClient(base_url=studio.url) as http:
            metrics = (await http.get("/metrics")).text
        assert gauge(metrics, "link_media_loss_ratio") == 0.0
        assert (gauge(metrics, "link_bandwidth_bytes_per_second") or 0) > 50_000 / 8
        assert 0 < (gauge(metrics, "link_rtt_seconds") or 0) < 1
        assert 0 < (gauge(metrics, "link_fps_ratio") or 0) <= 1
        assert "# TYPE tether_link_media_loss_ratio gauge" in metrics
    finally:
        await client.close()
    # No stream, no media path: nothing measured, nothing exported.
    await wait_until(lambda: _unmeasured(studio), 15, "the measures gone once the stream has ended")
    async with httpx.AsyncClient(base_url=studio.url) as http:
        metrics = (await http.get("/metrics")).text
    assert gauge(metrics, "link_media_loss_ratio") is None
    assert gauge(metrics, "link_bandwidth_bytes_per_second") is None


async def _unmeasured(studio) -> bool:
    status = await get_status(studio)
    stats = status["stats"]
    return (
        not status["streaming"]
        and stats["media_loss"] is None
        and stats["bandwidth_kbps"] is None
        and status["quality"] is None
    )
