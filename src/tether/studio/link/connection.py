"""The connection to the worker: what the supervisor drives (a SupervisedLink), made
of parts that each own their state: the placement (which worker), the signaling side
(the socket), the media path (the peer, through its one door) and parameter sync.

A try re-opens the socket if it is down, then (while a stream is wanted) brings a
peer up, resuming the worker's warm session, and returns only once processed frames
flow and the worker acknowledged exactly the latest parameters. A stream that starts
while connected comes through the same door. Losses, a fallen socket and a draining
worker are reported (``Reports``); the supervisor decides what follows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Set
from dataclasses import dataclass
from typing import Any

from tether.client.signaling import SignalingClient, SignalingError, host_port
from tether.clock import Clock
from tether.media.frames import FrameSlot
from tether.studio.link.events import FatalLinkError, MoveElsewhere, TryFailed
from tether.studio.link.handover import move_before_break
from tether.studio.link.health import Health, port_answers
from tether.studio.link.media_path import MediaPath
from tether.studio.link.parameter_sync import ParameterSync
from tether.studio.link.placement import Placement
from tether.studio.link.signaling_side import SignalingSide
from tether.studio.parameters import ParameterStore
from tether.tasks import TaskOwner
from tether.timing import ROOM_PROBE_S

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reports:
    """Where the connection reports what happens to it: to the supervisor, which
    decides what follows (the link wires these up)."""

    lost: Callable[[str], None]  # the media path or the socket is down
    signaling_lost: Callable[[str, bool], None]  # (why, its pings went unanswered)
    worker_draining: Callable[[], None]
    moved: Callable[[str, str, str], None]  # (from, to, why)
    notify: Callable[[], None]  # something in the status changed
    connected: Callable[[], bool]  # the link counts as up


class WorkerConnection:
    def __init__(
        self,
        health: Health,
        clock: Clock,
        source: FrameSlot,
        processed: FrameSlot,
        params: ParameterStore,
        reports: Reports,
    ) -> None:
        self._reports = reports
        self.placement: Placement | None = None  # where to connect (one URL or a fleet)
        self.streaming = False
        self.stage: str | None = None
        self.sync = ParameterSync(params, clock, reports.notify)
        self.signaling = SignalingSide(
            health.timing, clock, reports.signaling_lost, reports.worker_draining
        )
        self.media = MediaPath(
            health,
            self.sync,
            source,
            processed,
            on_lost=reports.lost,
            on_stage=self._set_stage,
            on_change=reports.notify,
            armed=reports.connected,
        )
        self._tasks = TaskOwner("connection")
        self._ensure: asyncio.Task[Any] | None = None

    def point_at(self, spec: str, token: str | None) -> None:
        """Where the next connect goes: one worker's URL, a list, or a dns+ name."""
        self.placement = Placement(spec, token)

    @property
    def worker_url(self) -> str | None:
        """The worker in use (or last used)."""
        return self.placement.current if self.placement is not None else None

    # --- a try ---
    async def establish(self, attempt: int, avoid: Set[str] = frozenset()) -> None:
        placement = self.placement
        if placement is None:
            raise FatalLinkError("no worker URL")
        opened = await self.signaling.answers(self.streaming and not self.media.healthy())
        try:
            if not opened:
                url = await placement.choose(placement.current, avoid)
                await self._open_signaling(url)
            async with self.media.lock:
                if self.streaming and not self.media.healthy():
                    await self.media.await_resume()
                # Checked again after every wait: a stream may start during the try.
                while self.streaming and not self.media.healthy():
                    await self._bring_up()
                peer = self.media.peer
                if self.streaming and peer is not None and not self.sync.params.in_sync:
                    await self.media.await_flow(peer)  # it came back by itself
        except SignalingError as exc:
            why = placement.should_move(exc, opened)
            if why is None:
                raise TryFailed(str(exc)) from None
            raise MoveElsewhere(placement.current or "", why) from None
        self.media.error = None
        self._set_stage(None)

    async def _bring_up(self) -> None:
        assert self.signaling.client is not None
        await self.media.bring_up(self.signaling.client, self.signaling.rtt_s)

    async def _open_signaling(self, url: str) -> None:
        assert self.placement is not None
        await self.signaling.close()
        self._set_stage("signaling")
        client = await self.signaling.connect(url, self.placement.token)
        await self._adopt(client, url)

    async def _adopt(self, client: SignalingClient, url: str) -> None:
        assert self.placement is not None
        if self.signaling.adopt(client):  # the worker restarted: its media went with it
            self.media.forget_session()
            await self.media.close_peer()
        moved = self.placement.use(url)
        if moved is not None:
            self._reports.moved(moved[0], url, moved[1])

    def healthy(self) -> bool:
        # Recovered means what a try achieves: media, and the latest parameters applied.
        up = self.signaling.is_open
        return up and (not self.streaming or (self.media.healthy() and self.sync.params.in_sync))

    async def probe(self) -> bool:
        """Does the worker's port accept a connection? (No auth: just 'is it back'.)"""
        if self.signaling.is_open:
            return self.healthy()
        if self.placement is not None and self.placement.multi and self.worker_url is None:
            return await self.placement.fleet.pick() is not None
        try:
            host, port = host_port(self.worker_url or "")
        except SignalingError:
            return False
        return await port_answers(host, port)

    def wanted(self) -> bool:
        return self.streaming

    def probe_every(self, default_s: float) -> float:
        if self.placement is not None and self.placement.waiting_for_room:
            return min(default_s, ROOM_PROBE_S)  # a slot may free any moment
        return default_s

    def give_up(self) -> None:
        # Whatever is left of the media path is dead: detach it at once, so nothing
        # counts it as healthy; a later try builds anew.
        self._set_stage(None)
        self.media.drop()

    async def teardown(self) -> None:
        await self._tasks.cancel(self._ensure)
        await self.media.close_peer()
        await self.signaling.close()
        self._set_stage(None)
        self.media.forget_session()
        self.media.error = None

    # --- the steps of recoveries (the supervisor runs them) ---
    def media_flows(self) -> bool:
        return self.streaming and self.media.healthy() and self.worker_url is not None

    async def reopen_signaling(self) -> None:
        url = self.worker_url
        if url is None or self.placement is None:
            raise TryFailed("no worker to reopen the socket to")
        await self.signaling.close()  # the fallen socket: the status no longer shows it
        try:
            client = await self.signaling.connect(url, self.placement.token)
        except SignalingError as exc:
            raise TryFailed(str(exc)) from None
        await self._adopt(client, url)
        self._reports.notify()

    def can_hand_over(self) -> bool:
        return self.placement is not None and self.placement.multi

    async def hand_over(self) -> None:
        assert self.placement is not None
        try:
            await move_before_break(
                self.placement, self.signaling, self.media, self.streaming, self._adopt
            )
        except SignalingError as exc:
            raise TryFailed(str(exc)) from None
        finally:
            self._set_stage(None)

    async def leave_worker(self, why: str) -> None:
        """Let go of this worker (gone, busy, draining): the next connect picks another."""
        if self.placement is not None:
            self.placement.leave(why)
        await self.media.close_peer()
        self.media.forget_session()  # sessions belong to their worker
        await self.signaling.close()
        self.signaling.forget_worker()

    # --- the stream ---
    async def set_streaming(self, active: bool) -> None:
        self.streaming = active
        if not active:
            await self._tasks.cancel(self._ensure)
            async with self.media.lock:
                await self.media.close_peer()
        elif self._reports.connected() and (self._ensure is None or self._ensure.done()):
            self._ensure = self._tasks.spawn(self._ensure_media(), "media")

    async def _ensure_media(self) -> None:
        """A stream started while connected: the same door as a try; a failure is a loss."""
        try:
            async with self.media.lock:
                while self._reports.connected() and self.streaming and not self.media.healthy():
                    await self._bring_up()
        except (SignalingError, OSError, TimeoutError) as exc:
            self.media.lost(str(exc))
        except Exception as exc:
            logger.exception("building the media path: internal error")
            self.media.lost(f"internal error in the studio ({type(exc).__name__}: {exc})")
        self._set_stage(None)

    def send_parameters(self) -> None:
        """Send the latest parameters if the worker does not have them yet."""
        if self.media.peer is not None:
            self.sync.send(self.media.peer)

    def _set_stage(self, stage: str | None) -> None:
        if stage != self.stage:
            self.stage = stage
            self._reports.notify()

    async def close(self) -> None:
        await self._tasks.close()
        await self.teardown()
        await self.media.shut()


__all__ = ["Reports", "WorkerConnection"]
