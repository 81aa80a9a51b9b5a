"""The studio's signaling client: one WebSocket to the worker's /ws, with
request/reply matching by request_id."""

from __future__ import annotations

import asyncio
import errno
import itertools
import json
import logging
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from tether import protocol
from tether.tasks import TaskOwner

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
    parts = urlsplit(worker_url.strip())
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
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


class SignalingClient:
    def __init__(self, worker_url: str, token: str | None, keepalive_s: float = 2.0) -> None:
        self.url = signaling_url(worker_url)
        # WebSocket pings: a silent worker closes the socket within ~2 keepalive periods.
        self._keepalive_s = keepalive_s
        self._token = token
        self._ws: ClientConnection | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._tasks = TaskOwner("signaling")
        self.ready: dict[str, Any] = {}
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.on_close: Callable[[str], None] | None = None
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
        return self._ws is not None and not self.closed.is_set()

    async def connect(self, wait_s: float) -> dict[str, Any]:
        """Open the socket and wait for the worker's ``ready``."""
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            async with asyncio.timeout(wait_s):
                self._ws = await connect(
                    self.url,
                    additional_headers=headers,
                    open_timeout=None,
                    max_size=2**22,
                    ping_interval=self._keepalive_s,
                    ping_timeout=self._keepalive_s * 1.5,
                )
                first = json.loads(await self._ws.recv())
        except TimeoutError:
            await self._abort()
            raise SignalingError(
                f"no answer from the worker at {self.url} within {wait_s:g}s"
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
        if not isinstance(first, dict) or first.get("type") != "ready":
            await self._abort()
            what = first.get("type") if isinstance(first, dict) else type(first).__name__
            raise NotAWorkerError(
                f"{self.url} is not a Tether worker: it sent {what!r}, not 'ready'"
            )
        self.ready = first
        self._tasks.spawn(self._read(), "read")
        return first

    async def _abort(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def _read(self) -> None:
        assert self._ws is not None
        reason = "signaling socket closed"
        try:
            async for raw in self._ws:
                try:
                    msg = json.loads(raw)
                except json.JSONDecodeError:
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
            await self._ws.close()
        await self._tasks.close()
        self._closed("closed by us")


def _plain(exc: BaseException) -> str:
    """An OS or handshake error in words a user can act on."""
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "connection refused (is the worker running on that port?)"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "no route to the host (network down?)"
    if isinstance(exc, InvalidHandshake):
        return f"not a Tether worker, or it refused the WebSocket ({_short(exc)})"
    return _short(exc)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
