"""Eager release: a receiver hands a video frame on as soon as its last packet is in.

aiortc's video jitter buffer hands a frame to the decoder only when the first packet
of the *next* frame arrives: about one frame period of added latency per hop.
``EagerJitterBuffer`` releases a frame as soon as its last packet (RTP marker bit) is
in and it has no gaps, gives up on a gap a resend did not fill in time, and catches up
when complete frames queue. With it, receivers ask for lost packets as
``tether.rtc.nack`` paces them (``PacedNackGenerator``): aiortc asks for every missing
packet again on every new loss, a storm of resends on a congested path.

``tether.rtc.adapter`` puts both into aiortc's receiver; tests pin their behaviour."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import NackGenerator
from aiortc.utils import uint16_add

from tether.rtc.encoded_frame import vp8_keyframe_size
from tether.rtc.loss_control import made_window
from tether.rtc.nack import NackPacer
from tether.timing import GAP_WAIT_S, KEYFRAME_REQUEST_INTERVAL_S

# This many complete frames waiting: the receiver is behind; jump to a keyframe.
BACKLOG_FRAMES = 3
# A packet this far behind the buffer's start is a restarted sender, not a late one.
RESTART_BEHIND = 3000


class EagerJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer, but a video frame leaves as soon as it is complete:
    contiguous packets from the buffer's start up to one with the marker bit.

    A gap that a retransmission has not filled within ``GAP_WAIT_S`` is given up on:
    the buffer skips to the next frame and asks for a keyframe (as libwebrtc does).
    aiortc alone waits until the buffer overflows, seconds of frozen video."""

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False) -> None:
        super().__init__(capacity, prefetch, is_video)
        self._gap_since: float | None = None
        self._keyframe_asked_at = -1e9
        self.skips = 0
        self.catch_ups = 0
        self.now: Callable[[], float] = time.monotonic  # tests set a virtual clock

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        if self._is_video and self._origin is not None:
            behind = uint16_add(self._origin, -packet.sequence_number)
            if 0 < behind < RESTART_BEHIND:
                # Late (a retransmission of a packet we gave up on): drop it. aiortc
                # resets the whole buffer to it when it is 100 or more behind, which
                # after a skip throws away every frame since and stalls the video.
                return False, None
        pli, frame = super().add(packet)
        if self._is_video and frame is not None:
            return self._catch_up(pli, frame, packet.sequence_number)
        if not self._is_video or not self._gap_before(packet.sequence_number):
            self._gap_since = None  # nothing missing: a frame still arriving
            return pli, frame
        now = self.now()
        if self._gap_since is None:
            self._gap_since = now
        if now - self._gap_since < GAP_WAIT_S:
            return pli, None
        self._gap_since = None
        self._skip_gap()
        self.skips += 1
        return True, None

    def _catch_up(self, pli: bool, frame: JitterFrame, seq: int) -> tuple[bool, JitterFrame]:
        """One frame leaves per packet that arrives, so complete frames queued behind a
        gap that a retransmission filled never drain when each frame is one packet (a
        small picture on a narrow link): the video falls further behind with every
        loss. When frames queue, jump to the newest complete keyframe; ask for one."""
        self._gap_since = None
        queued = self._complete_frames()
        if len(queued) < BACKLOG_FRAMES:
            return pli, frame
        keyframes = [start for start, keyframe in queued if keyframe]
        if keyframes:
            self.remove(keyframes[-1])
            self.catch_ups += 1
            return pli, self._remove_frame(seq) or frame
        now = self.now()
        if now - self._keyframe_asked_at >= KEYFRAME_REQUEST_INTERVAL_S * 5:
            self._keyframe_asked_at = now
            pli = True
        return pli, frame

    def _complete_frames(self) -> list[tuple[int, bool]]:
        """The complete frames waiting from the buffer's start: (offset, is a keyframe)."""
        out: list[tuple[int, bool]] = []
        start = 0
        for i in range(self.capacity):
            p = self._packets[(self._origin + i) % self.capacity]
            if p is None:
                break
            if p.marker:
                first = self._packets[(self._origin + start) % self.capacity]
                out.append((start, vp8_keyframe_size(first._data) is not None))
                start = i + 1
        return out

    def _gap_before(self, seq: int) -> bool:
        """Whether a packet is missing between the buffer's start and ``seq``: at the
        head, or inside the frame at the head."""
        if self._origin is None:
            return False
        span = min(uint16_add(seq, -self._origin), self.capacity)
        return any(self._packets[(self._origin + i) % self.capacity] is None for i in range(span))

    def _skip_gap(self) -> None:
        """Drop everything up to the newest complete frame's end: the frames behind the
        gap decode against a broken reference anyway, and the next keyframe mends it;
        keeping them would leave the buffer that many frames behind. With no complete
        frame past the gap, drop up to the first packet after it."""
        slots = [self._packets[(self._origin + i) % self.capacity] for i in range(self.capacity)]
        if None not in slots:
            return
        later = [i for i in range(slots.index(None), self.capacity) if slots[i] is not None]
        if not later:
            return
        ends = [i for i in later if slots[i].marker]
        self.remove(ends[-1] + 1 if ends else later[0])

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        if not self._is_video:
            return super()._remove_frame(sequence_number)
        if self._origin is None:
            return None
        packets = []
        timestamp = None
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self.capacity]
            if packet is None:
                return None  # a gap: not complete yet (a NACK may fill it)
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                # The marker was lost but the next frame began: stock behaviour.
                return self._take(packets, timestamp, count)
            packets.append(packet)
            if packet.marker:
                return self._take(packets, timestamp, count + 1)
        return None

    def _take(self, packets: list, timestamp: int, count: int) -> JitterFrame:
        frame = JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)
        self.remove(count)
        return frame


class PacedNackGenerator(NackGenerator):
    """What aiortc's receiver asks its NACK generator: ``add`` each packet that
    arrives and, when it returns True, NACK every sequence number in ``missing``.
    Answered by a ``NackPacer``: only the packets due now."""

    def __init__(self) -> None:  # not aiortc's: its state is the pacer's
        self.pacer = NackPacer()
        self.now: Callable[[], float] = time.monotonic  # tests set a virtual clock
        self._due: list[int] = []
        # Loss for this receiver's bitrate estimate (made next, in the same receiver).
        self.losses = made_window()

    @property
    def missing(self) -> set[int]:  # type: ignore[override]
        return set(self._due)

    def add(self, packet: Any) -> bool:
        now = self.now()
        self.losses.packet(packet.sequence_number, now)
        self._due = self.pacer.received(packet.sequence_number, now)
        return bool(self._due)
