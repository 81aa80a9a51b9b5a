"""The studio answers only to its user: a pure-ASGI guard in front of every route.

A local server is reachable by every page the user opens, so each request proves it
comes from the studio's own page or a local script before the app sees it:

- ``Host`` must be a name the studio serves (loopback names, its bound address,
  ``--allow-host``): DNS rebinding gets 403.
- State-changing requests and the event stream refuse a foreign ``Origin`` (403).
- Bodies are JSON (415 otherwise), at most ``MAX_BODY_BYTES`` (413, counted while
  reading), parsed once here with bounded depth so no body can block the loop.
- With a studio token (required off loopback) every request but ``/health`` carries
  it: ``Authorization: Bearer`` for scripts, a cookie for the page (set once from the
  ``/?token=`` link printed at start, then redirected away so the URL drops it).
- Every answer carries security headers (CSP with ``frame-ancestors 'none'``)."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tether import safe_json
from tether.rtc.ice import is_loopback_host
from tether.studio.host_header import is_ip_literal, split_host
from tether.timing import BODY_TIMEOUT_S

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 1024 * 1024
COOKIE = "tether_studio_token"
EVENTS_PATH = "/api/v1/cloud/events"
OPEN_PATHS = frozenset({"/health"})  # liveness only: no state, no secrets
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(self), microphone=(), geolocation=()"),
]


@dataclass
class GuardPolicy:
    bound_host: str = "127.0.0.1"
    allow_hosts: list[str] = field(default_factory=list)
    token: str | None = None

    def host_allowed(self, header: str | None) -> bool:
        if not header:
            return False
        host = split_host(header)
        if not host:
            return False
        if "*" in self.allow_hosts or is_loopback_host(host):
            return True
        if host in (h.lower().rstrip(".") for h in self.allow_hosts):
            return True
        bound = self.bound_host.strip("[]").lower()
        if host == bound:
            return True
        # Bound to every address: any address literal is ours; a rebinding needs a name.
        return bound in ("0.0.0.0", "::", "") and is_ip_literal(host)

    def token_ok(self, presented: str | None) -> bool:
        if self.token is None:
            return True
        return presented is not None and hmac.compare_digest(
            presented.encode(), self.token.encode()
        )


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        out.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def _cookie(header: str | None, name: str) -> str | None:
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def same_origin(origin: str, host_header: str, scheme: str) -> bool:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    web_scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return parts.scheme == web_scheme and parts.netloc.lower() == host_header.strip().lower()


async def _reply(
    send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"message": message, "detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += extra or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class StudioGuard:
    def __init__(self, app: ASGIApp, policy: GuardPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        secure = scope.get("scheme") in ("https", "wss")

        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if api:  # status and parameters: never kept by a cache
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers + SECURITY_HEADERS}
            await send(message)

        if scope["type"] == "websocket":  # the studio serves none: refuse before routing
            await send({"type": "websocket.close", "code": 1008})
            return
        await self._http(scope, receive, send_with_headers, secure)

    async def _http(self, scope: Scope, receive: Receive, send: Send, secure: bool) -> None:
        headers = _headers(scope)
        host = headers.get("host")
        if not self.policy.host_allowed(host):
            await _reply(
                send,
                403,
                f"this studio does not serve the host name {split_host(host or '')!r} "
                "(start it with --allow-host NAME to serve it)",
            )
            return
        assert host is not None
        path, method = scope["path"], scope["method"]
        if self.policy.token is not None and path not in OPEN_PATHS:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if path == "/" and method == "GET" and "token" in query:
                await self._login(send, query["token"][0], secure)
                return
            presented = _bearer(headers.get("authorization")) or _cookie(
                headers.get("cookie"), COOKIE
            )
            if not self.policy.token_ok(presented):
                await _reply(
                    send,
                    401,
                    "this studio needs its token: open the link printed at start "
                    "(…/?token=…), or send 'Authorization: Bearer <TETHER_STUDIO_TOKEN>'",
                )
                return
        origin = headers.get("origin")
        guarded = method not in SAFE_METHODS or path == EVENTS_PATH
        if guarded and origin is not None and not same_origin(origin, host, scope["scheme"]):
            await _reply(send, 403, "cross-origin request refused")
            return
        if method in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        body = await self._read_body(scope, receive, send, headers)
        if body is None:
            return

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _login(self, send: Send, presented: str, secure: bool) -> None:
        if not self.policy.token_ok(presented):
            await _reply(send, 401, "wrong studio token")
            return
        assert self.policy.token is not None
        cookie = f"{COOKIE}={self.policy.token}; Path=/; HttpOnly; SameSite=Strict"
        headers = [
            (b"location", b"/"),
            (b"set-cookie", (cookie + ("; Secure" if secure else "")).encode()),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _read_body(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> bytes | None:
        """The whole body, or None after answering 4xx. Counted as it arrives: a body
        past the cap is refused without being held in memory."""
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await _reply(send, 400, "bad Content-Length")
                return None
            if int(declared) > MAX_BODY_BYTES:
                await _reply(send, 413, f"request body is larger than {MAX_BODY_BYTES} bytes")
                return None
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        await _reply(
                            send, 413, f"request body is larger than {MAX_BODY_BYTES} bytes"
                        )
                        return None
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await _reply(send, 408, f"request body not received within {BODY_TIMEOUT_S:g}s")
            return None
        body = b"".join(chunks)
        if not body:
            return body
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json" and not ctype.endswith("+json"):
            await _reply(send, 415, "the body must be JSON (Content-Type: application/json)")
            return None
        try:
            safe_json.loads(body, MAX_BODY_BYTES)
        except safe_json.BadJson as exc:
            await _reply(send, 422, f"body: {exc}")
            return None
        return body
