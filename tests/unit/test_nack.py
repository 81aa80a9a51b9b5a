"""Requests for lost packets: each asked for at most twice, never an outage's worth, and
the receiver aiortc builds uses them."""

from __future__ import annotations

import inspect

import aiortc.rtcrtpreceiver as receiver
from aiortc.rtp import RtpPacket
from hypothesis import given
from hypothesis import strategies as st

from tether import timing
from tether.rtc import nack
from tether.rtc.adapter import MediaAdapter
from tether.rtc.eager_release import PacedNackGenerator
from tether.rtc.ice import create_peer_connection
from tether.rtc.nack import NackPacer


def test_a_lost_packet_is_asked_for_again_each_round_trip_then_given_up() -> None:
    pacer = NackPacer()
    retry = pacer.retry_s  # nothing timed yet: from the starting round trip
    assert retry == nack.RETRY_RTTS * timing.NACK_RTT_START_S
    assert pacer.received(10, 0.0) == []
    assert pacer.received(12, 0.0) == [11]  # the gap is seen
    assert pacer.received(13, retry / 2) == []  # still missing, but asked for just now
    now, tries = retry, 1
    while now < timing.NACK_GIVE_UP_S:
        asked = pacer.received(13 + tries, now)
        assert asked == ([11] if tries < nack.TRIES else [])
        tries, now = tries + 1, now + retry
    assert pacer.received(13 + tries, timing.NACK_GIVE_UP_S) == []
    assert pacer.missing == set()  # given up on: its frame was skipped


def test_the_round_trip_is_timed_from_requests_answered_at_the_first_try() -> None:
    pacer = NackPacer()
    pacer.received(100, 0.0)
    assert pacer.received(104, 0.0) == [101, 102, 103]
    assert pacer.received(102, 0.3) == []  # the resend of 102, 0.3 s after asking
    assert pacer.rtt_s == 0.3
    assert pacer.retry_s == nack.RETRY_RTTS * 0.3
    assert pacer.received(105, 0.3) == []  # 101 and 103: not due yet (0.45 s)
    # On a fast path the requests repeat quickly, but never faster than MIN_RETRY_S.
    fast = NackPacer()
    fast.received(1, 0.0)
    fast.received(3, 0.0)
    fast.received(2, 0.001)
    assert fast.retry_s == timing.NACK_MIN_RETRY_S


def test_each_new_loss_asks_only_for_itself() -> None:
    """aiortc asks for every packet still missing on each new loss; here the second
    loss does not bring back the first."""
    pacer = NackPacer()
    pacer.received(1, 0.0)
    assert pacer.received(3, 0.0) == [2]
    assert pacer.received(5, 0.01) == [4]


def test_an_outage_is_not_asked_for_and_sequence_numbers_wrap() -> None:
    pacer = NackPacer()
    pacer.received(65530, 0.0)
    assert pacer.received(65530 + nack.MAX_BURST + 2 & 0xFFFF, 0.0) == []  # an outage
    pacer = NackPacer()
    pacer.received(65534, 0.0)
    assert pacer.received(1, 0.0) == [65535, 0]  # across the wrap
    assert pacer.received(65535, 0.01) == []  # a late one: filled, not a new max
    assert pacer.missing == {0}


@given(st.lists(st.tuples(st.integers(0, 40), st.floats(0, 0.05)), max_size=200))
def test_no_packet_is_asked_for_more_than_tries_times(arrivals) -> None:
    pacer, now, asked = NackPacer(), 0.0, {}
    for step, dt in arrivals:
        now += dt
        seq = ((pacer.max_seq or 0) + step) & 0xFFFF if step else (pacer.max_seq or 0) - 3
        for s in pacer.received(seq & 0xFFFF, now):
            asked[s] = asked.get(s, 0) + 1
    assert all(n <= nack.TRIES for n in asked.values())
    assert pacer.requested == sum(asked.values())


async def test_aiortc_receivers_pace_their_nacks_with_eager_release() -> None:
    """The adapter's reach: aiortc builds its NACK generator by the module's name and
    asks it nothing but add() and missing."""
    init = inspect.getsource(receiver.RTCRtpReceiver.__init__)
    assert "self.__nack_generator = NackGenerator()" in init
    handle = inspect.getsource(receiver.RTCRtpReceiver._handle_rtp_packet)
    assert "self.__nack_generator.add(packet)" in handle
    assert "sorted(self.__nack_generator.missing)" in handle
    pc = create_peer_connection()
    try:
        with MediaAdapter(eager_release=False).installed():
            stock = pc.addTransceiver("video").receiver._RTCRtpReceiver__nack_generator
        assert not isinstance(stock, PacedNackGenerator)
        with MediaAdapter(eager_release=True).installed():
            generator = pc.addTransceiver("video").receiver._RTCRtpReceiver__nack_generator
        assert isinstance(generator, PacedNackGenerator)
        generator.now = lambda: 0.0
        assert not generator.add(RtpPacket(sequence_number=7))
        assert generator.add(RtpPacket(sequence_number=9))
        assert sorted(generator.missing) == [8]
    finally:
        await pc.close()
