"""The worker's front door against hostile clients, below the ASGI app.

uvicorn holds a connection that trickles its request headers for as long as the client
likes, and accepts connections until the process runs out of file descriptors. This
HTTP protocol adds what is missing:

- a deadline for each request's headers (also between keep-alive requests): 408 and
  close when it passes;
- a cap on open connections (HTTP and WebSocket together): beyond it, a clean 503 and
  close at once, long before the fd limit;
- the fd soft limit raised to the hard limit at start, and the cap kept below it (with
  room for a burst of accepts), so accept() never fails for want of descriptors."""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

# File descriptors kept free for everything but client sockets: peer connections' UDP
# sockets, the pipeline's files, log files.
FD_RESERVE = 64
# asyncio accepts up to a backlog's worth of sockets in one go, before any of them is
# counted (and a second burst may come before the first is refused): the cap leaves
# room for two, so accept() does not hit the fd limit.
BACKLOG = 64


def raise_fd_limit() -> int:
    """Raise the soft fd limit to the hard one; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            logger.warning("could not raise the fd limit from %d", soft)
    return soft


def connection_cap(wanted: int, fd_limit: int) -> int:
    return max(8, min(wanted, fd_limit - FD_RESERVE - 2 * BACKLOG))


def _raw_response(status: str, text: str) -> bytes:
    body = text.encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def guarded_protocol(header_timeout_s: float, max_connections: int) -> type[H11Protocol]:
    """An h11 protocol class with a header deadline and a connection cap."""

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _armed_scope: Any = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.write(
                    _raw_response("503 Service Unavailable", "worker at its connection limit")
                )
                transport.close()
                return
            self._arm()

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            # A new request replaces self.scope once its headers are in.
            self._armed_scope = self.scope
            self._deadline = self.loop.call_later(header_timeout_s, self._headers_late)

        def _headers_late(self) -> None:
            self._deadline = None
            transport = self.transport
            if transport.is_closing() or transport.get_protocol() is not self:
                return  # closed, or upgraded to a WebSocket
            if self.scope is self._armed_scope:
                transport.write(_raw_response("408 Request Timeout", "request headers too slow"))
                transport.close()

        def on_response_complete(self) -> None:
            self._arm()  # before a pipelined request's headers are read in super()
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            super().connection_lost(exc)

    return GuardedH11Protocol
