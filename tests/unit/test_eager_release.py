"""The eager jitter buffer, packet by packet, and the aiortc version it adapts."""

from __future__ import annotations

import inspect

import aiortc
import aiortc.rtcrtpreceiver as receiver
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from tether import timing
from tether.rtc.adapter import MediaAdapter
from tether.rtc.eager_release import EagerJitterBuffer
from tether.rtc.version import supported


def packet(seq: int, ts: int, marker: bool = False, data: bytes | None = None) -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts, marker=int(marker))
    p._data = data if data is not None else bytes([seq % 256])
    return p


def feed(buffer: JitterBuffer, packets: list[RtpPacket]) -> list[tuple[int, bytes]]:
    out = []
    for p in packets:
        _, frame = buffer.add(p)
        if frame is not None:
            out.append((frame.timestamp, frame.data))
    return out


def test_pins_the_aiortc_it_adapts() -> None:
    assert supported(aiortc.__version__)
    source = inspect.getsource(receiver.RTCRtpReceiver.__init__)
    assert "JitterBuffer(capacity=512, is_video=True)" in source
    assert "def _remove_frame(self, sequence_number: int)" in inspect.getsource(JitterBuffer)


def test_a_complete_frame_leaves_at_its_marker_not_at_the_next_frame() -> None:
    eager = EagerJitterBuffer(capacity=128, is_video=True)
    stock = JitterBuffer(capacity=128, is_video=True)
    frame1 = [packet(10, 1000), packet(11, 1000), packet(12, 1000, marker=True)]
    assert feed(eager, frame1) == [(1000, bytes([10, 11, 12]))]
    assert feed(stock, frame1) == []  # stock waits for the next frame's first packet
    assert feed(stock, [packet(13, 4000)]) == [(1000, bytes([10, 11, 12]))]


def test_a_frame_with_a_gap_waits_until_the_gap_is_filled() -> None:
    eager = EagerJitterBuffer(capacity=128, is_video=True)
    assert feed(eager, [packet(20, 1000), packet(22, 1000, marker=True)]) == []
    # the missing packet arrives late (a NACK retransmission or reordering)
    assert feed(eager, [packet(21, 1000)]) == [(1000, bytes([20, 21, 22]))]


def test_reordered_frames_come_out_whole_and_in_order() -> None:
    eager = EagerJitterBuffer(capacity=128, is_video=True)
    assert feed(eager, [packet(29, 500, marker=True)]) == [(500, bytes([29]))]
    got = feed(
        eager,
        [
            packet(31, 1000, marker=True),  # a frame's last packet before its first
            packet(33, 2000, marker=True),
            packet(30, 1000),
            packet(32, 2000),
        ],
    )
    assert got == [(1000, bytes([30, 31])), (2000, bytes([32, 33]))]


def test_a_lost_marker_falls_back_to_stock_release() -> None:
    eager = EagerJitterBuffer(capacity=128, is_video=True)
    # packet 41 (the marker of frame 1000) is never seen; 42 starts the next frame
    assert feed(eager, [packet(40, 1000), packet(42, 2000)]) == []
    assert feed(eager, [packet(41, 1000)]) == [(1000, bytes([40, 41]))]


def test_audio_keeps_stock_behaviour() -> None:
    eager = EagerJitterBuffer(capacity=16, prefetch=4)
    stock = JitterBuffer(capacity=16, prefetch=4)
    packets = [packet(i, i * 960, marker=True) for i in range(8)]
    assert feed(eager, packets) == feed(stock, packets)


def test_switching_it_on_and_off() -> None:
    before = receiver.JitterBuffer  # as the tests' own adapter set it
    with MediaAdapter(eager_release=False).installed():
        assert receiver.JitterBuffer is JitterBuffer
        with MediaAdapter(eager_release=True).installed():
            assert receiver.JitterBuffer is EagerJitterBuffer
        assert receiver.JitterBuffer is JitterBuffer
    assert receiver.JitterBuffer is before


