"""The one place that reaches into aiortc/aioice internals.

- aiortc's video jitter buffer hands a frame to the decoder only when the first
  packet of the *next* frame arrives: about one frame period of added latency per
  hop. ``use_eager_release`` releases a frame as soon as its last packet (RTP marker
  bit) is in and it has no gaps. Adapted to aiortc ADAPTED_AIORTC; tests pin it.
  With it, receivers ask for lost packets as ``tether.rtc.nack`` paces them (aiortc asks
  for every missing packet again on every new loss: a storm of resends on a
  congested path).
- aioice gathers host candidates on every interface but loopback. Tether's peers are
  often on one machine (``tether up``, tests), so we can restrict ICE to loopback.
- aiortc falls back to a public STUN server when given no ICE servers; we never want
  a hidden network dependency, so peer connections get an explicit list.
- aiortc's VP8 encoder never goes below 250 kbps and every new encoder starts at
  500 kbps: on a 250 kbit link congestion then looks like loss, and each reconnect
  starts too fast. ``use_bitrate_floor`` lowers the floor; ``carry_bitrate`` makes the
  next encoder start at the bitrate a closing peer had reached. aiortc restarts its
  encoder (a keyframe) on every bitrate change and never shrinks the picture:
  ``use_fitted_encoder`` swaps in ``FittedVp8Encoder``, run by ``tether.media.encoding``.
- The studio forwards encoded video instead of decoding and re-encoding it.
  ``receive_encoded`` makes a receiver hand out complete encoded frames
  (``EncodedFrame``) instead of decoding them: the receiver's queue to its decoder
  thread is swapped for one that delivers to the track on the event loop.
  Sending needs no reach-in: aiortc's sender packetizes an ``av.Packet`` a track
  returns (``packet_of``). ``on_feedback`` lets a relay see the keyframe requests
  (PLI/FIR) and bitrate estimates (REMB) that reach a sender, so it can pass them
  upstream (``EncodedReceiver.request_keyframe``/``cap_bitrate``).
- Measures of the media path (``received_counts``, ``receive_estimate``): aiortc's
  public inbound-rtp stats keep one entry per receiver, and the stream written last
  wins, which is the retransmission (RTX) stream once anything was resent; and its
  receiver's bitrate estimate (what its REMB says) is not in its stats at all.
- Latency is measured from the frames: each end needs the RTP timestamps that were on
  the wire. aiortc's sender adds a random origin it keeps in a local variable, and its
  receiver subtracts the first timestamp it saw. ``on_frame_sent`` reports each frame's
  wire timestamp once its packets are out (the sender's last RTP timestamp, kept for
  its sender reports); ``wire_timestamp`` adds the receiver's first timestamp back.
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aioice.ice
import aiortc
import aiortc.codecs.vpx as _vpx
import aiortc.rtcrtpreceiver as _receiver
import aiortc.rtcrtpsender as _sender_module
import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
)
from aiortc.codecs import get_decoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RtcpPsfbPacket,
    pack_remb_fci,
    unpack_remb_fci,
)
from aiortc.utils import uint16_add

from tether.media.encoding import EncodingPolicy
from tether.rtc.nack import NackPacer
from tether.timing import BITRATE_CAP_TTL_S, GAP_WAIT_S, KEYFRAME_REQUEST_INTERVAL_S

logger = logging.getLogger(__name__)

_original_get_host_addresses = aioice.ice.get_host_addresses

# This many complete frames waiting: the receiver is behind; jump to a keyframe.
BACKLOG_FRAMES = 3
# A packet this far behind the buffer's start is a restarted sender, not a late one.
RESTART_BEHIND = 3000
# The aiortc versions whose receiver this adapter was checked against.
ADAPTED_AIORTC = ("1.16.0",)


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


_AIORTC_NACK_GENERATOR = _receiver.NackGenerator


class PacedNackGenerator(_receiver.NackGenerator):
    """What aiortc's receiver asks its NACK generator: ``add`` each packet that
    arrives and, when it returns True, NACK every sequence number in ``missing``.
    Answered by a ``NackPacer``: only the packets due now."""

    def __init__(self) -> None:  # not aiortc's: its state is the pacer's
        self.pacer = NackPacer()
        self.now: Callable[[], float] = time.monotonic  # tests set a virtual clock
        self._due: list[int] = []

    @property
    def missing(self) -> set[int]:  # type: ignore[override]
        return set(self._due)

    def add(self, packet: Any) -> bool:
        self._due = self.pacer.received(packet.sequence_number, self.now())
        return bool(self._due)


def use_eager_release(enabled: bool = True) -> None:
    """Process-wide: new receivers release complete frames at once, and pace their
    requests for lost packets (or not)."""
    if enabled and aiortc.__version__ not in ADAPTED_AIORTC:
        logger.warning(
            "eager frame release was checked against aiortc %s, not %s; leaving it off",
            ", ".join(ADAPTED_AIORTC),
            aiortc.__version__,
        )
        enabled = False
    _receiver.JitterBuffer = EagerJitterBuffer if enabled else JitterBuffer
    _receiver.NackGenerator = PacedNackGenerator if enabled else _AIORTC_NACK_GENERATOR


def _loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else ["::1"]


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


def resolve_ice_mode(mode: str, peer_hosts: list[str]) -> str:
    """'auto' becomes 'loopback' when every peer host is on this machine, else 'all'."""
    if mode not in ("auto", "loopback", "all"):
        raise ValueError(f"ICE hosts mode must be auto, loopback or all, got {mode!r}")
    if mode == "auto":
        return "loopback" if all(is_loopback_host(h) for h in peer_hosts) else "all"
    return mode


def use_ice_hosts(mode: str) -> None:
    """Process-wide: gather host candidates on loopback only, or on all interfaces."""
    if mode == "loopback":
        aioice.ice.get_host_addresses = _loopback_addresses
    else:
        aioice.ice.get_host_addresses = _original_get_host_addresses
    logger.debug("ICE host candidates: %s", mode)


# Low enough that a 150 kbit/s path carries the video with its packet headers, resends
# and the data channel (at 100 kbit/s such a path stayed overrun: 1-8 fps).
BITRATE_FLOOR_BPS = 50_000


_FIRST_START_BPS = _vpx.DEFAULT_BITRATE  # aiortc's, before a peer carried its own


def use_bitrate_floor(floor_bps: int = BITRATE_FLOOR_BPS, afresh: bool = False) -> None:
    """Process-wide: VP8 encoders follow the receiver's feedback down to this bitrate.
    ``afresh``: new encoders start where a new process's would, not where an earlier
    peer's got to (``carry_bitrate``)."""
    _vpx.MIN_BITRATE = floor_bps
    start = _FIRST_START_BPS if afresh else _vpx.DEFAULT_BITRATE
    _vpx.DEFAULT_BITRATE = max(start, floor_bps)


