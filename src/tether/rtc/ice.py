"""Which addresses and servers a peer connection's ICE uses.

- aioice gathers host candidates on every interface but loopback. Tether's peers are
  often on one machine (``tether up``, tests), so ICE can be kept to loopback: the
  ``ice_hosts`` setting, "auto" (loopback when every peer is on this machine),
  "loopback" or "all"; ``tether.rtc.adapter`` puts ``loopback_host_addresses`` into
  aioice.
- aiortc falls back to a public STUN server when given no ICE servers; we never want
  a hidden network dependency, so peer connections get an explicit list.
- Whether a host is this machine (``is_loopback_host``) is also what the studio's
  guard asks of a request's Host header: one answer for both."""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

IceHosts = Literal["loopback", "all"]
ICE_HOSTS_MODES = ("auto", "loopback", "all")
# Names that mean this machine without being an address.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is this
    machine's loopback."""
    host = host.strip("[]").lower().rstrip(".")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


def resolve_ice_mode(mode: str, peer_hosts: list[str]) -> IceHosts:
    """'auto' becomes 'loopback' when every peer host is on this machine, else 'all'."""
    if mode not in ICE_HOSTS_MODES:
        raise ValueError(f"ICE hosts mode must be auto, loopback or all, got {mode!r}")
    if mode == "auto":
        return "loopback" if all(is_loopback_host(h) for h in peer_hosts) else "all"
    return "loopback" if mode == "loopback" else "all"


def loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """Stands in for aioice's ``get_host_addresses``: loopback only."""
    return ["127.0.0.1"] if use_ipv4 else ["::1"]


def create_peer_connection(ice_servers: list[dict] | None = None) -> RTCPeerConnection:
    """A peer connection with exactly these ICE servers (none: no STUN at all)."""
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in ice_servers or []
    ]
    return RTCPeerConnection(RTCConfiguration(iceServers=servers))
