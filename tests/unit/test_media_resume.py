"""After an outage the peer the link had may come back by itself: a try whose socket
is back gives it a moment (pinged at once) before a new peer replaces it. Virtual time."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.unit.test_link_health import FakePeer
from tether.clock import VirtualClock
from tether.media.frames import FrameSlot
from tether.studio.link.health import Health
from tether.studio.link.media_path import MediaPath
from tether.timing import RESUME_GRACE_S, Timing


class PingedPeer(FakePeer):
    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.pings: list[float] = []

    def send_ping(self, seq: int, t: float) -> bool:
        self.pings.append(t)
        return True


def make() -> tuple[VirtualClock, MediaPath, PingedPeer]:
    clock = VirtualClock()
    health = Health(Timing(), clock, FrameSlot(), FrameSlot())
    path = MediaPath(
        health, None, FrameSlot(), FrameSlot(),  # type: ignore[arg-type]
        on_lost=lambda _: None, on_stage=lambda _: None, on_change=lambda: None,
        armed=lambda: True,
    )  # fmt: skip
    peer = PingedPeer(clock)
    peer.connected_at = clock.now()
    clock._now += 10.0  # a 10 s outage: nothing heard since
    path.peer = peer  # type: ignore[assignment]
    return clock, path, peer


async def test_a_peer_that_answers_within_the_grace_is_kept() -> None:
    clock, path, peer = make()
    assert not path.healthy()
    waiting: asyncio.Task[Any] = asyncio.create_task(path.await_resume())
    await clock.advance(0.05)
    assert peer.pings == [clock.now() - 0.05]  # pinged at once, not at the next beat
    peer.last_pong_at = peer.heard_at = clock.now()  # the pong is back
    await clock.advance(0.05)
    assert waiting.done() and waiting.result() is True


async def test_a_peer_that_stays_silent_costs_only_the_grace() -> None:
    clock, path, _ = make()
    started = clock.now()
    waiting = asyncio.create_task(path.await_resume())
    await clock.advance(RESUME_GRACE_S + 0.1)
    assert waiting.done() and waiting.result() is False
    assert clock.now() - started <= RESUME_GRACE_S + 0.1


async def test_a_failed_or_closed_peer_gets_no_grace() -> None:
    clock, path, peer = make()
    peer.state = "failed"  # its ICE gave up (a long outage)
    assert await path.await_resume() is False
    path.peer = None
    assert await path.await_resume() is False
