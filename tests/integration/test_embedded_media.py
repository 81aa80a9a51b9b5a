"""A program that embeds the studio and the worker (uvicorn in its own process, no CLI)
gets the aiortc adapter the CLI's processes get, for as long as the apps run, and real
peers stream through them."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aioice.ice
import aiortc.codecs.vpx as vpx
import aiortc.rtcrtpreceiver as receiver
import aiortc.rtcrtpsender as sender
import pytest
import uvicorn
from fastapi import FastAPI

from tests.helpers import aiortc_globals, wait_until
from tether.config import StudioSettings, WorkerSettings
from tether.rtc.adapter import MediaAdapter, active
from tether.rtc.eager_release import EagerJitterBuffer, PacedNackGenerator
from tether.rtc.encoder import BITRATE_FLOOR_BPS, FittedVp8Encoder, fitted_get_encoder
from tether.rtc.ice import loopback_host_addresses
from tether.studio.app import create_studio_app
from tether.tools.probe import FrameSink, NumberedSource, StudioClient
from tether.tools.processes import free_port
from tether.worker.app import create_worker_app

pytestmark = pytest.mark.timeout(90)


@asynccontextmanager
async def served(app: FastAPI, port: int) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started, 10, "server started")
        yield f"http://127.0.0.1:{port}"
    finally:
        begin_shutdown = getattr(app.state, "begin_shutdown", None)
        if begin_shutdown is not None:
            begin_shutdown()
        server.should_exit = True
        await asyncio.wait_for(serving, 15)


async def test_embedded_apps_install_the_adapter_while_they_run_and_stream() -> None:
    before = aiortc_globals()
    token = secrets.token_urlsafe(12)
    worker_port, studio_port = free_port(), free_port()
    worker_app = create_worker_app(WorkerSettings(port=worker_port, token=token))
    async with served(worker_app, worker_port) as worker_url:
        # What `tether worker` and `tether studio` on loopback install.
        assert active() == MediaAdapter(ice_hosts="loopback")
        studio_app = create_studio_app(
            StudioSettings(port=studio_port, worker_url=worker_url, worker_token=token)
        )
        async with served(studio_app, studio_port) as studio_url:
            assert active() == MediaAdapter(ice_hosts="loopback")
            assert receiver.JitterBuffer is EagerJitterBuffer
            assert receiver.NackGenerator is PacedNackGenerator
            assert sender.get_encoder is fitted_get_encoder
            assert vpx.MIN_BITRATE == BITRATE_FLOOR_BPS
            assert aioice.ice.get_host_addresses is loopback_host_addresses
            source = NumberedSource(256, 256, fps=30)
            sink = FrameSink(source=source, keep_rgb=False)
            client = StudioClient(studio_url, source, sink)
            try:
                await client.start({"pipeline": "passthrough"})
                await wait_until(lambda: sink.frames >= 30, 30, "30 processed frames")
                # The client's own peer, made in this process, encodes with the fitted
                # encoder and releases eagerly: the adapter reached real peers.
                video = client.pc.getSenders()[0]
                assert isinstance(video._RTCRtpSender__encoder, FittedVp8Encoder)
                incoming = client.pc.getReceivers()[0]
                assert isinstance(incoming._RTCRtpReceiver__jitter_buffer, EagerJitterBuffer)
            finally:
                await client.close()
        # The worker still runs: its adapter (the same settings) still applies.
        assert active() == MediaAdapter(ice_hosts="loopback")
        assert receiver.JitterBuffer is EagerJitterBuffer
    assert aiortc_globals() == before
