"""The media path's loss and bandwidth: window deltas of lifetime counters, in virtual
time, from fake readings (the real stats are pinned in test_rtc_adapter)."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from tether.clock import VirtualClock
from tether.studio.link.media_stats import Counts, MediaStats, Reading, window_loss
from tether.timing import STATS_POLL_S

PPS = 100  # packets a second each way


def feed(clock: VirtualClock, stats: MediaStats, seconds: int, **per_s: float) -> None:
    """One reading a second: ``in_loss``/``out_loss`` lose that share of PPS packets;
    ``rx_kbps``/``tx_kbps`` flow with estimates ``receive_kbps``/``send_kbps``."""
    last = stats._readings[-1][1] if stats._readings else Reading(Counts(0, 0), Counts(0, 0))
    for _ in range(seconds):
        inbound, outbound = last.inbound, last.outbound
        assert inbound is not None and outbound is not None
        in_lost = round(PPS * per_s.get("in_loss", 0.0))
        out_lost = round(PPS * per_s.get("out_loss", 0.0))
        receive, send = per_s.get("receive_kbps"), per_s.get("send_kbps")
        last = Reading(
            inbound=Counts(inbound.lost + in_lost, inbound.received + PPS - in_lost),
            outbound=Counts(outbound.lost + out_lost, outbound.received + PPS - out_lost),
            receive_bps=None if receive is None else int(receive * 1000),
            send_bps=None if send is None else int(send * 1000),
            received_bytes=last.received_bytes + int(per_s.get("rx_kbps", 0) * 125),
            sent_bytes=last.sent_bytes + int(per_s.get("tx_kbps", 0) * 125),
        )
        clock._now += 1.0
        stats.add(last)


def test_no_loss_is_zero_and_one_reading_says_nothing() -> None:
    clock = VirtualClock()
    stats = MediaStats(clock)
    assert stats.loss is None and stats.bandwidth_kbps is None and not stats.limited
    feed(clock, stats, 1)
    assert stats.loss is None
    feed(clock, stats, 3)
    assert stats.loss == 0.0


def test_loss_is_the_worse_direction_over_the_window_only() -> None:
    clock = VirtualClock()
    stats = MediaStats(clock, window_s=5.0)
    feed(clock, stats, 10)
    feed(clock, stats, 5, in_loss=0.02, out_loss=0.10)
    assert abs(stats.loss - 0.10) < 1e-9  # the worker got 10% fewer of ours: that counts
    feed(clock, stats, 5, in_loss=0.20)
    assert abs(stats.loss - 0.20) < 1e-9
    feed(clock, stats, 5)  # the burst is over: a window later it no longer counts
    assert stats.loss == 0.0
    assert len(stats._readings) <= 7  # the window does not grow without end


def test_a_burst_inside_the_window_is_diluted_by_the_rest() -> None:
    clock = VirtualClock()
    stats = MediaStats(clock, window_s=5.0)
    feed(clock, stats, 6)
    feed(clock, stats, 1, in_loss=0.5)
    feed(clock, stats, 4)
    assert abs(stats.loss - 0.1) < 1e-9  # 50 of 500 packets in the last 5 s


def test_too_few_packets_or_counters_going_back_say_nothing() -> None:
    assert window_loss(Counts(0, 0), Counts(5, 10)) is None  # 15 packets: too few
    assert window_loss(Counts(0, 1000), Counts(0, 10)) is None  # a new stream
    assert window_loss(Counts(10, 100), Counts(8, 200)) == 0.0  # late packets, not gain
    assert window_loss(None, Counts(0, 100)) is None


def test_bandwidth_is_the_lower_estimate_and_limits_only_when_video_comes_close() -> None:
    clock = VirtualClock()
    stats = MediaStats(clock, window_s=5.0)
    feed(clock, stats, 3, rx_kbps=150, tx_kbps=150)  # no estimate yet
    assert stats.bandwidth_kbps is None and not stats.limited
    # Fresh estimates start at what flows: not judged until known for a whole window.
    feed(clock, stats, 3, receive_kbps=160, send_kbps=155, rx_kbps=150, tx_kbps=150)
    assert stats.bandwidth_kbps == 155 and not stats.limited
    # A fast path, a simple picture: the estimate runs ahead of what flows.
    feed(clock, stats, 6, receive_kbps=240, send_kbps=900, rx_kbps=150, tx_kbps=150)
    assert stats.bandwidth_kbps == 240 and not stats.limited
    # A 250 kbit/s path: what flows our way meets the worker's estimate for it.
    feed(clock, stats, 6, receive_kbps=900, send_kbps=210, rx_kbps=150, tx_kbps=200)
    assert stats.bandwidth_kbps == 210 and stats.limited
    assert stats.upstream_limited_kbps == 210  # our video's direction: it says so


def test_a_return_flow_at_a_slow_models_pace_is_not_our_videos_limit() -> None:
    clock = VirtualClock()
    stats = MediaStats(clock, window_s=5.0)
    # The worker's few frames: their estimate follows their little flow.
    feed(clock, stats, 8, receive_kbps=50, send_kbps=900, rx_kbps=45, tx_kbps=300)
    assert stats.bandwidth_kbps == 50 and stats.limited
    assert stats.upstream_limited_kbps is None  # our video flows freely


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=30))
def test_loss_is_a_fraction_and_never_below_the_better_direction(
    shares: list[tuple[float, float]],
) -> None:
    clock = VirtualClock()
    stats = MediaStats(clock, window_s=5.0)
    feed(clock, stats, 1)
    for in_loss, out_loss in shares:
        feed(clock, stats, 1, in_loss=in_loss, out_loss=out_loss)
        loss = stats.loss
        assert loss is not None and 0.0 <= loss <= 1.0
        assert loss >= max(in_loss, out_loss) / 5 - 0.01  # one second of five, at least


class FakePeer:
    """Stands in for a peer connection: only its state is read here."""

    connectionState = "connected"


async def test_follows_the_current_peer_every_second_and_starts_afresh_on_a_new_one() -> None:
    clock = VirtualClock()
    stats = MediaStats(clock)
    reads: list[FakePeer] = []
    peer: FakePeer | None = FakePeer()

    async def reader(pc: FakePeer) -> Reading:
        reads.append(pc)
        lost = 50 if pc is first else 0  # the first peer is lossy, the second is not
        total = 100 * sum(1 for r in reads if r is pc)
        return Reading(Counts(lost * len(reads), total), Counts(0, total))

    first = peer
    task = asyncio.create_task(stats.follow(lambda: peer, reader))  # type: ignore[arg-type]
    try:
        await clock.advance(STATS_POLL_S * 3.5)
        assert len(reads) == 4 and stats.loss is not None and stats.loss > 0.2
        peer = FakePeer()  # a reconnect: the old peer's window must not carry over
        await clock.advance(STATS_POLL_S)
        assert stats.loss is None  # one reading of the new peer says nothing yet
        await clock.advance(STATS_POLL_S * 2)
        assert stats.loss == 0.0
        peer.connectionState = "connecting"
        count = len(reads)
        await clock.advance(STATS_POLL_S * 3)
        assert len(reads) == count  # nothing read while not connected
        peer = None
        await clock.advance(STATS_POLL_S * 2)
        assert stats.loss is None and stats.bandwidth_kbps is None
        assert not task.done()  # it lives as long as the link; its owner ends it
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
