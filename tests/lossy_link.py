"""A lossy loopback link for two aiortc peers: a UDP relay that drops and reorders
RTP media packets (ICE, DTLS and RTCP pass untouched). The peers' SDP is rewritten
so each sends to the relay instead of to the other."""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from dataclasses import dataclass, field

_CANDIDATE = re.compile(r"(a=candidate:\S+ \d+ udp \d+ 127\.0\.0\.1 )(\d+)( typ host)")


def is_rtp_media(data: bytes) -> bool:
    return len(data) >= 12 and 128 <= data[0] <= 191 and 96 <= (data[1] & 0x7F) <= 127


@dataclass
class LinkStats:
    media: int = 0
    dropped: int = 0
    reordered: int = 0
    payload_types: Counter[int] = field(default_factory=Counter)  # media packets sent

    def count(self, payload_types: set[int]) -> int:
        return sum(self.payload_types[pt] for pt in payload_types)


def rtx_payload_types(sdp: str) -> set[int]:
    """The payload types that carry resent packets (RFC 4588), from an SDP."""
    return {int(pt) for pt in re.findall(r"a=rtpmap:(\d+) rtx/", sdp)}


class _Side(asyncio.DatagramProtocol):
    def __init__(self, link: LossyLink, name: str) -> None:
        self.link, self.name = link, name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.link.forward(self.name, data)


@dataclass
class LossyLink:
    loss: float = 0.0
    reorder: float = 0.0
    seed: int = 1
    stats: LinkStats = field(default_factory=LinkStats)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._real: dict[str, tuple[str, int]] = {}
        self._sides: dict[str, _Side] = {}
        self._held: dict[str, bytes | None] = {"a": None, "b": None}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for name in ("a", "b"):
            _, side = await loop.create_datagram_endpoint(
                lambda n=name: _Side(self, n), local_addr=("127.0.0.1", 0)
            )
            self._sides[name] = side

    def _port(self, name: str) -> int:
        transport = self._sides[name].transport
        assert transport is not None
        return transport.get_extra_info("sockname")[1]

    def _rewrite(self, sdp: str, peer: str, relay_side: str) -> str:
        match = _CANDIDATE.search(sdp)
        assert match, "no loopback host candidate in the SDP"
        self._real[peer] = ("127.0.0.1", int(match.group(2)))
        port = self._port(relay_side)
        return _CANDIDATE.sub(lambda m: f"{m.group(1)}{port}{m.group(3)}", sdp)

    def rewrite_offer(self, sdp: str) -> str:
        """Peer A's offer, as B should see it: A lives at the relay's side b."""
        return self._rewrite(sdp, "a", "b")

    def rewrite_answer(self, sdp: str) -> str:
        """Peer B's answer, as A should see it: B lives at the relay's side a."""
        return self._rewrite(sdp, "b", "a")

    def forward(self, arrived_at: str, data: bytes) -> None:
        # what arrives at side a came from A and goes out of side b to B, and back
        out_side, target = ("b", "b") if arrived_at == "a" else ("a", "a")
        if target not in self._real:
            return
        transport = self._sides[out_side].transport
        assert transport is not None
        if is_rtp_media(data):
            self.stats.media += 1
            self.stats.payload_types[data[1] & 0x7F] += 1
            if self._rng.random() < self.loss:
                self.stats.dropped += 1
                return
            held = self._held[arrived_at]
            if held is None and self._rng.random() < self.reorder:
                self._held[arrived_at] = data  # goes out after the next packet
                self.stats.reordered += 1
                return
            transport.sendto(data, self._real[target])
            if held is not None:
                self._held[arrived_at] = None
                transport.sendto(held, self._real[target])
            return
        transport.sendto(data, self._real[target])

    def close(self) -> None:
        for side in self._sides.values():
            if side.transport is not None:
                side.transport.close()