def sending_bitrate(pc: RTCPeerConnection) -> int | None:
    """The target bitrate of the peer's video encoder (None before it encoded)."""
    for sender in pc.getSenders():
        encoder = getattr(sender, "_RTCRtpSender__encoder", None)
        if encoder is not None and hasattr(encoder, "target_bitrate"):
            return int(encoder.target_bitrate)
    return None


def carry_bitrate(pc: RTCPeerConnection) -> None:
    """Process-wide: new VP8 encoders start at the bitrate this peer reached, so a new
    peer after a reconnect does not start at 500 kbps on a slower link."""
    bitrate = sending_bitrate(pc)
    if bitrate is not None:
        _vpx.DEFAULT_BITRATE = max(_vpx.MIN_BITRATE, min(bitrate, _vpx.MAX_BITRATE))


# The share of the receiver's bitrate estimate a fitted encoder aims at.
ESTIMATE_SHARE = 0.85


class FittedVp8Encoder(_vpx.Vp8Encoder):
    """aiortc's VP8 encoder, fitted to the link by ``EncodingPolicy``: bitrate changes
    with hysteresis (each restarts the encoder with a keyframe), a smaller picture or
    half the frame rate where the bitrate alone cannot get there."""

    def __init__(self) -> None:
        super().__init__()
        self.policy = EncodingPolicy(_vpx.DEFAULT_BITRATE)

    @property
    def target_bitrate(self) -> int:
        return self.policy.applied

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        # Headroom: libvpx overshoots its target by up to 15 %, and packet headers,
        # retransmissions and the data channel share the link.
        bitrate = int(bitrate * ESTIMATE_SHARE)
        self.policy.request(max(_vpx.MIN_BITRATE, min(bitrate, _vpx.MAX_BITRATE)))

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        pts, time_base = frame.pts, frame.time_base
        shape = self.policy.shape(frame.width, frame.height, float(pts * time_base))
        if not shape.send and not force_keyframe:
            # The sender sends nothing for it; the timestamp keeps the clock going.
            return [], convert_timebase(pts, time_base, VIDEO_TIME_BASE)
        self._Vp8Encoder__target_bitrate = shape.bitrate  # its rate-control buffer size
        if (shape.width, shape.height) != (frame.width, frame.height):
            frame = frame.reformat(width=shape.width, height=shape.height, format="yuv420p")
            frame.pts, frame.time_base = pts, time_base
        return super().encode(frame, force_keyframe)


