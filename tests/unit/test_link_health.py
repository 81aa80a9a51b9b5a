"""The link's health rules: heartbeat silence and the media watchdog, in virtual time."""

from __future__ import annotations

from tether.clock import VirtualClock
from tether.media.frames import FrameSlot
from tether.studio.link.health import Health
from tether.timing import MEDIA_STALL_S, Timing


class FakePeer:
    """Stands in for a WorkerPeer's observable state (no aiortc here)."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.state = "connected"
        self.channel_open = True
        self.started_at = clock.now()
        self.connected_at: float | None = None
        self.last_pong_at: float | None = None
        self.heard_at: float | None = None
        self.worker_output_at: float | None = None
        self.worker_input_at: float | None = None
        self.pipeline_loading = False

    def last_heard_at(self) -> float | None:
        return self.heard_at

    def send_ping(self, seq: int, t: float) -> bool:
        return True


def make(**timing):
    clock = VirtualClock()
    health = Health(Timing(**timing), clock, FrameSlot(), FrameSlot())
    return clock, health, FakePeer(clock)


def test_heartbeat_silence_makes_media_unhealthy() -> None:
    clock, health, peer = make()
    peer.last_pong_at = clock.now()
    assert health.media_healthy(peer)
    clock._now += 1.4
    assert health.media_healthy(peer)
    clock._now += 0.2  # 1.6 s without a pong > 1.5 s
    assert not health.media_healthy(peer)
    assert "no answer" in health.verdict(peer)


def test_silence_counts_from_the_moment_the_peer_connected() -> None:
    clock, health, peer = make()
    clock._now += 8.0  # a slow (re)connect: 8 s from creation to connected
    peer.connected_at = clock.now()
    clock._now += 0.1
    assert health.media_healthy(peer) and health.verdict(peer) is None


def test_a_processed_frame_counts_as_life_when_pongs_are_lost() -> None:
    clock, health, peer = make()
    peer.connected_at = clock.now()
    clock._now += 5
    peer.last_pong_at = clock.now() - 3  # pongs lost on a lossy path...
    health.processed.updated_at = clock.now() - 0.2  # ...but the worker's frames arrive
    assert health.media_healthy(peer)


def test_watchdog_tells_a_stalled_worker_from_a_quiet_source() -> None:
    clock, health, peer = make()
    clock._now += 10
    peer.last_pong_at = clock.now()  # the heartbeat answers
    health.source.updated_at = clock.now()  # our frames flow...
    health.processed.updated_at = clock.now() - MEDIA_STALL_S - 0.1  # ...the worker's do not
    assert health.stalled(peer) and not health.media_healthy(peer)
    assert "stopped sending frames" in health.verdict(peer)
    health.source.updated_at = clock.now() - 2.0  # we stopped sending too: not a stall
    assert not health.stalled(peer) and health.media_healthy(peer)


def test_a_short_gap_in_the_worker_frames_is_not_a_stall() -> None:
    clock, health, peer = make()
    clock._now += 10
    peer.last_pong_at = clock.now()
    health.source.updated_at = clock.now()
    health.processed.updated_at = clock.now() - 2.5  # a lost key frame on a lossy path
    assert health.media_healthy(peer)
    assert not health.output_live(peer)  # the client sees the fallback meanwhile


def test_heartbeat_off_leaves_only_the_peer_state() -> None:
    clock, health, peer = make(heartbeat_timeout_s=0)
    clock._now += 60
    assert health.media_healthy(peer)
    peer.state = "closed"
    assert not health.media_healthy(peer)


def test_datagrams_from_the_worker_count_as_life_but_not_forever() -> None:
    from tether.timing import UNANSWERED_S

    clock, health, peer = make()
    peer.connected_at = peer.last_pong_at = clock.now()
    # A lossy link: pongs go missing for a while, but the worker's packets still come.
    for _ in range(int((UNANSWERED_S - 0.5) * 10)):
        clock._now += 0.1
        peer.heard_at = clock.now()
        assert health.verdict(peer) is None
    clock._now += 1.0  # it sends, but has not answered a ping for over UNANSWERED_S
    peer.heard_at = clock.now()
    assert "may not hear us" in health.verdict(peer)
    peer.last_pong_at = clock.now()
    assert health.verdict(peer) is None
    clock._now += 1.6  # and nothing at all: lost as fast as ever
    assert "no answer" in health.verdict(peer)


def test_frames_lost_on_a_congested_path_are_not_a_stuck_pipeline() -> None:
    clock, health, peer = make()
    peer.connected_at = clock.now()
    for _ in range(int(MEDIA_STALL_S * 10) + 10):  # ours flow, the worker's never arrive
        clock._now += 0.1
        health.source.updated_at = clock.now()
        peer.last_pong_at = peer.heard_at = clock.now()
        peer.worker_output_at = clock.now()  # but the worker says it puts frames out
    assert health.verdict(peer) is None
    assert not health.output_live(peer)  # the client sees the fallback meanwhile
    clock._now += MEDIA_STALL_S + 0.1
    health.source.updated_at = clock.now()
    peer.last_pong_at = peer.heard_at = clock.now()  # its output stopped growing: stuck
    assert "may be stuck" in health.verdict(peer)


def test_frames_starved_upstream_are_not_a_stuck_pipeline_for_a_while() -> None:
    from tether.timing import STARVED_STALL_S

    clock, health, peer = make()
    peer.connected_at = peer.worker_output_at = peer.worker_input_at = clock.now()
    health.processed.updated_at = clock.now()
    clock._now += MEDIA_STALL_S + 1  # nothing reaches the worker, nothing comes back
    health.source.updated_at = peer.last_pong_at = peer.heard_at = clock.now()
    assert health.verdict(peer) is None  # the path upstream is congested
    clock._now += STARVED_STALL_S
    health.source.updated_at = peer.last_pong_at = peer.heard_at = clock.now()
    assert "may be stuck" in health.verdict(peer)  # too long: try a new connection
    # Input arriving while the output stays still: the pipeline itself is stuck.
    clock._now += 1
    peer.worker_input_at = health.source.updated_at = peer.last_pong_at = clock.now()
    peer.heard_at = clock.now()
    assert "may be stuck" in health.verdict(peer)


def test_a_pipeline_that_loads_is_busy_not_stuck_but_its_silence_is_still_a_loss() -> None:
    clock, health, peer = make()
    peer.connected_at = peer.worker_output_at = peer.worker_input_at = clock.now()
    health.processed.updated_at = clock.now()
    peer.pipeline_loading = True  # the worker said so: its first frame loads a model
    for _ in range(50):  # a minute of our frames in, none out, heartbeats answered
        clock._now += 1.2
        health.source.updated_at = peer.last_pong_at = peer.heard_at = clock.now()
        peer.worker_input_at = clock.now()
        assert health.verdict(peer) is None
        assert health.media_healthy(peer) and not health.output_live(peer)  # the fallback
    # The loaded pipeline that then puts nothing out is stuck after all.
    peer.pipeline_loading = False
    assert "may be stuck" in health.verdict(peer)
    # And a loading worker whose heartbeat goes silent is lost: a dead path.
    peer.pipeline_loading = True
    clock._now += 2
    health.source.updated_at = clock.now()
    assert "no answer" in health.verdict(peer)


def test_pongs_lost_to_congestion_are_no_word_that_the_pipeline_stopped() -> None:
    """A congested path loses the worker's frames and its pongs alike: the last pong
    said the output grew, and nothing has said otherwise since. Not a stuck pipeline
    (a 250 kbit/s cap once reconnected for this); a pong that comes and says the
    output has not grown for MEDIA_STALL_S is."""
    clock, health, peer = make()
    peer.connected_at = clock.now()
    health.source.put(object())
    peer.last_pong_at = peer.worker_output_at = peer.worker_input_at = clock.now()
    for _ in range(60):  # 6 s: our frames flow, nothing comes back
        clock._now += 0.1
        health.source.put(object())
        peer.heard_at = clock.now()  # the odd datagram gets through
    assert health.worker_lag_s(peer) > MEDIA_STALL_S
    assert not health.stalled(peer)
    # It answers: its input grows, its output stopped 6 s ago.
    peer.last_pong_at = peer.worker_input_at = clock.now()
    assert health.stalled(peer)
