"""A studio with a fleet: it moves a live stream when its worker dies, drains or is
busy, with the parameters intact. Real workers, a real studio, a real client."""

from __future__ import annotations

import signal
from contextlib import asynccontextmanager
from typing import Any

import httpx
import numpy as np
import pytest

from tests.helpers import Service, Services, wait_until
from tether.tools.probe import FrameSink, NumberedSource, StudioClient, WorkerClient
from tether.tools.processes import free_port

pytestmark = pytest.mark.timeout(120)

TOKEN = "fleet-token"


def fleet_studio(services: Services, workers: list[str], **env: str) -> Service:
    port = free_port()
    args = ["studio", "--port", str(port), "--log-level", "info"]
    for url in workers:
        args += ["--worker", url]
    env_vars = {"TETHER_WORKER_TOKEN": TOKEN, "TETHER_DEBUG_ENDPOINTS": "1", **env}
    return services._launch("studio", args, port, env_vars, TOKEN)


class Client:
    def __init__(self, studio: Service) -> None:
        self.studio = studio
        self.source = NumberedSource(192, 192, fps=30)
        self.sink = FrameSink(source=self.source)
        self.client = StudioClient(studio.url, self.source, self.sink)
        self.http = httpx.AsyncClient(base_url=studio.url, timeout=10)

    async def status(self) -> dict[str, Any]:
        return (await self.http.get("/api/v1/cloud/status")).json()

    async def until(self, check, deadline_s: float, what: str) -> dict[str, Any]:
        async def probe():
            status = await self.status()
            return status if check(status) else None

        return await wait_until(probe, deadline_s, what, every_s=0.05)

    async def set_params(self, **changes: Any) -> int:
        r = await self.http.post("/api/v1/parameters", json=changes)
        assert r.status_code == 200, r.text
        return r.json()["version"]

    async def gray_frames_flow(self, count: int = 10, deadline_s: float = 10) -> None:
        start, start_id = self.sink.frames, self.source.count
        await wait_until(
            lambda: self.sink.frames >= start + count and (self.sink.last_id or 0) > start_id,
            deadline_s,
            "processed frames flowing",
        )
        body = self.sink.last_rgb[40:].astype(int)
        assert np.abs(body[:, :, 0] - body[:, :, 2]).mean() < 12, "frames are not processed"


@asynccontextmanager
async def streaming(studio: Service):
    client = Client(studio)
    await client.until(lambda s: s["state"] == "connected", 20, "the studio connected")
    await client.client.start({"pipeline": "tint", "prompt": "green", "strength": 1.0})
    try:
        await client.until(
            lambda s: s["webrtc_connected"] and s["params_acked_version"] == s["params_version"],
            20,
            "media up",
        )
        await client.gray_frames_flow()
        yield client
    finally:
        await client.client.close()
        await client.http.aclose()


async def applied(worker: Service) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        r = await http.get(
            f"{worker.url}/api/v1/sessions", headers={"Authorization": f"Bearer {TOKEN}"}
        )
    live = [s for s in r.json()["sessions"] if s["state"] == "active"]
    assert len(live) == 1, r.json()
    return live[0]


def by_url(workers: list[Service], url: str) -> Service:
    return next(w for w in workers if w.url == url)


async def test_a_dead_worker_is_left_for_another_with_nothing_lost(services: Services) -> None:
    workers = [services.worker(token=TOKEN) for _ in range(2)]
    studio = fleet_studio(services, [w.url for w in workers])
    async with streaming(studio) as c:
        status = await c.status()
        active = by_url(workers, status["worker_url"])
        other = next(w for w in workers if w is not active)
        assert {w["url"]: w["state"] for w in status["workers"]}[active.url] == "active"
        active.stop(signal.SIGKILL)  # gone for good: no restart
        version = await c.set_params(prompt="green while moving")
        status = await c.until(
            lambda s: s["state"] == "connected" and s["worker_url"] == other.url,
            15,
            "the link on the other worker",
        )
        await c.gray_frames_flow()
        moved = [e for e in status["events"] if e["kind"] == "moved"]
        assert moved and moved[-1]["from"] == active.url and moved[-1]["to"] == other.url
        assert "gone" in moved[-1]["reason"]
        await c.until(lambda s: s["params_acked_version"] == version, 10, "the ack")
        session = await applied(other)
        assert session["parameters"]["prompt"] == "green while moving"
        assert session["parameters_version"] == version


async def test_a_draining_worker_hands_over_before_it_goes(services: Services) -> None:
    workers = [services.worker(token=TOKEN, TETHER_DRAIN_S="20") for _ in range(2)]
    studio = fleet_studio(services, [w.url for w in workers])
    async with streaming(studio) as c:
        version = await c.set_params(prompt="green, keep me")
        await c.until(lambda s: s["params_acked_version"] == version, 10, "the ack")
        status = await c.status()
        active = by_url(workers, status["worker_url"])
        other = next(w for w in workers if w is not active)
        since = len(c.sink.received_at)
        active.proc.send_signal(signal.SIGTERM)
        status = await c.until(lambda s: s["worker_url"] == other.url, 15, "the handover")
        await wait_until(lambda: active.proc.poll() is not None, 10, "the old worker to exit")
        await c.gray_frames_flow()
        assert status["state"] == "connected"
        assert all(e["kind"] != "reconnecting" for e in status["events"][-3:])
        moved = [e for e in status["events"] if e["kind"] == "moved"][-1]
        assert moved["reason"] == "the worker is draining" and moved["to"] == other.url
        times = c.sink.received_at[since:]
        gaps = [(b - a, a - times[0]) for a, b in zip(times, times[1:], strict=False)]
        longest, at = max(gaps)
        assert longest < 1.0, f"a freeze of {longest:.3f}s, {at:.2f}s after SIGTERM"
        session = await applied(other)
        assert session["parameters"]["prompt"] == "green, keep me"


async def test_all_busy_is_said_plainly_and_a_freed_slot_is_taken(services: Services) -> None:
    worker = services.worker(token=TOKEN)
    dead = f"http://127.0.0.1:{free_port()}"
    studio = fleet_studio(services, [worker.url, dead], TETHER_RECONNECT_DELAYS="0,0.5,1")
    source = NumberedSource(96, 96, fps=15)
    squatter = WorkerClient(worker.url, TOKEN, source, FrameSink(source=source))
    await squatter.start({"pipeline": "passthrough"})
    c = Client(studio)
    try:
        await c.until(lambda s: s["state"] == "connected", 20, "signaling to the worker")
        await c.client.start({"pipeline": "tint", "prompt": "green", "strength": 1.0})
        status = await c.until(
            lambda s: "no worker has room" in (s["error"] or "") or "busy" in (s["error"] or ""),
            20,
            "the plain-words busy error",
        )
        states = {w["url"]: w["state"] for w in status["workers"]}
        assert states[dead] == "unreachable"
        await squatter.close()
        await c.until(lambda s: s["state"] == "connected" and s["webrtc_connected"], 15, "in")
        await c.gray_frames_flow()
    finally:
        await squatter.close()
        await c.client.close()
        await c.http.aclose()