_original_get_encoder = _sender_module.get_encoder


def _fitted_get_encoder(codec: RTCRtpCodecParameters) -> Any:
    if codec.mimeType.lower() == VP8:
        return FittedVp8Encoder()
    return _original_get_encoder(codec)


def use_fitted_encoder(enabled: bool = True) -> None:
    """Process-wide: new VP8 senders fit their stream to the link (``FittedVp8Encoder``)."""
    _sender_module.get_encoder = _fitted_get_encoder if enabled else _original_get_encoder


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
        for ssrc in _media_ssrcs(receiver):
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


def create_peer_connection(ice_servers: list[dict] | None = None) -> RTCPeerConnection:
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in ice_servers or []
    ]
    return RTCPeerConnection(RTCConfiguration(iceServers=servers))


# --- forwarding encoded video ---

VP8 = "video/vp8"


@dataclass(slots=True, eq=False)
class EncodedFrame:
    """One complete encoded video frame as it came off the wire."""

    data: bytes
    timestamp: int  # RTP clock (90 kHz), from the receiver's unwrapped timeline
    keyframe: bool
    codec: RTCRtpCodecParameters
    upstream: EncodedReceiver  # who sent it: where keyframe requests and REMB go
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
        self._track_queue.put_nowait(encoded)

    def get(self) -> None:
        return self._sentinel.get()


class EncodedReceiver:
    """A receiver that hands out encoded frames, and the way back to its sender."""

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        self._receiver = receiver
        self.size: tuple[int, int] | None = None  # from the latest keyframe
        # The largest picture its sender has sent: what a sender that shrank its picture
        # to fit a narrow path would send if it could.
        self.largest: tuple[int, int] | None = None
        self._keyframe_asked_at = -1e9
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

    def _media_ssrcs(self) -> list[int]:
        return _media_ssrcs(self._receiver)

    def _capped(self, bitrate: int) -> int:
        cap = self.bitrate_cap
        return bitrate if cap is None else min(bitrate, cap)

    async def request_keyframe(self, force: bool = False) -> bool:
        """Send a PLI to the sender (at most every KEYFRAME_REQUEST_INTERVAL_S)."""
        now = time.monotonic()
        if not force and now - self._keyframe_asked_at < KEYFRAME_REQUEST_INTERVAL_S:
            return False
        self._keyframe_asked_at = now
        self.keyframe_requests += 1
        await request_keyframe(self._receiver)
        return True

    @property
    def bitrate_cap(self) -> int | None:
        """What downstream can take (bps), while that estimate is fresh."""
        if self._cap is None or self._cap[1] < time.monotonic():
            return None
        return self._cap[0]

    async def cap_bitrate(self, bitrate: int) -> None:
        """Downstream can take at most ``bitrate``: tell our sender now (REMB), and cap
        this hop's own estimates with it for a while."""
        self._cap = (bitrate, time.monotonic() + BITRATE_CAP_TTL_S)
        if self._own_estimate is not None:
            bitrate = min(bitrate, self._own_estimate)
        rtcp_ssrc = self._receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
        ssrcs = self._media_ssrcs()
        if rtcp_ssrc is None or not ssrcs:
            return
        packet = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, ssrcs)
        )
        await self._receiver._send_rtcp(packet)


