"""The one place that reaches into aiortc/aioice internals.

- aioice gathers host candidates on every interface but loopback. Tether's peers are
  often on one machine (``tether up``, tests), so we can restrict ICE to loopback.
- aiortc falls back to a public STUN server when given no ICE servers; we never want
  a hidden network dependency, so peer connections get an explicit list.
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

logger = logging.getLogger(__name__)

_original_get_host_addresses = aioice.ice.get_host_addresses


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


def create_peer_connection(ice_servers: list[dict] | None = None) -> RTCPeerConnection:
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in ice_servers or []
    ]
    return RTCPeerConnection(RTCConfiguration(iceServers=servers))
