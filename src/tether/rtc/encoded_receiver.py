"""Forwarding encoded video: a receiver that hands out encoded frames, and the
feedback between a relay's senders and the receivers its frames came from.

``receive_encoded`` makes a receiver hand out complete encoded frames
(``EncodedFrame``) instead of decoding them: the receiver's queue to its decoder thread
is swapped for one that delivers to the track on the event loop. ``on_feedback`` lets a
relay see the keyframe requests (PLI/FIR) and bitrate estimates (REMB) that reach a
sender, so it can pass them upstream (``EncodedReceiver.request_keyframe`` and
``cap_bitrate``)."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiortc
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RtcpPsfbPacket,
    pack_remb_fci,
    unpack_remb_fci,
)

from tether.rtc.encoded_frame import VP8, EncodedFrame, vp8_keyframe_size
from tether.rtc.keyframes import KeyframePacing
from tether.rtc.measures import media_ssrcs
from tether.rtc.version import SUPPORTED_AIORTC, supported
from tether.timing import BITRATE_CAP_TTL_S

logger = logging.getLogger(__name__)


class _EncodedQueue:
    """Stands in for a receiver's queue to its decoder thread: complete frames go
    straight to the track (we are on the event loop); only the stop sentinel goes to
    the idle thread, which then ends the track as aiortc's decoder thread does."""

    def __init__(self, receiver: EncodedReceiver, track_queue: Any) -> None:
        self._receiver = receiver
        self._track_queue = track_queue
        self._sentinel: queue.Queue[None] = queue.Queue()

    def put(self, task: tuple[RTCRtpCodecParameters, JitterFrame] | None) -> None:
        if task is None:
            self._sentinel.put(None)
            return
        codec, frame = task
        size = vp8_keyframe_size(frame.data) if codec.mimeType.lower() == VP8 else None
        keyframe = size is not None
        encoded = EncodedFrame(frame.data, frame.timestamp, keyframe, codec, self._receiver, size)
        if size is not None:
            self._receiver.see_size(size)
            self._receiver.keyframe_arrived()
        self._track_queue.put_nowait(encoded)

    def get(self) -> None:
        return self._sentinel.get()


class EncodedReceiver:
    """A receiver that hands out encoded frames, and the way back to its sender."""

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        self._receiver = receiver
        self.now: Callable[[], float] = time.monotonic  # tests set a virtual clock
        self.size: tuple[int, int] | None = None  # from the latest keyframe
        # The largest picture its sender has sent: what a sender that shrank its picture
        # to fit a narrow path would send if it could.
        self.largest: tuple[int, int] | None = None
        self._keyframes = KeyframePacing()
        self._cap: tuple[int, float] | None = None  # (bps, until)
        self._own_estimate: int | None = None  # this hop's, from aiortc's estimator
        self.keyframe_requests = 0
        estimator = receiver._RTCRtpReceiver__remote_bitrate_estimator  # type: ignore[attr-defined]
        if estimator is not None:
            original_add = estimator.add

            def add(**kwargs: Any) -> tuple[int, list[int]] | None:
                remb = original_add(**kwargs)
                if remb is None:
                    return None
                self._own_estimate = remb[0]
                return self._capped(remb[0]), remb[1]

            estimator.add = add

    def see_size(self, size: tuple[int, int]) -> None:
        self.size = size
        if self.largest is None or size[0] * size[1] > self.largest[0] * self.largest[1]:
            self.largest = size

    def keyframe_arrived(self) -> None:
        self._keyframes.keyframe_arrived()

    def _capped(self, bitrate: int) -> int:
        cap = self.bitrate_cap
        return bitrate if cap is None else min(bitrate, cap)

    async def request_keyframe(self, force: bool = False) -> bool:
        """Send a PLI to the sender, paced (``KeyframePacing``) unless ``force``."""
        if not self._keyframes.may_ask(self.now(), force):
            return False
        self.keyframe_requests += 1
        await request_keyframe(self._receiver)
        return True

    @property
    def bitrate_cap(self) -> int | None:
        """What downstream can take (bps), while that estimate is fresh."""
        if self._cap is None or self._cap[1] < self.now():
            return None
        return self._cap[0]

    async def cap_bitrate(self, bitrate: int) -> None:
        """Downstream can take at most ``bitrate``: tell our sender now (REMB), and cap
        this hop's own estimates with it for a while."""
        self._cap = (bitrate, self.now() + BITRATE_CAP_TTL_S)
        if self._own_estimate is not None:
            bitrate = min(bitrate, self._own_estimate)
        rtcp_ssrc = self._receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
        ssrcs = media_ssrcs(self._receiver)
        if rtcp_ssrc is None or not ssrcs:
            return
        packet = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, ssrcs)
        )
        await self._receiver._send_rtcp(packet)


async def request_keyframe(receiver: RTCRtpReceiver) -> None:
    """Send a PLI for every stream ``receiver`` gets (RFC 4585 6.3.1)."""
    for ssrc in media_ssrcs(receiver):
        await receiver._send_rtcp_pli(ssrc)


def receive_encoded(receiver: RTCRtpReceiver) -> EncodedReceiver | None:
    """Make a video receiver's track yield EncodedFrame instead of decoded frames.
    Must run before the receiver starts (in the peer connection's "track" event).
    None (the receiver keeps decoding) on an aiortc this was not checked against."""
    if not supported():
        logger.warning(
            "encoded forwarding was checked against aiortc %s, not %s; decoding instead",
            SUPPORTED_AIORTC,
            aiortc.__version__,
        )
        return None
    if receiver._RTCRtpReceiver__decoder_thread is not None or receiver.track is None:  # type: ignore[attr-defined]
        raise RuntimeError("receive_encoded() must run before the receiver starts")
    handle = EncodedReceiver(receiver)
    receiver._RTCRtpReceiver__decoder_queue = _EncodedQueue(handle, receiver.track._queue)  # type: ignore[attr-defined]
    return handle


def on_feedback(
    sender: RTCRtpSender,
    keyframe: Callable[[], Awaitable[None]],
    bitrate: Callable[[int], Awaitable[None]],
) -> None:
    """Also call ``keyframe()`` on a PLI/FIR and ``bitrate(bps)`` on a REMB for
    ``sender``, after aiortc's own handling."""
    original = sender._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        await original(packet)
        if not isinstance(packet, RtcpPsfbPacket):
            return
        if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            await keyframe()
        elif packet.fmt == RTCP_PSFB_APP:
            try:
                bps, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if sender._ssrc in ssrcs:
                await bitrate(bps)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]
