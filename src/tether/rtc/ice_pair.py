"""Which ICE candidate pair a peer connection uses, and which candidates it gathered:
aiortc keeps the nominated pair inside aioice's connection, not in its stats. Read it
while the peer is connected (closing clears it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiortc import RTCPeerConnection


@dataclass(frozen=True)
class IcePair:
    local_type: str  # host, srflx, prflx or relay
    remote_type: str
    transport: str  # udp or tcp (the candidates'; a relay's TURN leg may be either)
    local_address: str
    remote_address: str

    @property
    def kind(self) -> str:
        """The pair's kind in one word: relay when either end relays, else srflx when
        either end is server-reflexive (NAT), else host (direct)."""
        types = {self.local_type, self.remote_type}
        for kind in ("relay", "srflx", "prflx"):
            if kind in types:
                return kind
        return "host"


def _ice_transports(pc: RTCPeerConnection) -> list[Any]:
    dtls = [t.receiver.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        dtls.append(pc.sctp.transport)
    return [getattr(d, "transport", None) for d in dtls if d is not None]


def selected_pair(pc: RTCPeerConnection) -> IcePair | None:
    """The nominated pair of the peer's (bundled) transport; None before ICE connects."""
    for ice in _ice_transports(pc):
        connection = getattr(ice, "_connection", None)
        nominated = getattr(connection, "_nominated", None) or {}
        pair = nominated.get(1) or next(iter(nominated.values()), None)
        if pair is None:
            continue
        local, remote = pair.local_candidate, pair.remote_candidate
        return IcePair(
            local_type=str(local.type),
            remote_type=str(remote.type),
            transport=str(local.transport).lower(),
            local_address=f"{local.host}:{local.port}",
            remote_address=f"{remote.host}:{remote.port}",
        )
    return None


def local_candidate_types(pc: RTCPeerConnection) -> set[str]:
    """The kinds of candidate this peer gathered (``relay`` means TURN allocated one)."""
    kinds: set[str] = set()
    for ice in _ice_transports(pc):
        gatherer = getattr(ice, "iceGatherer", None)
        if gatherer is not None:
            kinds.update(str(c.type) for c in gatherer.getLocalCandidates())
    return kinds
