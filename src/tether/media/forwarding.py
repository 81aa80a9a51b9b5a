"""Forwarding encoded video: the studio relays what it receives without decoding it.

A relaying peer connection's receiver hands out ``EncodedFrame``s (``tether.rtc``);
they go through the studio's slots like decoded frames do. A slot may also hold
decoded pictures (``av.VideoFrame``): a receiver whose codec we cannot forward
decodes as before. An outgoing track sends through an ``Outgoing``, which sends an
encoded frame as it is (an ``av.Packet``) and a picture by letting aiortc encode it,
and keeps the stream decodable whenever its source changes:

- a forwarded stream starts at one of its keyframes (asked for with a PLI upstream),
  and a gap in it (frames missed) waits for the next keyframe;
- an encoded stream (fallback pictures) starts with a forced keyframe;
- keyframe requests (PLI/FIR) and bitrate estimates (REMB) that reach the outgoing
  sender go to the sender of the stream it forwards;
- a frame in a codec the outgoing sender did not negotiate is decoded and re-encoded.
"""

from __future__ import annotations

import asyncio
import logging

import av
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from tether.media import trace
from tether.media.frames import FrameSlot, Restamper
from tether.media.rate import RateGovernor
from tether.rtc.encoded_frame import (
    VP8,
    EncodedFrame,
    FrameDecoder,
    Upstream,
    negotiated_codec,
    packet_of,
)
from tether.rtc.encoded_receiver import on_feedback, receive_encoded
from tether.rtc.measures import receiver_of

logger = logging.getLogger(__name__)

Unit = av.VideoFrame | EncodedFrame
Sent = av.VideoFrame | av.Packet

_enabled = True


def use_forwarding(enabled: bool = True) -> None:
    """Process-wide: relaying peer connections forward encoded video (or decode it)."""
    global _enabled
    _enabled = enabled


def size_of(unit: Unit) -> tuple[int, int] | None:
    if isinstance(unit, av.VideoFrame):
        return unit.width, unit.height
    return unit.upstream.size


def largest_size_of(unit: Unit) -> tuple[int, int] | None:
    """The largest picture ``unit``'s sender has sent so far (a sender squeezed by a
    narrow path shrinks it; sampling only the current one would miss what it was)."""
    if isinstance(unit, av.VideoFrame):
        return unit.width, unit.height
    return unit.upstream.largest


