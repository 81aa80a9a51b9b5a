"""A closed studio leaves no task, peer connection or thread behind."""

from __future__ import annotations

import asyncio
import gc
import threading

import httpx
import pytest
import uvicorn
from aiortc import RTCPeerConnection

from tests.helpers import Services, wait_until
from tether.config import StudioSettings
from tether.studio.app import create_studio_app
from tether.tools.probe import FrameSink, NumberedSource, StudioClient
from tether.tools.processes import free_port

pytestmark = pytest.mark.timeout(90)


def open_peer_connections() -> list[RTCPeerConnection]:
    gc.collect()
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, RTCPeerConnection) and o.connectionState != "closed"
    ]


async def test_closed_studio_leaves_nothing_behind(services: Services) -> None:
    worker = services.worker()
    threads_before = set(threading.enumerate())
    port = free_port()
    settings = StudioSettings(
        port=port, worker_url=worker.url, worker_token=worker.token, debug_endpoints=True
    )
    app = create_studio_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, 10, "studio started")
    url = f"http://127.0.0.1:{port}"
    source = NumberedSource(128, 128, fps=30)
    sink = FrameSink(source=source)
    client = StudioClient(url, source, sink)
    await client.start({"pipeline": "gray"})
    await wait_until(lambda: sink.frames >= 20, 20, "frames through the studio")

    async with httpx.AsyncClient(base_url=url) as http:
        # a drop mid-stream, so a reconnect has run, and an open event stream
        await http.post("/api/v1/cloud/debug/disconnect-webrtc")
        events = asyncio.create_task(_read_events(url))
        await wait_until(lambda: _state(http, "connected"), 10, "reconnected", every_s=0.05)
    await client.close()
    app.state.begin_shutdown()  # what the CLI's signal handler does
    server.should_exit = True
    await asyncio.wait_for(serving, 15)
    await asyncio.wait_for(events, 5)

    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert leftover == [], [t.get_name() for t in leftover]
    assert open_peer_connections() == []
    extra = [
        t for t in set(threading.enumerate()) - threads_before
        if t.is_alive() and not t.name.startswith("asyncio_")  # the loop's own executor
    ]  # fmt: skip
    assert extra == [], [t.name for t in extra]


async def _state(http: httpx.AsyncClient, state: str) -> bool:
    return (await http.get("/api/v1/cloud/status")).json()["state"] == state


async def _read_events(url: str) -> int:
    count = 0
    async with (
        httpx.AsyncClient() as http,
        http.stream("GET", f"{url}/api/v1/cloud/events", timeout=30) as response,
    ):
        async for line in response.aiter_lines():
            count += line.startswith("event: status")
    return count