def test_a_gap_not_filled_in_time_is_skipped_and_a_keyframe_asked_for() -> None:
    eager = EagerJitterBuffer(capacity=512, is_video=True)
    now = [100.0]
    eager.now = lambda: now[0]
    assert feed(eager, [packet(50, 1000, marker=True)]) == [(1000, bytes([50]))]
    # packet 51 (frame 2000's first) is lost and its retransmission never comes
    assert feed(eager, [packet(52, 2000, marker=True), packet(53, 3000, marker=True)]) == []
    now[0] += timing.GAP_WAIT_S / 2
    pli, frame = eager.add(packet(54, 4000, marker=True))
    assert (pli, frame) == (False, None)  # still waiting for the NACK to fill it
    now[0] += timing.GAP_WAIT_S
    pli, frame = eager.add(packet(55, 5000, marker=True))
    assert pli  # the broken frames are dropped: ask the sender for a keyframe
    assert frame is None and eager.skips == 1
    # and the buffer is not left behind: the next frame leaves at once
    assert feed(eager, [packet(56, 6000, marker=True)]) == [(6000, bytes([56]))]
    # aiortc's own buffer would still sit on the gap, hundreds of packets long
    stock = JitterBuffer(capacity=512, is_video=True)
    assert feed(stock, [packet(50, 1000), packet(52, 2000), packet(53, 3000)]) == []


def test_a_late_retransmission_after_a_skip_does_not_reset_the_buffer() -> None:
    eager = EagerJitterBuffer(capacity=512, is_video=True)
    now = [100.0]
    eager.now = lambda: now[0]
    feed(eager, [packet(100, 1000, marker=True)])
    frames = [packet(seq, seq * 10, marker=True) for seq in range(102, 260)]  # 101 lost
    assert feed(eager, frames[:5]) == []
    now[0] += timing.GAP_WAIT_S + 0.1
    feed(eager, frames[5:6])  # skipped
    assert feed(eager, frames[6:]) == [(p.timestamp, bytes([p.sequence_number % 256]))
                                       for p in frames[6:]]  # fmt: skip
    # 101's retransmission finally comes, 158 packets late: aiortc would restart the
    # buffer at it (and freeze the video); it is dropped instead.
    assert eager.add(packet(101, 1010, marker=True)) == (False, None)
    assert feed(eager, [packet(260, 2600, marker=True)]) == [(2600, bytes([260 % 256]))]


def test_frames_queued_behind_a_filled_gap_catch_up_at_a_keyframe() -> None:
    keyframe = bytes([0x10, 0, 0, 0x9D, 0x01, 0x2A, 0, 1, 0, 1])  # a VP8 keyframe header
    eager = EagerJitterBuffer(capacity=512, is_video=True)
    now = [100.0]
    eager.now = lambda: now[0]
    assert feed(eager, [packet(10, 100, marker=True)]) == [(100, bytes([10]))]
    # 11 is lost; one-packet frames 12..15 wait behind it, then its retransmission comes
    assert feed(eager, [packet(s, s * 10, marker=True) for s in range(12, 16)]) == []
    pli, frame = eager.add(packet(11, 110, marker=True))
    assert frame is not None and frame.timestamp == 110
    assert pli  # four frames wait: one leaves per packet, so ask for a keyframe
    # The keyframe comes: everything older is dropped and it leaves at once.
    pli, frame = eager.add(packet(16, 160, marker=True, data=keyframe))
    assert frame is not None and frame.timestamp == 160 and eager.catch_ups == 1
    assert feed(eager, [packet(17, 170, marker=True)]) == [(170, bytes([17]))]


def test_a_gap_inside_the_frame_at_the_head_is_skipped_too() -> None:
    eager = EagerJitterBuffer(capacity=512, is_video=True)
    now = [100.0]
    eager.now = lambda: now[0]
    feed(eager, [packet(200, 2000, marker=True)])
    # Frame 3000's first packet arrives, its second (202) is lost for good.
    assert feed(eager, [packet(201, 3000), packet(203, 3000, marker=True)]) == []
    assert feed(eager, [packet(204, 4000, marker=True)]) == []
    now[0] += timing.GAP_WAIT_S + 0.1
    pli, frame = eager.add(packet(205, 5000, marker=True))
    assert pli and frame is None and eager.skips == 1  # not stuck until overflow
    assert feed(eager, [packet(206, 6000, marker=True)]) == [(6000, bytes([206]))]
