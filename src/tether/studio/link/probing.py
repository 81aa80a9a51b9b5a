"""Probing for the worker's return while the link is down: cheap checks (a TCP
connect to the worker's port) at a steady interval, overlapping, so that one waiting
out its timeout on a dead path does not hold back the next: the first probe after
the path returns gets through. Time comes from a Clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from tether.clock import Clock
from tether.tasks import TaskOwner
from tether.timing import MAX_PROBES, PROBE_TICK_S, PROBE_WANTED_CHECK_S


class Probed(Protocol):
    async def probe(self) -> bool: ...

    def wanted(self) -> bool: ...


async def until_answered(
    probe: Callable[[], Awaitable[bool]], clock: Clock, interval: float, deadline: float
) -> bool:
    """Call ``probe`` every ``interval`` until one says the worker answers (True) or
    ``deadline`` passes (False). The first probe goes after one interval (or at the
    deadline, if sooner)."""
    found = asyncio.Event()

    async def probe_once() -> None:
        if await probe():
            found.set()

    probes = TaskOwner("probes")
    next_probe = clock.now() + min(interval, deadline - clock.now())
    try:
        while not found.is_set():
            now = clock.now()
            if now >= deadline:
                return False
            if now >= next_probe:
                next_probe = now + interval
                if len(probes) < MAX_PROBES:
                    probes.spawn(probe_once(), "probe")
            await clock.sleep(min(PROBE_TICK_S, deadline - now, next_probe - now))
        return True
    finally:
        await probes.close()


async def until_back(
    target: Probed,
    clock: Clock,
    interval: float,
    slow: Callable[[], float],
    fast_until: float,
) -> None:
    """A failed link's probing, while a stream wants the link; returns once the worker
    answers. Most outages are short: until ``fast_until`` probe every ``interval`` (as
    between tries), so the stream is back within a second of the path; after that
    every ``slow()`` seconds, a packet every few seconds however long the outage."""
    while True:
        now = clock.now()
        if not target.wanted():
            await clock.sleep(min(slow(), PROBE_WANTED_CHECK_S))
        elif now < fast_until:
            if await until_answered(
                target.probe, clock, interval, min(fast_until, now + PROBE_WANTED_CHECK_S)
            ):
                return
        else:
            await clock.sleep(slow())
            if target.wanted() and await target.probe():
                return
