"""Probing for the worker's return: overlapping probes, in virtual time, and the TCP
probe itself on loopback."""

from __future__ import annotations

import asyncio
import socket

from tether.clock import VirtualClock
from tether.studio.link.health import port_answers
from tether.studio.link.probing import until_answered


async def test_a_slow_probe_does_not_hold_back_the_next() -> None:
    clock = VirtualClock()
    started: list[float] = []
    path_up_at = clock.now() + 1.0

    async def probe() -> bool:
        began = clock.now()
        started.append(began)
        await clock.sleep(1.0)  # a SYN into a blackhole: waits out its timeout
        return began >= path_up_at

    task = asyncio.create_task(until_answered(probe, clock, 0.25, clock.now() + 10))
    await clock.advance(1.0)
    assert len(started) >= 3  # probes overlap: one every 0.25 s, not one per second
    await clock.advance(1.5)
    assert task.done() and task.result() is True
    assert min(t for t in started if t >= path_up_at) - path_up_at <= 0.25


async def test_no_answer_by_the_deadline() -> None:
    clock = VirtualClock()

    async def probe() -> bool:
        return False

    task = asyncio.create_task(until_answered(probe, clock, 0.25, clock.now() + 1.0))
    await clock.advance(1.1)
    assert task.done() and task.result() is False


async def test_port_probe_on_loopback() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert await port_answers("127.0.0.1", port)
    # The port is closed now: refused. The path is up, though.
    assert not await port_answers("127.0.0.1", port)
    assert await port_answers("127.0.0.1", port, refused_counts=True)