def _media_ssrcs(receiver: RTCRtpReceiver) -> list[int]:
    rtx = receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined]
    streams = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
    return [ssrc for ssrc in streams if ssrc not in rtx]


async def request_keyframe(receiver: RTCRtpReceiver) -> None:
    """Send a PLI for every stream ``receiver`` gets (RFC 4585 6.3.1)."""
    for ssrc in _media_ssrcs(receiver):
        await receiver._send_rtcp_pli(ssrc)


def adapted() -> bool:
    return aiortc.__version__ in ADAPTED_AIORTC


def receive_encoded(receiver: RTCRtpReceiver) -> EncodedReceiver | None:
    """Make a video receiver's track yield EncodedFrame instead of decoded frames.
    Must run before the receiver starts (in the peer connection's "track" event).
    None (the receiver keeps decoding) on an aiortc this was not checked against."""
    if not adapted():
        logger.warning(
            "encoded forwarding was checked against aiortc %s, not %s; decoding instead",
            ", ".join(ADAPTED_AIORTC),
            aiortc.__version__,
        )
        return None
    if receiver._RTCRtpReceiver__decoder_thread is not None or receiver.track is None:  # type: ignore[attr-defined]
        raise RuntimeError("receive_encoded() must run before the receiver starts")
    handle = EncodedReceiver(receiver)
    receiver._RTCRtpReceiver__decoder_queue = _EncodedQueue(handle, receiver.track._queue)  # type: ignore[attr-defined]
    return handle


def negotiated_codec(
    pc: RTCPeerConnection, track: MediaStreamTrack
) -> RTCRtpCodecParameters | None:
    """The codec the transceiver carrying ``track`` (sent or received) uses first."""
    for transceiver in pc.getTransceivers():
        if track in (transceiver.sender.track, transceiver.receiver.track):
            codecs = transceiver._codecs  # set by setRemoteDescription
            return codecs[0] if codecs else None
    return None


def receiver_of(pc: RTCPeerConnection, track: MediaStreamTrack) -> RTCRtpReceiver | None:
    return next((r for r in pc.getReceivers() if r.track is track), None)


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


# --- the RTP timestamps on the wire, for measuring latency from the frames ---

RTP_TIMESTAMP_MODULO = 1 << 32
TIMESTAMP_ROUNDING = 1  # ticks an encoded picture's timestamp may lose (see on_frame_sent)


def on_frame_sent(sender: RTCRtpSender, callback: Callable[[int, int], None]) -> bool:
    """Call ``callback(timestamp, rtp_timestamp)`` once all of a frame's packets went out:
    ``timestamp`` is the frame's own (its pts on the 90 kHz clock; encoding a picture
    goes through microseconds, so it may be ``TIMESTAMP_ROUNDING`` less), ``rtp_timestamp``
    the one on the wire. False (nothing reported) on an aiortc this was not checked
    against."""
    if not adapted():
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
    if not isinstance(origin, int) or not adapted():
        return None
    return (timestamp + origin) % RTP_TIMESTAMP_MODULO


def packet_of(frame: EncodedFrame) -> av.Packet:
    """An av.Packet that aiortc's sender packetizes as it is (Encoder.pack)."""
    return av.Packet(frame.data)


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
