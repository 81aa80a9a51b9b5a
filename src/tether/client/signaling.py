"""The studio's signaling client: one WebSocket to the worker's /ws, with
request/reply matching by request_id."""

from __future__ import annotations

import asyncio
import errno
import itertools
import json
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.protocol import State

from tether import protocol
from tether.client.tls import client_context
from tether.tasks import TaskOwner
from tether.timing import (
    CLOSE_TIMEOUT_S,
    ICE_REFRESH_S,
    KEEPALIVE_S,
    OPEN_TIMEOUT_S,
    PING_TIMEOUT_S,
)

logger = logging.getLogger(__name__)


class SignalingError(Exception):
    """The worker could not be reached, refused us, or answered with an error."""


class AuthError(SignalingError):
    pass


class NotAWorkerError(SignalingError):
    """Something answers at that URL, but it is not a Tether worker: retrying won't help."""


class ErrorReply(SignalingError):
    """The worker answered a request with an ``error``; ``code`` says which (e.g. ``busy``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"worker: {message}")
        self.code = code


def signaling_url(worker_url: str) -> str:
    """Accept http(s)://host:port, ws(s)://host:port or a full .../ws URL."""
    try:
        parts = urlsplit(worker_url.strip())
        _ = parts.port  # a bad port raises here, not later on the event loop
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise SignalingError(
            f"worker URL must look like http://host:port or ws://host:port/ws, got {worker_url!r}"
        )
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path if parts.path not in ("", "/") else "/ws"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def host_port(worker_url: str) -> tuple[str, int]:
    parts = urlsplit(signaling_url(worker_url))
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    return parts.hostname or "", port


def _describe_close(code: int | None, reason: str) -> str:
    if code is None:
        return "signaling socket dropped (no close frame: network or worker gone)"
    if code == protocol.AUTH_FAILED_CLOSE_CODE:
        return f"the worker rejected the token ({reason or 'authentication failed'})"
    return f"signaling socket closed (code {code}{': ' + reason if reason else ''})"


