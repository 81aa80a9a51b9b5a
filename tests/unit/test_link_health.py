"""The link's health rules: heartbeat silence and the media watchdog, in virtual time."""

from __future__ import annotations

from tether.clock import VirtualClock
from tether.config import StudioSettings
from tether.media import FrameSlot
from tether.studio.link.worker_link import MEDIA_STALL_S, WorkerLink
from tether.studio.parameters import ParameterStore


class FakePeer:
    """Stands in for a WorkerPeer's observable state (no aiortc here)."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.state = "connected"
        self.channel_open = True
        self.started_at = clock.now()
        self.last_pong_at: float | None = None

    def silent_for(self) -> float:
        return self.clock.now() - (self.last_pong_at or self.started_at)


def make(**settings):
    clock = VirtualClock()
    link = WorkerLink(
        StudioSettings(**settings), FrameSlot(), FrameSlot(), ParameterStore(), clock=clock
    )
    peer = FakePeer(clock)
    link.peer = peer  # type: ignore[assignment]
    return clock, link, peer


def test_heartbeat_silence_makes_media_unhealthy() -> None:
    clock, link, peer = make()
    peer.last_pong_at = clock.now()
    assert link.media_healthy()
    clock._now += 1.4
    assert link.media_healthy()
    clock._now += 0.2  # 1.6 s without a pong > 1.5 s
    assert not link.media_healthy()


def test_watchdog_tells_a_stalled_worker_from_a_quiet_source() -> None:
    clock, link, peer = make()
    clock._now += 5
    peer.last_pong_at = clock.now()  # the heartbeat answers
    link.source.updated_at = clock.now()  # our frames flow...
    link.processed.updated_at = clock.now() - MEDIA_STALL_S - 0.1  # ...the worker's do not
    assert link._stalled() and not link.media_healthy()
    link.source.updated_at = clock.now() - 2.0  # we stopped sending too: not a stall
    assert not link._stalled() and link.media_healthy()


def test_heartbeat_off_leaves_only_the_peer_state() -> None:
    clock, link, peer = make(heartbeat_timeout_s=0)
    clock._now += 60
    assert link.media_healthy()
    peer.state = "closed"
    assert not link.media_healthy()
