"""The connector's signaling side: which worker the link uses, its socket, what the
worker says unasked, and the steps a move between a fleet's workers is made of.

A base of Connector: it works on the connector's own state (the socket, the peer,
the resume token), kept in one class so a handover can switch all of it at once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tether import protocol
from tether.client import signaling as sig
from tether.client.signaling import SignalingClient, SignalingError
from tether.client.worker_peer import Resume, WorkerPeer
from tether.clock import Clock
from tether.studio.link.events import FatalLinkError
from tether.studio.link.handover import move_before_break
from tether.studio.link.health import port_answers
from tether.studio.link.probing import until_answered
from tether.timing import MIN_OPEN_S, PROBE_INTERVAL_S, SOCKET_CHECK_S

if TYPE_CHECKING:
    from tether.studio.link.placement import Placement
    from tether.tasks import TaskOwner
    from tether.timing import Timing

logger = logging.getLogger(__name__)


class SocketSide:
    timing: Timing
    clock: Clock
    placement: Placement | None
    worker_url: str | None
    token: str | None
    signaling: SignalingClient | None
    peer: WorkerPeer | None
    pipelines: list[dict[str, Any]]
    on_moved: Callable[[str, str, str], None] | None
    _on_lost: Callable[[str], None]
    _on_change: Callable[[], None]
    _tasks: TaskOwner
    _media_lock: asyncio.Lock
    _resume: Resume | None
    _instance_id: str | None
    _signaling_rtt_s: float
    _moved_from: tuple[str, str] | None
    _handover: asyncio.Task[Any] | None
    _reopen: asyncio.Task[Any] | None
    streaming: bool

    def media_healthy(self) -> bool: ...

    # --- the socket ---
    async def _signaling_answers(self) -> bool:
        """Is the open socket still good for a try? After a loss it may lead to where
        the worker was (it moved): ask, briefly, and drop a socket that does not answer."""
        signaling = self.signaling
        if signaling is None or not signaling.is_open:
            return False
        if self.media_healthy() or not self.streaming:
            return True
        wait_s = SOCKET_CHECK_S + 2 * self._signaling_rtt_s
        if await signaling.answers(wait_s):
            return True
        logger.info("the signaling socket does not answer: opening a new one")
        await signaling.abort()
        return False

    async def _open_signaling(self, url: str) -> None:
        old, self.signaling = self.signaling, None
        if old is not None:
            await old.close()
        self._set_stage("signaling")
        client = await self.connect_signaling(url)
        await self.adopt_signaling(client, url)

    async def connect_signaling(self, url: str) -> SignalingClient:
        """A new socket to ``url`` (not yet the link's). Raises SignalingError."""
        wait_s = self.timing.signaling_timeout_s
        started, deadline = time.monotonic(), self.clock.now() + wait_s
        await self._path_up(url, deadline)
        client = SignalingClient(url, self.token)
        try:
            await client.connect(max(deadline - self.clock.now(), MIN_OPEN_S))
        except sig.AuthError as exc:
            raise FatalLinkError(f"{exc}; check the token") from None
        except sig.NotAWorkerError as exc:
            raise FatalLinkError(f"{exc}; check the worker URL") from None
        except BaseException:
            await client.close()  # cancelled or failed half-way: leave no socket behind
            raise
        self._signaling_rtt_s = time.monotonic() - started
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

    async def adopt_signaling(
        self, client: SignalingClient, url: str, moved_from: tuple[str, str] | None = None
    ) -> None:
        if moved_from is not None:
            self._moved_from = moved_from
        client.on_close = self._signaling_closed
        client.on_notice = self._notice
        self.signaling = client
        self.worker_url = url
        assert self.placement is not None
        self.placement.activate(url)
        if self._moved_from is not None and self._moved_from[0] != url:
            (old, why), self._moved_from = self._moved_from, None
            if self.on_moved is not None:
                self.on_moved(old, url, why)
        self.pipelines = list(client.ready.pipelines)
        restarted = self._instance_id is not None and client.instance_id != self._instance_id
        self._instance_id = client.instance_id
        if restarted:
            logger.info("the worker restarted; its sessions are gone")
            self._resume = None
            await self._close_peer()  # its media went with it

    # --- a handover (see handover.py) ---
    @property
    def media_lock(self) -> asyncio.Lock:
        return self._media_lock

    def set_stage(self, stage: str | None) -> None:
        self._set_stage(stage)

    def detach(self, signaling: SignalingClient | None) -> None:
        """The socket stops being the link's: its close is no longer a loss."""
        if signaling is not None:
            signaling.on_close = None
            signaling.on_notice = None
        self.signaling = None
        self._instance_id = None

    async def adopt_peer(
        self, peer: WorkerPeer | None, resume: Resume | None, old: WorkerPeer | None
    ) -> None:
        """Switch the output from ``old`` to ``peer`` in one step."""
        if old is not None:
            old.on_state = None
            old.processed.open = False  # type: ignore[attr-defined]
        self.peer, self._resume = peer, resume
        if peer is not None:
            peer.processed.open = True  # type: ignore[attr-defined]
            await self.watch_health(peer)

    async def release(self, peer: WorkerPeer | None, signaling: SignalingClient | None) -> None:
        if peer is not None:
            await self._close(peer)
        if signaling is not None:
            await signaling.close()

    async def leave_worker(self, why: str) -> None:
        """Let go of this worker (gone, busy, draining): the next connect picks another."""
        if self.worker_url is not None:
            self._moved_from = (self.worker_url, why)
        await self._close_peer()
        signaling, self.signaling = self.signaling, None
        if signaling is not None:
            signaling.on_close = None
            await signaling.close()
        self._resume = None  # sessions belong to their worker
        self._instance_id = None
        self.worker_url = None
        if self.placement is not None:
            self.placement.activate(None)

    def _notice(self, message: protocol.Notice) -> None:
        """Something the worker says unasked: ``draining`` moves the stream away."""
        if not isinstance(message, protocol.Draining) or self.placement is None:
            return
        logger.info("the worker at %s is draining", self.worker_url)
        if self.placement.multi and (self._handover is None or self._handover.done()):
            self._handover = self._tasks.spawn(move_before_break(self), "handover")

    def _signaling_closed(self, reason: str) -> None:
        quiet = self.signaling is not None and self.signaling.keepalive_failed
        if quiet and self.streaming and self.media_healthy() and self.worker_url is not None:
            # The media path lives (its heartbeat answers): the socket fell to a lossy
            # or congested path, where TCP stalls long before media does. Reopen it
            # quietly; it is an outage only if the media path fails too.
            logger.info("signaling socket lost (%s) while media flows: reopening it", reason)
            self.signaling = None
            if self._reopen is None or self._reopen.done():
                self._reopen = self._tasks.spawn(self._reopen_signaling(reason), "reopen")
            self._on_change()
            return
        self._on_lost(f"lost the worker: {reason}")
        self._on_change()

    async def _reopen_signaling(self, reason: str) -> None:
        url = self.worker_url
        while self.streaming and self.media_healthy() and self.worker_url == url:
            if self.signaling is not None:
                return  # a try opened one meanwhile
            try:
                client = await self.connect_signaling(url or "")
            except SignalingError as exc:
                logger.info("reopening the signaling socket: %s", exc)
                await asyncio.sleep(PROBE_INTERVAL_S)
                continue
            except FatalLinkError as exc:
                self._on_lost(str(exc))
                return
            if self.signaling is not None or self.worker_url != url:
                await client.close()
                return
            await self.adopt_signaling(client, url or "")
            self._on_change()
            return
        if self.signaling is None:
            self._on_lost(f"lost the worker: {reason}")

    # --- provided by Connector ---
    def _set_stage(self, stage: str | None) -> None:
        raise NotImplementedError

    async def _close_peer(self) -> None:
        raise NotImplementedError

    async def _close(self, peer: WorkerPeer) -> None:
        raise NotImplementedError

    async def watch_health(self, peer: WorkerPeer) -> None:
        raise NotImplementedError