class _connect_here(connect):
    """No redirects: the token goes to the worker it was configured for, nowhere else."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


class SignalingClient:
    def __init__(
        self,
        worker_url: str,
        token: str | None,
        keepalive_s: float = KEEPALIVE_S,
        open_timeout_s: float = OPEN_TIMEOUT_S,
    ) -> None:
        self.url = signaling_url(worker_url)
        self._keepalive_s = keepalive_s
        self._open_timeout_s = open_timeout_s
        self._token = token
        self._ws: ClientConnection | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._tasks = TaskOwner("signaling")
        self.ready: dict[str, Any] = {}
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.on_close: Callable[[str], None] | None = None
        self.keepalive_failed = False  # closed because its pings went unanswered
        self._ice: tuple[float, list[dict[str, Any]]] | None = None
        # Messages the worker sends unasked (e.g. ``draining``), not replies to a request.
        self.on_notice: Callable[[dict[str, Any]], None] | None = None

    @property
    def connection_id(self) -> str | None:
        return self.ready.get("connection_id")

    @property
    def instance_id(self) -> str | None:
        return self.ready.get("instance_id")

    @property
    def is_open(self) -> bool:
        # A socket whose keepalive failed is closing: no use for a new request.
        return self._ws is not None and not self.closed.is_set() and self._ws.state is State.OPEN

    async def connect(self, wait_s: float) -> dict[str, Any]:
        """Open the socket and wait for the worker's ``ready``. The host name is resolved
        anew on every call (the worker may have moved)."""
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        open_s = min(wait_s, self._open_timeout_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        try:
            async with asyncio.timeout(open_s):
                self._ws = await _connect_here(
                    self.url,
                    ssl=client_context(self.url),
                    additional_headers=headers,
                    open_timeout=None,
                    close_timeout=CLOSE_TIMEOUT_S,
                    max_size=2**22,
                    ping_interval=self._keepalive_s,
                    ping_timeout=PING_TIMEOUT_S,
                )
            async with asyncio.timeout_at(deadline):
                first = json.loads(await self._ws.recv())
        except TimeoutError:
            await self._abort()
            waited = open_s if self._ws is None else wait_s
            raise SignalingError(
                f"no answer from the worker at {urlsplit(self.url).netloc} within {waited:g}s"
            ) from None
        except ConnectionClosed as exc:
            await self._abort()
            rcvd = exc.rcvd
            reason = _describe_close(rcvd.code if rcvd else None, rcvd.reason if rcvd else "")
            cls = AuthError if rcvd and rcvd.code == protocol.AUTH_FAILED_CLOSE_CODE else None
            raise (cls or SignalingError)(reason) from None
        except json.JSONDecodeError:
            await self._abort()
            raise NotAWorkerError(
                f"{self.url} is not a Tether worker (its first message is not JSON)"
            ) from None
        except (OSError, InvalidHandshake, InvalidURI) as exc:
            await self._abort()
            where = urlsplit(self.url).netloc
            # An HTTP server that refuses the WebSocket (404, 400...) is not a worker; a
            # 5xx may be a proxy in front of a worker that is restarting.
            cls = (
                NotAWorkerError
                if isinstance(exc, InvalidStatus) and exc.response.status_code < 500
                else SignalingError
            )
            raise cls(f"cannot reach the worker at {where}: {_plain(exc)}") from None
        except (ValueError, RecursionError):
            await self._abort()
            raise NotAWorkerError(f"not a Tether worker at {self.url}: it sent no JSON") from None
        if not isinstance(first, dict) or first.get("type") != "ready":
            await self._abort()
            what = first.get("type") if isinstance(first, dict) else type(first).__name__
            what = str(what)[:40]
            raise NotAWorkerError(
                f"{self.url} is not a Tether worker: it sent {what!r}, not 'ready'"
            )
        self.ready = first
        self._tasks.spawn(self._read(), "read")
        return first

    async def _abort(self) -> None:
        if self._ws is not None:
            self._ws.transport.abort()

    async def _read(self) -> None:
        assert self._ws is not None
        reason = "signaling socket closed"
        try:
            async for raw in self._ws:
                try:
                    msg = json.loads(raw)
                except (ValueError, RecursionError):
                    logger.warning("worker sent a message that is not JSON")
                    continue
                if not isinstance(msg, dict):
                    continue
                future = self._pending.pop(str(msg.get("request_id")), None)
                if future is not None and not future.done():
                    future.set_result(msg)
                elif msg.get("request_id") is None and self.on_notice is not None:
                    self.on_notice(msg)
            reason = _describe_close(self._ws.close_code, self._ws.close_reason or "")
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            reason = _describe_close(rcvd.code if rcvd else None, rcvd.reason if rcvd else "")
            # Our keepalive gave up (we sent 1011, heard nothing): the path went quiet,
            # not the worker closed (that is a FIN or a close frame).
            if rcvd is None and exc.sent is not None and exc.sent.code == 1011:
                self.keepalive_failed = True
                reason = "signaling socket: no answer to its keepalive (network)"
        finally:
            self._closed(reason)

    def _closed(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.closed.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SignalingError(reason))
        self._pending.clear()
        if self.on_close is not None:
            self.on_close(reason)

    async def request(self, message: dict[str, Any], wait_s: float) -> dict[str, Any]:
        """Send a request and return its reply; an ``error`` reply raises SignalingError."""
        if self._ws is None or self.closed.is_set():
            raise SignalingError(self.close_reason or "signaling socket is not open")
        request_id = f"r{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        # The socket may close (failing this future) while we are still sending, or after
        # we gave up waiting: either way the error is ours to report, not asyncio's.
        future.add_done_callback(_retrieve)
        self._pending[request_id] = future
        try:
            await self._ws.send(protocol.json_dumps({**message, "request_id": request_id}))
            async with asyncio.timeout(wait_s):
                reply = await future
        except TimeoutError:
            raise SignalingError(
                f"worker did not answer {message['type']!r} within {wait_s:g}s"
            ) from None
        except ConnectionClosed:
            raise SignalingError(self.close_reason or "signaling socket closed") from None
        finally:
            self._pending.pop(request_id, None)
        if reply.get("type") == "error":
            raise ErrorReply(str(reply.get("code", "error")), str(reply.get("message", "error")))
        return reply

    async def ice_servers(self, wait_s: float = 2.0) -> list[dict[str, Any]]:
        """The worker's ICE servers (STUN, TURN with fresh credentials); none if it has
        none or does not answer in time (host candidates may still connect)."""
        now = asyncio.get_running_loop().time()
        if self._ice is not None and now - self._ice[0] < ICE_REFRESH_S:
            return self._ice[1]
        try:
            reply = await self.request({"type": "get_ice_servers"}, wait_s)
        except SignalingError as exc:
            logger.info("no ICE servers from the worker: %s", exc)
            return []
        servers = [
            s for s in reply.get("ice_servers") or [] if isinstance(s, dict) and s.get("urls")
        ]
        self._ice = (now, servers)
        return servers

    async def answers(self, wait_s: float) -> bool:
        """Does the worker answer a ping on this socket within ``wait_s``? A socket to
        an address that vanished looks open until its keepalive fails (seconds)."""
        if not self.is_open:
            return False
        assert self._ws is not None
        try:
            async with asyncio.timeout(wait_s):
                await (await self._ws.ping())
        except (TimeoutError, ConnectionClosed):
            return False
        return True

    async def send_raw(self, text: str) -> None:
        """Send text as is (tests use it for malformed messages)."""
        assert self._ws is not None
        await self._ws.send(text)

    async def abort(self) -> None:
        """Drop the socket without a closing handshake, as a network failure would."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def close(self) -> None:
        self.on_close = None
        if self._ws is not None:
            if self._ws.state is State.OPEN:
                await self._ws.close()  # bounded by CLOSE_TIMEOUT_S
            else:
                self._ws.transport.abort()  # already failing: no handshake to wait for
        await self._tasks.close()
        self._closed("closed by us")


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _plain(exc: BaseException) -> str:
    """An OS or handshake error in words a user can act on."""
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "connection refused (is the worker running on that port?)"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "no route to the host (network down?)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS: the worker's certificate is not trusted ({exc.verify_message}); "
            "for a private CA set TETHER_CA_FILE"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or _short(exc)}"
    if isinstance(exc, InvalidHandshake):
        return f"not a Tether worker, or it refused the WebSocket ({_short(exc)})"
    return _short(exc)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
