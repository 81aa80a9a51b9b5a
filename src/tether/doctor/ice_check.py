"""Check 4, ``ice``: a test session with the worker, and which ICE candidate pair
connects it: host (direct), srflx (through a NAT, found by STUN) or relay (through
TURN), over UDP or TCP. When none connects, say why: with TURN configured, whether the
relay was allocated at all; without it, that UDP looks blocked and TURN is needed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tether.client.signaling import ErrorReply, SignalingClient, SignalingError
from tether.client.worker_peer import WorkerPeer
from tether.doctor.report import Check
from tether.rtc.ice_pair import local_candidate_types, selected_pair

NAME = "ice"
OFFER_TIMEOUT_S = 8.0  # gathering (STUN/TURN) and the worker's answer
ICE_TIMEOUT_S = 8.0  # checks: a path that connects does so in well under a second or two
TURN_SETTINGS = (
    "TETHER_TURN_URLS=turn:HOST:3478 and TETHER_TURN_SECRET=SECRET on the worker (or "
    "TETHER_ICE_SERVERS with a turn: URL and its credentials)"
)


def turn_urls(servers: list[dict[str, Any]]) -> list[str]:
    urls: list[str] = []
    for server in servers:
        found = server.get("urls") or []
        urls += [found] if isinstance(found, str) else [str(u) for u in found]
    return [u for u in urls if u.startswith(("turn:", "turns:"))]


async def check_ice(
    peer: WorkerPeer,
    signaling: SignalingClient,
    parameters: dict[str, Any],
    offer_timeout_s: float = OFFER_TIMEOUT_S,
    ice_timeout_s: float = ICE_TIMEOUT_S,
) -> Check:
    servers = await signaling.ice_servers()
    turn = turn_urls(servers)
    numbers: dict[str, Any] = {"ice_servers": len(servers), "turn_configured": bool(turn)}
    started = time.monotonic()
    try:
        async with asyncio.timeout(offer_timeout_s):
            await peer.start(signaling, parameters, 1, wait_s=offer_timeout_s)
    except ErrorReply as exc:
        return _refused(exc, numbers)
    except (SignalingError, TimeoutError) as exc:
        return _no_session(peer, turn, str(exc), offer_timeout_s, numbers)
    if not await peer.wait_connected(ice_timeout_s):
        return _not_connected(peer, turn, ice_timeout_s, numbers)
    took_ms = (time.monotonic() - started) * 1000
    pair = selected_pair(peer.pc)
    if pair is None:
        return Check.ok(NAME, f"connected in {took_ms:.0f} ms", connect_ms=round(took_ms))
    via = f"relay (TURN: {', '.join(turn)})" if pair.kind == "relay" else pair.kind
    numbers |= {
        "pair": pair.kind,
        "transport": pair.transport,
        "local": f"{pair.local_type} {pair.local_address}",
        "remote": f"{pair.remote_type} {pair.remote_address}",
        "connect_ms": round(took_ms),
    }
    return Check.ok(
        NAME,
        f"connected in {took_ms:.0f} ms over {pair.transport.upper()}: {via} pair "
        f"{pair.local_address} -> {pair.remote_address}",
        **numbers,
    )


def _no_session(
    peer: WorkerPeer, turn: list[str], why: str, waited_s: float, numbers: dict[str, Any]
) -> Check:
    """The offer did not become a session: gathering (STUN/TURN) never finished here or
    at the worker, or the worker did not answer in time."""
    gathered = local_candidate_types(peer.pc)
    numbers["local_candidates"] = sorted(gathered)
    if turn and "relay" not in gathered:
        return Check.fail(
            NAME,
            f"no test session within {waited_s:g} s: the TURN server ({', '.join(turn)}) "
            "gave no relay address (the worker gathers through it too, and did not answer)",
            "check that the TURN server runs and that both ends reach it (UDP or TCP port "
            "3478; ?transport=tcp in TETHER_TURN_URLS for TCP), and that the worker's "
            "TETHER_TURN_SECRET matches the server's static-auth-secret",
            **numbers,
        )
    if peer.pc.iceGatheringState != "complete":
        return Check.fail(
            NAME,
            f"gathering ICE candidates did not finish in {waited_s:g} s",
            "check the STUN servers in the worker's TETHER_ICE_SERVERS: both ends must reach them",
            **numbers,
        )
    late = why or f"not within {waited_s:g} s"
    return Check.fail(
        NAME,
        f"the worker did not answer the test session's offer: {late}",
        "check the worker's log; a worker that answers signaling but not offers may be overloaded",
        **numbers,
    )


def _refused(exc: ErrorReply, numbers: dict[str, Any]) -> Check:
    if exc.code in ("busy", "draining"):
        return Check.fail(
            NAME,
            f"the worker refused a test session ({exc.code}): {exc}",
            "wait until the worker has room, or raise its --max-sessions",
            **numbers,
        )
    return Check.fail(
        NAME,
        f"the worker refused the test session: {exc}",
        "check the worker's log for why it refused the offer",
        **numbers,
    )


def _not_connected(
    peer: WorkerPeer, turn: list[str], waited_s: float, numbers: dict[str, Any]
) -> Check:
    gathered = local_candidate_types(peer.pc)
    numbers["local_candidates"] = sorted(gathered)
    if turn and "relay" not in gathered:
        return Check.fail(
            NAME,
            f"no candidate pair connected in {waited_s:g} s, and the TURN server "
            f"({', '.join(turn)}) gave no relay address",
            "this machine cannot use the TURN server: check that it is reachable from here "
            "(UDP or TCP port 3478, or use ?transport=tcp in its URL), and that the "
            "worker's TETHER_TURN_SECRET matches the server's static-auth-secret",
            **numbers,
        )
    if turn:
        return Check.fail(
            NAME,
            f"no candidate pair connected in {waited_s:g} s, even through the TURN relay "
            f"({', '.join(turn)})",
            "the relay was allocated here but the worker cannot reach it: check that the "
            "worker reaches the TURN server, and the server's relay ports",
            **numbers,
        )
    return Check.fail(
        NAME,
        f"no candidate pair connected in {waited_s:g} s: UDP between here and the worker "
        "looks blocked (signaling over TCP works), and the worker offers no TURN server",
        "TURN is needed: run a TURN server (e.g. coturn) that both ends reach and set "
        f"{TURN_SETTINGS}; or open UDP between this network and the worker",
        **numbers,
    )
