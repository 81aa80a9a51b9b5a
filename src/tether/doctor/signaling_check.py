"""Check 3, ``signaling``: the WebSocket upgrade at /ws, the token, the protocol (the
worker's ``ready``), its version, and whether it has room: its sessions against its
maximum, and whether it is draining. The token is only ever sent, never shown."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from tether import __version__, protocol
from tether.client.signaling import (
    AuthError,
    NotAWorkerError,
    SignalingClient,
    SignalingError,
)
from tether.client.tls import client_context
from tether.doctor.report import Check
from tether.doctor.target import where
from tether.doctor.tls_check import speaks_tls

NAME = "signaling"
OWN_SLOT = "own_stream_holds_the_slot"  # a number of the check: no test session fits
SIGNALING_TIMEOUT_S = 5.0
HTTP_TIMEOUT_S = 3.0
TOKEN_SETTINGS = "TETHER_WORKER_TOKEN (or --token-file)"


def http_base(signaling_url: str) -> str:
    parts = urlsplit(signaling_url)
    return f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"


async def open_signaling(
    client: SignalingClient, has_token: bool, timeout_s: float = SIGNALING_TIMEOUT_S
) -> tuple[Check | None, protocol.Ready | None]:
    """Open the socket; a Check only when it failed."""
    try:
        ready = await client.connect(timeout_s)
    except AuthError as exc:
        fix = (
            f"the worker's token differs from the one given here: set {TOKEN_SETTINGS} to the "
            "worker's TETHER_WORKER_TOKEN"
            if has_token
            else f"the worker needs a token: set {TOKEN_SETTINGS}"
        )
        return Check.fail(NAME, f"the worker rejected the token ({_reason(exc)})", fix), None
    except NotAWorkerError as exc:
        return Check.fail(
            NAME,
            str(exc),
            "the URL does not point at a Tether worker: check its host, port and path "
            "(a proxy in between must pass WebSocket upgrades on /ws)",
        ), None
    except SignalingError as exc:
        return Check.fail(
            NAME,
            f"no signaling with the worker: {exc}",
            "the port answers but the worker does not: check that a Tether worker (not "
            "another server) listens there, and that a proxy passes WebSocket upgrades",
        ), None
    return None, ready


async def maybe_https(failed: Check, url: str) -> Check:
    """A plain ws:// socket that failed to a port that speaks TLS: the URL wants https."""
    parts = urlsplit(url)
    if parts.scheme != "ws" or "rejected the token" in failed.detail:
        return failed
    host, port = parts.hostname or "", parts.port or 80
    if not await speaks_tls(host, port, HTTP_TIMEOUT_S):
        return failed
    https = urlunsplit(("https", parts.netloc, "", "", ""))
    return Check.fail(
        NAME,
        f"{where(host, port)} answers with TLS (it is an https worker), but the URL says http",
        f"use https:// in the worker URL: {https}",
    )


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text.split("(", 1)[1].rstrip(")") if "(" in text else text


async def read_worker(url: str, token: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The worker's /health and /api/v1/load (with the token); empty where unreadable."""
    base = http_base(url)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    verify: Any = client_context(url) or False
    health: dict[str, Any] = {}
    load: dict[str, Any] = {}
    async with httpx.AsyncClient(verify=verify, timeout=HTTP_TIMEOUT_S) as http:
        try:
            reply = await http.get(f"{base}/health")
            if reply.status_code == 200:
                health = reply.json()
            reply = await http.get(f"{base}/api/v1/load", headers=headers)
            if reply.status_code == 200:
                load = reply.json()
        except (httpx.HTTPError, ValueError):
            pass
    return health, load


def judge_signaling(
    ready: protocol.Ready, health: dict[str, Any], load: dict[str, Any], own_sessions: int = 0
) -> Check:
    """The socket is open and the token taken: now the worker's version and its room."""
    version = health.get("version")
    sessions, most = load.get("sessions"), load.get("max_sessions")
    draining = bool(load.get("draining"))
    numbers: dict[str, Any] = {
        "worker_version": version,
        "sessions": sessions,
        "max_sessions": most,
        "draining": draining,
        "pipelines": [str(p.get("name")) for p in ready.pipelines],
    }
    room = f"{sessions} of {most} sessions in use" if most else "its load is unknown"
    detail = f"WebSocket up, token accepted, protocol ok (worker {version or '?'}), {room}"
    if draining:
        return Check.fail(
            NAME,
            f"{detail}; the worker is draining (shutting down): it takes no new sessions",
            "wait for the worker to restart, or point the studio at another worker",
            **numbers,
        )
    if isinstance(sessions, int) and isinstance(most, int) and sessions >= most:
        if own_sessions and sessions - own_sessions < most:
            return Check.warn(
                NAME,
                f"{detail}: the slot is your own stream's, so no test session fits",
                "stop the stream to test the media path, or start the worker with --max-sessions 2",
                **numbers,
                **{OWN_SLOT: True},
            )
        return Check.fail(
            NAME,
            f"{detail}: the worker is full, a new session would be refused (busy)",
            "wait for a session to end (one that just ended, a test's too, holds its slot "
            "until the worker notices its peer is gone: up to about a minute when its ICE "
            "never connected), raise the worker's --max-sessions (TETHER_MAX_SESSIONS), or "
            "use another worker",
            **numbers,
        )
    if version and version != __version__:
        return Check.warn(
            NAME,
            f"{detail}; the worker runs Tether {version}, this is {__version__}",
            "run the same Tether version on both ends (pip install -U tether on the older)",
            **numbers,
        )
    return Check.ok(NAME, detail, **numbers)
