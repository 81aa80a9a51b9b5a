"""The link's signaling side: its socket to the worker, the worker's ``ready``, a ping
to see whether the socket still answers, and new sockets (a try, a reopen, a
handover's second one). It reports what the worker says unasked and the socket's
close by callback; it never decides what to do about them (the supervisor does)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tether import protocol
from tether.client import signaling as sig
from tether.client.signaling import SignalingClient, SignalingError
from tether.clock import Clock
from tether.studio.link.events import FatalLinkError
from tether.studio.link.health import port_answers
from tether.studio.link.probing import until_answered
from tether.timing import MIN_OPEN_S, PROBE_INTERVAL_S, SOCKET_CHECK_S, Timing

logger = logging.getLogger(__name__)


class SignalingSide:
    def __init__(
        self,
        timing: Timing,
        clock: Clock,
        on_closed: Callable[[str, bool], None],
        on_draining: Callable[[], None],
    ) -> None:
        self.timing = timing
        self.clock = clock
        self._on_closed = on_closed  # (why, its pings went unanswered)
        self._on_draining = on_draining
        self.client: SignalingClient | None = None  # the link's socket
        self.rtt_s = 0.0  # how long the last socket took to open: an answer may take this
        self.pipelines: list[dict[str, Any]] = []  # the last catalog the worker sent
        self._instance_id: str | None = None  # the worker process behind the socket

    @property
    def is_open(self) -> bool:
        return self.client is not None and self.client.is_open

    @property
    def connection_id(self) -> str | None:
        return self.client.connection_id if self.client is not None else None

    async def answers(self, must_answer: bool) -> bool:
        """Is the open socket still good for a try? After a loss it may lead to where
        the worker was (it moved): if ``must_answer``, ask, briefly, and drop a socket
        that does not answer."""
        client = self.client
        if client is None or not client.is_open:
            return False
        if not must_answer:
            return True
        if await client.answers(SOCKET_CHECK_S + 2 * self.rtt_s):
            return True
        logger.info("the signaling socket does not answer: opening a new one")
        await client.abort()
        return False

    async def connect(self, url: str, token: str | None) -> SignalingClient:
        """A new socket to ``url`` (not yet the link's). Raises SignalingError, or
        FatalLinkError when trying again cannot help."""
        wait_s = self.timing.signaling_timeout_s
        started, deadline = time.monotonic(), self.clock.now() + wait_s
        await self._path_up(url, deadline)
        client = SignalingClient(url, token)
        try:
            await client.connect(max(deadline - self.clock.now(), MIN_OPEN_S))
        except sig.AuthError as exc:
            raise FatalLinkError(f"{exc}; check the token") from None
        except sig.NotAWorkerError as exc:
            raise FatalLinkError(f"{exc}; check the worker URL") from None
        except BaseException:
            await client.close()  # cancelled or failed half-way: leave no socket behind
            raise
        self.rtt_s = time.monotonic() - started  # real time: it measures the network
        return client

    async def _path_up(self, url: str, deadline: float) -> None:
        """Wait until the worker's host answers a TCP connect, probing every
        PROBE_INTERVAL_S with overlapping probes. A socket opened while the path is down
        waits a second for TCP to resend its SYN; a probe sent the moment the path
        returns gets through at once."""
        try:
            host, port = sig.host_port(url)
        except SignalingError:
            return  # the socket's own connect says what is wrong with the URL

        def probe() -> Awaitable[bool]:
            return port_answers(host, port, refused_counts=True)

        if await probe():
            return
        if not await until_answered(probe, self.clock, PROBE_INTERVAL_S, deadline):
            waited = self.timing.signaling_timeout_s
            raise SignalingError(f"no answer from the worker at {host}:{port} within {waited:g}s")

    def adopt(self, client: SignalingClient) -> bool:
        """``client`` becomes the link's socket. Returns whether the worker restarted
        since the last socket (its sessions are then gone)."""
        client.on_close = self._closed
        client.on_notice = self._notice
        self.client = client
        self.pipelines = list(client.ready.pipelines)
        restarted = self._instance_id is not None and client.instance_id != self._instance_id
        self._instance_id = client.instance_id
        if restarted:
            logger.info("the worker restarted; its sessions are gone")
        return restarted

    def detach(self) -> SignalingClient | None:
        """The socket stops being the link's: its close is no longer a loss."""
        client, self.client = self.client, None
        if client is not None:
            client.on_close = None
            client.on_notice = None
        return client

    def forget_worker(self) -> None:
        """The link leaves its worker: the next socket's worker is not a restart of it."""
        self._instance_id = None

    async def close(self) -> None:
        client = self.detach()
        if client is not None:
            await client.close()

    def _notice(self, message: protocol.Notice) -> None:
        """Something the worker says unasked: ``draining`` is all there is for now."""
        if isinstance(message, protocol.Draining):
            self._on_draining()

    def _closed(self, reason: str) -> None:
        # The closed socket stays the link's (it says which connection was lost) until
        # a new one replaces it.
        client = self.client
        self._on_closed(reason, client is not None and client.keepalive_failed)
