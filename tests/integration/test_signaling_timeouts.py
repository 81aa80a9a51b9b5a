"""The signaling socket notices a silent worker, and lets go of it, in about a second
or two (websockets' defaults would take 10 s each), and a request that dies with the
socket leaves no 'Future exception was never retrieved' behind."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time

import pytest

from tests.helpers import Services
from tether import protocol
from tether.client.signaling import SignalingClient, SignalingError

pytestmark = pytest.mark.timeout(60)


async def test_silent_worker_is_dropped_fast_and_quietly(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    worker = services.worker()
    client = SignalingClient(worker.url, worker.token)
    await client.connect(5)
    assert client.is_open
    os.kill(worker.pid, signal.SIGSTOP)  # alive but silent, as behind a blackhole
    try:
        caplog.set_level(logging.ERROR)
        stopped = time.monotonic()
        ping = protocol.Ping(type="ping", t=0)
        pending = asyncio.ensure_future(client.request(ping, protocol.Pong, wait_s=30))
        with pytest.raises(SignalingError):
            await pending
        assert time.monotonic() - stopped < 5.0  # keepalive 1 s + 2 s + close 1 s
        assert not client.is_open
        started = time.monotonic()
        await client.close()
        assert time.monotonic() - started < 1.5
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    del pending
    # A future dropped with its exception unread reports it from its finalizer, which
    # gc.collect() runs here and now: no waiting needed before looking.
    gc.collect()
    assert "never retrieved" not in caplog.text
    # The control: a future dropped the same way shows at once.
    control = asyncio.get_running_loop().create_future()
    control.set_exception(SignalingError("control"))
    del control
    gc.collect()
    assert "never retrieved" in caplog.text


async def test_open_times_out_in_two_seconds_not_the_whole_wait(services: Services) -> None:
    worker = services.worker()
    os.kill(worker.pid, signal.SIGSTOP)  # the kernel still accepts; nobody answers
    try:
        client = SignalingClient(worker.url, worker.token)
        started = time.monotonic()
        with pytest.raises(SignalingError, match="within 2s"):
            await client.connect(10)
        assert time.monotonic() - started < 3.0
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    client = SignalingClient(worker.url, worker.token)
    assert (await client.connect(10)).type == "ready"  # and a later try works
    await client.close()
