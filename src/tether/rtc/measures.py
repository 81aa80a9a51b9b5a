"""Measures of the media path that aiortc does not give: what a peer receives, and
the RTP timestamps on the wire (latency is measured from the frames).

- aiortc's public inbound-rtp stats keep one entry per receiver, and the stream written
  last wins: the retransmission (RTX) stream, once anything was resent
  (``received_counts`` counts first transmissions). Its receiver's bitrate estimate
  (what its REMB says) is not in its stats at all (``receive_estimate``). Whether the
  other side still lives, on a lossy link, shows first in the datagrams that arrive
  (``datagrams_received``).
- Each end of a latency measure needs the RTP timestamp a frame had on the wire.
  aiortc's sender adds a random origin it keeps in a local variable, and its receiver
  subtracts the first timestamp it saw. ``on_frame_sent`` reports each frame's wire
  timestamp once its packets are out (the sender's last RTP timestamp, kept for its
  sender reports); ``wire_timestamp`` adds the receiver's first timestamp back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from tether.rtc.version import supported

RTP_TIMESTAMP_MODULO = 1 << 32
TIMESTAMP_ROUNDING = 1  # ticks an encoded picture's timestamp may lose (see on_frame_sent)


def receiver_of(pc: RTCPeerConnection, track: MediaStreamTrack) -> RTCRtpReceiver | None:
    """The receiver whose track ``track`` is."""
    return next((r for r in pc.getReceivers() if r.track is track), None)


def media_ssrcs(receiver: RTCRtpReceiver) -> list[int]:
    """The streams ``receiver`` gets, less their retransmission (RTX) streams."""
    rtx = receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined]
    streams = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
    return [ssrc for ssrc in streams if ssrc not in rtx]


def datagrams_received(pc: RTCPeerConnection) -> int:
    """Datagrams (DTLS, SRTP, SRTCP) the peer connection has received so far: on a
    lossy link, any of them is a sign that the other side lives."""
    transports = {id(t.receiver.transport): t.receiver.transport for t in pc.getTransceivers()}
    if pc.sctp is not None:
        transports[id(pc.sctp.transport)] = pc.sctp.transport
    return sum(getattr(t, "_RTCDtlsTransport__rx_packets", 0) for t in transports.values())


def _video_receivers(pc: RTCPeerConnection) -> list[RTCRtpReceiver]:
    return [r for r in pc.getReceivers() if r.track is not None and r.track.kind == "video"]


def received_counts(pc: RTCPeerConnection) -> tuple[int, int] | None:
    """(lost, received) RTP packets of the video this peer receives, over its lifetime,
    counting first transmissions only (retransmissions are a stream of their own).
    None before any video packet came in."""
    lost = received = 0
    seen = False
    for receiver in _video_receivers(pc):
        streams = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
        for ssrc in media_ssrcs(receiver):
            stream = streams[ssrc]
            lost, received = lost + stream.packets_lost, received + stream.packets_received
            seen = True
    return (lost, received) if seen else None


def receive_estimate(pc: RTCPeerConnection) -> int | None:
    """The bitrate (bps) this peer's video receiver estimates its sender can use: what
    its REMB says. None until the estimator has settled (its first seconds)."""
    estimates = []
    for receiver in _video_receivers(pc):
        estimator = receiver._RTCRtpReceiver__remote_bitrate_estimator  # type: ignore[attr-defined]
        control = getattr(estimator, "rate_control", None)
        if control is not None and control.current_bitrate_initialized:
            estimates.append(int(control.current_bitrate))
    return min(estimates) if estimates else None


# --- the RTP timestamps on the wire ---


def on_frame_sent(sender: RTCRtpSender, callback: Callable[[int, int], None]) -> bool:
    """Call ``callback(timestamp, rtp_timestamp)`` once all of a frame's packets went out:
    ``timestamp`` is the frame's own (its pts on the 90 kHz clock; encoding a picture
    goes through microseconds, so it may be ``TIMESTAMP_ROUNDING`` less), ``rtp_timestamp``
    the one on the wire. False (nothing reported) on an aiortc this was not checked
    against."""
    if not supported():
        return False
    original = sender._next_encoded_frame
    pending: list[tuple[int, int]] = []  # the frame being sent: timestamp, packets before it

    async def next_frame(codec: RTCRtpCodecParameters) -> Any:
        # aiortc's send loop asks for the next frame only once the last one is out.
        if pending:
            timestamp, before = pending.pop()
            if sender._RTCRtpSender__packet_count > before:  # type: ignore[attr-defined]
                callback(timestamp, sender._RTCRtpSender__rtp_timestamp)  # type: ignore[attr-defined]
        frame = await original(codec)
        if frame is not None:
            pending.append((frame.timestamp, sender._RTCRtpSender__packet_count))  # type: ignore[attr-defined]
        return frame

    sender._next_encoded_frame = next_frame  # type: ignore[method-assign]
    return True


def wire_timestamp(receiver: RTCRtpReceiver, timestamp: int) -> int | None:
    """The RTP timestamp a received frame (``EncodedFrame.timestamp`` or a decoded
    frame's pts) had on the wire; None before the receiver saw a frame."""
    mapper = getattr(receiver, "_RTCRtpReceiver__timestamp_mapper", None)
    origin = getattr(mapper, "_origin", None)
    if not isinstance(origin, int) or not supported():
        return None
    return (timestamp + origin) % RTP_TIMESTAMP_MODULO