class Outgoing:
    """What one outgoing video track sends, and where its feedback goes."""

    def __init__(self) -> None:
        self.codec: str | None = None  # the sender's codec (mime, lower case), once wired
        self.upstream: Upstream | None = None  # the receiver whose frames go out as they are
        self.forwarded = 0
        self.encoded = 0
        self.decoded = 0  # frames in a codec the sender did not negotiate
        self.starts = 0  # times forwarding (re)started: a new source, or after pictures
        self.starts_on_keyframe = 0
        self.remb_bps: int | None = None  # the receiver's latest estimate for this track
        self._encoding = False
        self._restamper = Restamper()
        self._decoder: FrameDecoder | None = None
        self._wired = False

    def wire(self, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        """Learn the negotiated codec and take the sender's feedback."""
        if self._wired:
            return
        codec = negotiated_codec(pc, track)
        self.codec = codec.mimeType.lower() if codec else None
        for sender in pc.getSenders():
            if sender.track is track:
                on_feedback(sender, self.keyframe_requested, self.bitrate_estimated)
                self._wired = True

    def forwardable(self, unit: Unit) -> bool:
        return isinstance(unit, EncodedFrame) and unit.mime == self.codec

    def admits(self, unit: Unit, contiguous: bool) -> bool:
        """Whether ``unit`` can go out next without corrupting the picture."""
        if not self.forwardable(unit):
            return True
        assert isinstance(unit, EncodedFrame)
        return unit.keyframe or (contiguous and unit.upstream is self.upstream)

    async def offer(
        self, slot: FrameSlot, last_seq: int, seq: int, unit: Unit
    ) -> tuple[int, Sent | None]:
        """``unit`` (number ``seq`` in ``slot``) came after ``last_seq``: send it if it can
        go out now, else ask its sender for a keyframe (None). Of pictures, the latest
        wins. Returns the number now last seen, and what was sent."""
        if isinstance(unit, av.VideoFrame):
            seq, unit = slot.seq, slot.frame
        if not self.admits(unit, seq == last_seq + 1):
            await self.want_keyframe(unit)
            return seq, None
        return seq, await self.send(unit)

    async def want_keyframe(self, unit: Unit) -> None:
        if isinstance(unit, EncodedFrame):
            await unit.upstream.request_keyframe()

    async def send(self, unit: Unit) -> Sent | None:
        if not isinstance(unit, EncodedFrame):
            return self.encode(unit)
        if not self.forwardable(unit):
            picture = await self._decode(unit)
            return None if picture is None else self.encode(picture)
        if unit.upstream is not self.upstream or self._encoding:
            self.starts += 1
            self.starts_on_keyframe += unit.keyframe
        self.upstream = unit.upstream
        self._encoding = False
        self.forwarded += 1
        packet = packet_of(unit)
        return self._restamper.stamp(packet)

    def encode(self, picture: av.VideoFrame) -> av.VideoFrame:
        """Send a picture; the first after forwarding is a keyframe, so the hand-over
        never leaves the receiver decoding our frames against another stream's."""
        picture.pict_type = (
            av.video.frame.PictureType.NONE if self._encoding else av.video.frame.PictureType.I
        )
        self._encoding = True
        self.upstream = None
        self.encoded += 1
        return self._restamper.stamp(picture)

    async def _decode(self, unit: EncodedFrame) -> av.VideoFrame | None:
        if self._decoder is None:
            self._decoder = FrameDecoder()
        self.decoded += 1
        return await asyncio.get_running_loop().run_in_executor(None, self._decoder.decode, unit)

    # --- feedback from the sender's receiver (downstream) ---
    async def keyframe_requested(self) -> None:
        # While we encode, aiortc's sender forces the keyframe itself.
        if self.upstream is not None:
            await self.upstream.request_keyframe()

    async def bitrate_estimated(self, bitrate: int) -> None:
        self.remb_bps = bitrate
        if self.upstream is not None:
            await self.upstream.cap_bitrate(bitrate)


def attach(pc: RTCPeerConnection, received: MediaStreamTrack) -> None:
    """Make a relaying peer connection forward: call from its "track" event, after
    adding the outgoing track. A VP8 video track then yields encoded frames, and the
    senders of our outgoing tracks pass keyframe requests and REMB upstream."""
    codec = negotiated_codec(pc, received)
    receiver = receiver_of(pc, received)
    if received.kind == "video" and receiver is not None and _enabled:
        if codec is not None and codec.mimeType.lower() == VP8:
            receive_encoded(receiver)
        else:
            logger.info("receiving %s: decoding (only VP8 is forwarded)", codec)
    for sender in pc.getSenders():
        out = getattr(sender.track, "out", None)
        if isinstance(out, Outgoing):
            out.wire(pc, sender.track)


class ForwardTrack(MediaStreamTrack):
    """Sends a slot's frames: encoded ones in order and as they are, pictures (latest
    wins) encoded. With a ``governor`` that throttles (a model slower than the camera),
    only the frames it admits go out: an encoded stream is then decoded in full (every
    frame references the one before) and the admitted pictures encoded afresh."""

    kind = "video"

    def __init__(
        self, slot: FrameSlot, stage: str | None = None, governor: RateGovernor | None = None
    ) -> None:
        super().__init__()
        self.out = Outgoing()
        self._slot = slot
        self._seq = 0
        self._stage = stage
        self._governor = governor
        self._thinning = Thinning(self.out)

    async def recv(self) -> Sent:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            seq, unit = await self._slot.wait_next_after(self._seq)
            governor = self._governor
            if governor is not None and governor.throttling:
                contiguous, self._seq = seq == self._seq + 1, seq
                sent = await self._thinning.offer(unit, contiguous, governor.admit())
            else:
                self._thinning.stop()
                self._seq, sent = await self.out.offer(self._slot, self._seq, seq, unit)
                if sent is not None and governor is not None:
                    governor.admit()
            if sent is not None:
                if self._stage is not None:
                    trace.mark(self._stage, sent)
                return sent


class Thinning:
    """Fewer frames out of an encoded stream: each decoded in order (from a keyframe),
    the admitted ones encoded."""

    def __init__(self, out: Outgoing) -> None:
        self._out = out
        self._decoder: FrameDecoder | None = None
        self._synced = False  # the decoder has every frame since a keyframe

    def stop(self) -> None:
        self._decoder, self._synced = None, False

    async def offer(self, unit: Unit, contiguous: bool, admitted: bool) -> Sent | None:
        if isinstance(unit, EncodedFrame):
            picture = await self._decoded(unit, contiguous)
        else:
            picture = unit
        if picture is None or not admitted:
            return None
        return self._out.encode(picture)

    async def _decoded(self, unit: EncodedFrame, contiguous: bool) -> av.VideoFrame | None:
        self._synced = unit.keyframe or (self._synced and contiguous)
        if not self._synced:
            await unit.upstream.request_keyframe()
            return None
        if self._decoder is None:
            self._decoder = FrameDecoder()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._decoder.decode, unit)
