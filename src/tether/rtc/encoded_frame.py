"""Encoded video frames, as the studio forwards them instead of decoding them.

A relaying receiver (``tether.rtc.encoded_receiver``) hands out complete encoded
frames (``EncodedFrame``); each names its ``Upstream``, the way back to the sender
that made it (keyframe requests, bitrate caps). Sending one needs no reach-in: aiortc's
sender packetizes an ``av.Packet`` a track returns (``packet_of``). Where a frame
cannot be forwarded as it is, ``FrameDecoder`` turns it into a picture."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import av
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.codecs import get_decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

logger = logging.getLogger(__name__)

VP8 = "video/vp8"


class Upstream(Protocol):
    """Where an encoded frame came from: the sender's picture sizes, and the way back
    to it (``tether.rtc.encoded_receiver.EncodedReceiver``)."""

    size: tuple[int, int] | None  # from the latest keyframe
    largest: tuple[int, int] | None  # the largest picture it has sent

    async def request_keyframe(self, force: bool = False) -> bool: ...

    async def cap_bitrate(self, bitrate: int) -> None: ...


@dataclass(slots=True, eq=False)
class EncodedFrame:
    """One complete encoded video frame as it came off the wire."""

    data: bytes
    timestamp: int  # RTP clock (90 kHz), from the receiver's unwrapped timeline
    keyframe: bool
    codec: RTCRtpCodecParameters
    upstream: Upstream  # who sent it: where keyframe requests and REMB go
    size: tuple[int, int] | None = None  # width, height (keyframes only)

    @property
    def mime(self) -> str:
        return self.codec.mimeType.lower()


def vp8_keyframe_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) if ``data`` is a VP8 keyframe (RFC 6386 9.1), else None."""
    if len(data) < 10 or data[0] & 1 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height


def packet_of(frame: EncodedFrame) -> av.Packet:
    """An av.Packet that aiortc's sender packetizes as it is (Encoder.pack)."""
    return av.Packet(frame.data)


def negotiated_codec(
    pc: RTCPeerConnection, track: MediaStreamTrack
) -> RTCRtpCodecParameters | None:
    """The codec the transceiver carrying ``track`` (sent or received) uses first."""
    for transceiver in pc.getTransceivers():
        if track in (transceiver.sender.track, transceiver.receiver.track):
            codecs = transceiver._codecs  # set by setRemoteDescription
            return codecs[0] if codecs else None
    return None


class FrameDecoder:
    """Decodes EncodedFrames in order (call from one thread at a time)."""

    def __init__(self) -> None:
        self._decoder: Any = None
        self._mime: str | None = None

    def decode(self, frame: EncodedFrame) -> av.VideoFrame | None:
        if frame.mime != self._mime:
            self._decoder, self._mime = get_decoder(frame.codec), frame.mime
        jitter = JitterFrame(data=frame.data, timestamp=frame.timestamp)
        try:
            frames = self._decoder.decode(jitter)
        except av.FFmpegError as exc:
            logger.debug("could not decode a forwarded frame: %s", exc)
            return None
        return frames[-1] if frames else None
