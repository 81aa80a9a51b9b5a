"""The studio's signaling client: one WebSocket to the worker's /ws, with
request/reply matching by request_id. What the worker says arrives as
``tether.protocol`` models (``parse_worker_message``): its ``ready``, the replies, and
the notices it sends unasked (``draining``)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.protocol import State

from tether import protocol
from tether.client.signaling_errors import (
    AuthError,
    ErrorReply,
    NotAWorkerError,
    SignalingError,
    describe_close,
    expect_ready,
    open_failure,
)
from tether.client.tls import client_context
from tether.tasks import TaskOwner
from tether.timing import (
    CLOSE_TIMEOUT_S,
    ICE_REFRESH_S,
    KEEPALIVE_S,
    OPEN_TIMEOUT_S,
    PING_TIMEOUT_S,
)

__all__ = [
    "AuthError",
    "ErrorReply",
    "NotAWorkerError",
    "SignalingClient",
    "SignalingError",
    "host_port",
    "signaling_url",
]

logger = logging.getLogger(__name__)

Reply = TypeVar("Reply", protocol.Answer, protocol.Pong, protocol.IceServersReply)
# What can go wrong while the socket opens and the worker's ``ready`` comes.
_OPEN_FAILURES = (TimeoutError, ConnectionClosed, OSError, InvalidHandshake, InvalidURI)


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
        self._pending: dict[str, asyncio.Future[protocol.WorkerReply]] = {}
        self._ids = itertools.count(1)
        self._tasks = TaskOwner("signaling")
        self._ready: protocol.Ready | None = None
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.on_close: Callable[[str], None] | None = None
        self.keepalive_failed = False  # closed because its pings went unanswered
        self._ice: tuple[float, list[dict[str, Any]]] | None = None
        # What the worker says unasked (``draining``), not a reply to a request.
        self.on_notice: Callable[[protocol.Notice], None] | None = None

    @property
    def ready(self) -> protocol.Ready:
        """The worker's ``ready``: who answered, and its pipelines. Set by ``connect``."""
        if self._ready is None:
            raise SignalingError("signaling socket is not connected")
        return self._ready

    @property
    def connection_id(self) -> str | None:
        return self._ready.connection_id if self._ready else None

    @property
    def instance_id(self) -> str | None:
        return self._ready.instance_id if self._ready else None

    @property
    def is_open(self) -> bool:
        # A socket whose keepalive failed is closing: no use for a new request.
        return self._ws is not None and not self.closed.is_set() and self._ws.state is State.OPEN

    async def connect(self, wait_s: float) -> protocol.Ready:
        """Open the socket and wait for the worker's ``ready``. The host name is resolved
        anew on every call (the worker may have moved)."""
        open_s = min(wait_s, self._open_timeout_s)
        deadline = asyncio.get_running_loop().time() + wait_s
        try:
            async with asyncio.timeout(open_s):
                self._ws = await self._open()
            async with asyncio.timeout_at(deadline):
                first = await self._ws.recv()
            ready = expect_ready(self.url, first)
        except _OPEN_FAILURES as exc:
            await self.abort()
            waited = open_s if self._ws is None else wait_s
            raise open_failure(exc, self.url, waited) from None
        except NotAWorkerError:
            await self.abort()
            raise
        self._ready = ready
        self._tasks.spawn(self._read(), "read")
        return ready

    def _open(self) -> _connect_here:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        return _connect_here(
            self.url,
            ssl=client_context(self.url),
            additional_headers=headers,
            open_timeout=None,
            close_timeout=CLOSE_TIMEOUT_S,
            max_size=protocol.MAX_WORKER_MESSAGE_BYTES,
            ping_interval=self._keepalive_s,
            ping_timeout=PING_TIMEOUT_S,
        )

    async def _read(self) -> None:
        assert self._ws is not None
        reason = "signaling socket closed"
        try:
            async for raw in self._ws:
                self._dispatch(raw)
            reason = describe_close(self._ws.close_code, self._ws.close_reason or "")
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            reason = describe_close(rcvd.code if rcvd else None, rcvd.reason if rcvd else "")
            # Our keepalive gave up (we sent 1011, heard nothing): the path went quiet,
            # not the worker closed (that is a FIN or a close frame).
            if rcvd is None and exc.sent is not None and exc.sent.code == 1011:
                self.keepalive_failed = True
                reason = "signaling socket: no answer to its keepalive (network)"
        finally:
            self._closed(reason)

    def _dispatch(self, raw: str | bytes) -> None:
        """A reply goes to its request; a notice to ``on_notice``."""
        try:
            message = protocol.parse_worker_message(raw)
        except protocol.ProtocolError as exc:
            logger.warning("worker sent a message we cannot read: %s", exc)
            return
        if isinstance(message, protocol.Draining):
            if self.on_notice is not None:
                self.on_notice(message)
            return
        if isinstance(message, protocol.Ready):
            logger.warning("worker sent a second 'ready'; ignored")
            return
        future = self._pending.pop(message.request_id or "", None)
        if future is not None and not future.done():
            future.set_result(message)
        elif isinstance(message, protocol.WorkerError) and message.request_id is None:
            logger.warning("worker: %s (%s)", message.message, message.code)

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

    async def request(
        self, message: protocol.StudioRequest, reply_type: type[Reply], wait_s: float
    ) -> Reply:
        """Send a request and return its reply, of ``reply_type``; an ``error`` reply
        raises ErrorReply, any other failure SignalingError."""
        if self._ws is None or self.closed.is_set():
            raise SignalingError(self.close_reason or "signaling socket is not open")
        request_id = f"r{next(self._ids)}"
        future: asyncio.Future[protocol.WorkerReply] = asyncio.get_running_loop().create_future()
        # The socket may close (failing this future) while we are still sending, or after
        # we gave up waiting: either way the error is ours to report, not asyncio's.
        future.add_done_callback(_retrieve)
        self._pending[request_id] = future
        try:
            await self._ws.send(protocol.request_text(message, request_id))
            async with asyncio.timeout(wait_s):
                reply = await future
        except TimeoutError:
            raise SignalingError(
                f"worker did not answer {message.type!r} within {wait_s:g}s"
            ) from None
        except ConnectionClosed:
            raise SignalingError(self.close_reason or "signaling socket closed") from None
        finally:
            self._pending.pop(request_id, None)
        if isinstance(reply, protocol.WorkerError):
            raise ErrorReply(reply.code, reply.message)
        if not isinstance(reply, reply_type):
            raise SignalingError(f"worker answered {message.type!r} with {reply.type!r}")
        return reply

    async def ice_servers(self, wait_s: float = 2.0) -> list[dict[str, Any]]:
        """The worker's ICE servers (STUN, TURN with fresh credentials); none if it has
        none or does not answer in time (host candidates may still connect)."""
        now = asyncio.get_running_loop().time()
        if self._ice is not None and now - self._ice[0] < ICE_REFRESH_S:
            return self._ice[1]
        ask = protocol.GetIceServers(type="get_ice_servers")
        try:
            reply = await self.request(ask, protocol.IceServersReply, wait_s)
        except SignalingError as exc:
            logger.info("no ICE servers from the worker: %s", exc)
            return []
        servers = [s for s in reply.ice_servers if s.get("urls")]
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
