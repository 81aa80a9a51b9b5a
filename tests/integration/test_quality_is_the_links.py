"""The quality level is the link's: while the link is not connected (reconnecting after
the worker died, then failed), neither the status nor /metrics carries a quality level,
in any status read along the way. Real studio and worker processes on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal

import httpx
import pytest

from tests.helpers import Services, get_status, wait_until
from tether.tools.probe import FrameSink, NumberedSource, StudioClient

pytestmark = pytest.mark.timeout(120)


def _metric_state(metrics: str) -> str | None:
    match = re.search(r'^tether_link_state\{state="(\w+)"\} 1\.0$', metrics, re.MULTILINE)
    return None if match is None else match.group(1)


def _metric_quality(metrics: str) -> bool:
    """Whether this scrape carries a quality level or a limiting factor."""
    return bool(re.search(r"^tether_link_quality_(level|limited_by)\b", metrics, re.MULTILINE))


class Watch:
    """Reads the status and /metrics over and over, keeping each (state, has quality)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.statuses: list[tuple[str, dict | None]] = []
        self.scrapes: list[tuple[str | None, bool]] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as http:
            while True:
                status = (await http.get("/api/v1/cloud/status")).json()
                self.statuses.append((status["state"], status["quality"]))
                metrics = (await http.get("/metrics")).text
                self.scrapes.append((_metric_state(metrics), _metric_quality(metrics)))
                await asyncio.sleep(0.02)  # the pace of the reads, not a wait

    def __enter__(self) -> Watch:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def test_no_quality_level_while_the_link_is_down(services: Services) -> None:
    worker = services.worker()
    studio = services.studio(worker, TETHER_RECONNECT_DELAYS="0,0.5,0.5")
    source = NumberedSource(256, 256, fps=30)
    client = StudioClient(studio.url, source, FrameSink(source=source, keep_rgb=False))
    await client.start({"pipeline": "passthrough"})
    try:

        async def graded() -> bool:
            status = await get_status(studio)
            return status["state"] == "connected" and status["quality"] is not None

        await wait_until(graded, 30, "a quality level while connected")
        with Watch(studio.url) as watch:
            await wait_until(lambda: len(watch.scrapes) > 3, 10, "reads while connected")
            worker.stop(signal.SIGKILL)
            await wait_until(
                lambda: any(s == "reconnecting" for s, _ in watch.statuses), 15, "reconnecting"
            )
            await wait_until(
                lambda: watch.statuses[-1][0] == "failed", 30, "failed once the tries ran out"
            )
            await wait_until(lambda: watch.scrapes[-1][0] == "failed", 10, "/metrics: failed")
            await watch.stop()
    finally:
        await client.close()
    assert watch.statuses[0] == ("connected", watch.statuses[0][1]) and watch.statuses[0][1]
    assert watch.scrapes[0] == ("connected", True)
    down = [(s, q) for s, q in watch.statuses if s != "connected"]
    assert {s for s, _ in down} >= {"reconnecting", "failed"}, down
    assert all(q is None for _, q in down), [x for x in down if x[1] is not None]
    scraped_down = [(s, q) for s, q in watch.scrapes if s != "connected"]
    assert scraped_down and not any(q for _, q in scraped_down), scraped_down
