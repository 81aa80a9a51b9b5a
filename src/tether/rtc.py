"""The one place that reaches into aiortc/aioice internals.

- aiortc's video jitter buffer hands a frame to the decoder only when the first
  packet of the *next* frame arrives: about one frame period of added latency per
  hop. ``use_eager_release`` releases a frame as soon as its last packet (RTP marker
  bit) is in and it has no gaps. Adapted to aiortc ADAPTED_AIORTC; tests pin it.
- aioice gathers host candidates on every interface but loopback. Tether's peers are
  often on one machine (``tether up``, tests), so we can restrict ICE to loopback.
- aiortc falls back to a public STUN server when given no ICE servers; we never want
  a hidden network dependency, so peer connections get an explicit list.
- aiortc's VP8 encoder never goes below 250 kbps and every new encoder starts at
  500 kbps: on a 250 kbit link congestion then looks like loss, and each reconnect
  starts too fast. ``use_bitrate_floor`` lowers the floor; ``carry_bitrate`` makes the
  next encoder start at the bitrate a closing peer had reached.
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

import aioice.ice
import aiortc
import aiortc.codecs.vpx as _vpx
import aiortc.rtcrtpreceiver as _receiver
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer, JitterFrame

logger = logging.getLogger(__name__)

_original_get_host_addresses = aioice.ice.get_host_addresses

# The aiortc versions whose receiver this adapter was checked against.
ADAPTED_AIORTC = ("1.16.0",)


class EagerJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer, but a video frame leaves as soon as it is complete:
    contiguous packets from the buffer's start up to one with the marker bit."""

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


def use_eager_release(enabled: bool = True) -> None:
    """Process-wide: new receivers release complete frames at once (or not)."""
    if enabled and aiortc.__version__ not in ADAPTED_AIORTC:
        logger.warning(
            "eager frame release was checked against aiortc %s, not %s; leaving it off",
            ", ".join(ADAPTED_AIORTC),
            aiortc.__version__,
        )
        enabled = False
    _receiver.JitterBuffer = EagerJitterBuffer if enabled else JitterBuffer


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


BITRATE_FLOOR_BPS = 150_000


def use_bitrate_floor(floor_bps: int = BITRATE_FLOOR_BPS) -> None:
    """Process-wide: VP8 encoders follow the receiver's feedback down to this bitrate."""
    _vpx.MIN_BITRATE = floor_bps
    _vpx.DEFAULT_BITRATE = max(_vpx.DEFAULT_BITRATE, floor_bps)


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


def create_peer_connection(ice_servers: list[dict] | None = None) -> RTCPeerConnection:
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in ice_servers or []
    ]
    return RTCPeerConnection(RTCConfiguration(iceServers=servers))
