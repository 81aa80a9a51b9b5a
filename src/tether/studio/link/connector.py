"""The supervisor's Connector, and the one door into the media path.

One try re-opens the signaling socket if it is down, then (while a stream is wanted)
builds a peer connection, resuming the worker's warm session, and returns only once
processed frames flow and the worker acknowledged exactly the latest parameters.
Nothing else builds worker media (a stream that starts while connected comes through
here too). Each offer gets an immutable copy of the parameters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiortc import MediaStreamTrack

from tether.client.signaling import SignalingClient, SignalingError, host_port
from tether.client.worker_peer import Resume, WorkerPeer
from tether.clock import Clock
from tether.media.forwarding import ForwardTrack
from tether.media.frames import FrameSlot
from tether.studio.link.events import FatalLinkError, TryFailed
from tether.studio.link.handover import GatedSlot
from tether.studio.link.health import Health, port_answers
from tether.studio.link.placement import Placement
from tether.studio.link.socket_side import SocketSide
from tether.studio.parameters import ParameterStore
from tether.tasks import TaskOwner
from tether.timing import FLOW_POLL_S, PARAMS_RESEND_S, ROOM_PROBE_S

logger = logging.getLogger(__name__)


class Connector(SocketSide):
    def __init__(
        self,
        health: Health,
        clock: Clock,
        source: FrameSlot,
        processed: FrameSlot,
        params: ParameterStore,
        on_lost: Callable[[str], None],
        on_change: Callable[[], None],
        is_connected: Callable[[], bool],
    ) -> None:
        self.health = health
        self.timing = health.timing
        self.clock = clock
        self.source = source
        self.processed = processed
        self.params = params
        self._on_lost = on_lost  # the media path or the socket was lost
        self._on_change = on_change
        self._is_connected = is_connected
        self.placement: Placement | None = None  # where to connect (one URL or a fleet)
        self.worker_url: str | None = None  # the worker in use (or last used)
        self.token: str | None = None
        self.on_moved: Callable[[str, str, str], None] | None = None  # (from, to, why)
        self._moved_from: tuple[str, str] | None = None  # (url, why) until the next worker
        self.signaling: SignalingClient | None = None
        self.peer: WorkerPeer | None = None
        self.streaming = False
        self.stage: str | None = None
        self.media_error: str | None = None  # why the media path was lost, while it stands
        self.pipelines: list[dict[str, Any]] = []  # the last catalog the worker sent
        self._instance_id: str | None = None
        self._resume: Resume | None = None
        self._signaling_rtt_s = 0.0
        self._sent_at: tuple[int, float] | None = None  # (version, when) last sent
        self._media_lock = asyncio.Lock()
        self._tasks = TaskOwner("connector")
        self._watch: asyncio.Task[Any] | None = None
        self._ensure: asyncio.Task[Any] | None = None
        self._handover: asyncio.Task[Any] | None = None
        self._reopen: asyncio.Task[Any] | None = None

    # --- Connector protocol (for the supervisor) ---
    async def establish(self, attempt: int) -> None:
        if self.placement is None:
            raise FatalLinkError("no worker URL")
        avoid: set[str] = set()
        while True:
            opened = await self._signaling_answers()
            try:
                if not opened:
                    url = await self.placement.choose(self.worker_url, avoid)
                    await self._open_signaling(url)
                async with self._media_lock:
                    # Checked again after every wait: a stream may start during the try.
                    while self.streaming and not self.media_healthy():
                        await self._bring_up()
                    if self.streaming and self.peer is not None and not self.params.in_sync:
                        await self._await_flow(self.peer)  # it came back by itself
                break
            except SignalingError as exc:
                why = self.placement.should_move(exc, opened)
                if why is None:
                    raise TryFailed(str(exc)) from None
                # Another worker, in this same try: a dead one must not cost the schedule.
                avoid.add(self.worker_url or "")
                await self.leave_worker(why)
        self.media_error = None
        self._set_stage(None)

    def healthy(self) -> bool:
        # Recovered means what a try achieves: media, and the latest parameters applied.
        up = self.signaling is not None and self.signaling.is_open
        return up and (not self.streaming or (self.media_healthy() and self.params.in_sync))

    async def probe(self) -> bool:
        """Does the worker's port accept a connection? (No auth: just 'is it back'.)"""
        if self.signaling is not None and self.signaling.is_open:
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
        peer, self.peer = self.peer, None
        if peer is not None:
            self._tasks.spawn(self._close(peer), "close-failed-media")

    async def teardown(self) -> None:
        await self._tasks.cancel(self._ensure)
        await self._tasks.cancel(self._reopen)
        await self._close_peer()
        signaling, self.signaling = self.signaling, None
        if signaling is not None:
            await signaling.close()
        self._set_stage(None)
        self._resume = None
        self.media_error = None

    # --- media ---
    def media_healthy(self) -> bool:
        return self.health.media_healthy(self.peer)

    async def set_streaming(self, active: bool) -> None:
        self.streaming = active
        if not active:
            await self._tasks.cancel(self._ensure)
            async with self._media_lock:
                await self._close_peer()
        elif self._is_connected() and (self._ensure is None or self._ensure.done()):
            self._ensure = self._tasks.spawn(self._ensure_media(), "media")

    async def _ensure_media(self) -> None:
        """A stream started while connected: the same door as a try; a failure is a loss."""
        try:
            async with self._media_lock:
                while self._is_connected() and self.streaming and not self.media_healthy():
                    await self._bring_up()
        except (SignalingError, OSError, TimeoutError) as exc:
            self.lost_media(str(exc))
        except Exception as exc:
            logger.exception("building the media path: internal error")
            self.lost_media(f"internal error in the studio ({type(exc).__name__}: {exc})")
        self._set_stage(None)

    def send_parameters(self) -> None:
        """Send the latest parameters if the worker does not have them yet."""
        peer = self.peer
        if peer is None or not peer.channel_open or self.params.in_sync:
            return
        current = self.params.current()
        if peer.send_parameters(current.version, current.parameters):
            self._sent_at = (current.version, self.clock.now())

    def _resend_if_unacked(self) -> None:
        version, at = self._sent_at or (-1, 0.0)
        if version != self.params.version or self.clock.now() - at >= PARAMS_RESEND_S:
            self.send_parameters()

    async def _bring_up(self) -> None:
        """The only code that builds worker media (a handover builds its peer here too)."""
        assert self.signaling is not None
        await self._close_peer()
        peer = self.new_peer()
        self.peer = peer
        self._resume = await self.negotiate(peer, self.signaling, self._resume)
        await self.watch_health(peer)
        await self._await_flow(peer)

    def new_peer(self, open_: bool = True) -> WorkerPeer:
        """A peer whose frames reach the link's slot while its gate is open."""
        gate = GatedSlot(self.processed, open_)
        peer = WorkerPeer(self._outgoing_track(), gate, now=self.clock.now, relay=True)
        peer.on_state = lambda state: self._peer_state(peer, state)
        peer.on_ack = self._acked
        return peer

    async def negotiate(
        self, peer: WorkerPeer, signaling: SignalingClient, resume: Resume | None
    ) -> Resume | None:
        """Offer (an immutable copy of the latest parameters) and connect; returns what
        resumes the new session. Raises SignalingError."""
        self._set_stage("offer")
        offered = self.params.current()  # frozen: later updates cannot change this offer
        await peer.start(
            signaling,
            offered.parameters,
            offered.version,
            resume=resume,
            wait_s=self.timing.offer_timeout_s + self._signaling_rtt_s,
        )
        if peer.session_id:
            resume = peer.resume
        self._set_stage("ice")
        if not await peer.wait_connected(self.timing.ice_timeout_s):
            raise SignalingError(
                f"the media path to the worker did not connect within "
                f"{self.timing.ice_timeout_s:g}s (ICE/DTLS)"
            )
        return resume

    async def watch_health(self, peer: WorkerPeer) -> None:
        await self._tasks.cancel(self._watch)
        if self.timing.heartbeat_on:
            self._watch = self._tasks.spawn(
                self.health.watch(
                    peer,
                    current=lambda: peer is self.peer,
                    armed=self._is_connected,
                    on_lost=self.lost_media,
                    on_tick=self._resend_if_unacked,
                ),
                "heartbeat",
            )

    def _outgoing_track(self) -> MediaStreamTrack:
        return ForwardTrack(self.source, "studio.to_worker")

    async def _await_flow(self, peer: WorkerPeer) -> None:
        """Up means processed frames flow and the worker applied the latest parameters."""
        self._set_stage("first frame")
        seq = self.processed.seq
        deadline = self.clock.now() + self.timing.flow_timeout_s
        while True:
            self._resend_if_unacked()
            frames_ok = self.processed.seq > seq or not self.health.source_flowing()
            if frames_ok and self.params.in_sync:
                return
            if peer.state in ("failed", "closed") or peer is not self.peer:
                raise SignalingError(f"media connection {peer.state} while recovering")
            if self.clock.now() > deadline:
                what = "processed frames" if not frames_ok else "a parameter acknowledgement"
                raise SignalingError(f"no {what} from the worker after reconnecting")
            await self.clock.sleep(FLOW_POLL_S)

    # --- reports ---
    def _acked(self, version: int) -> None:
        if not self.params.ack(version):
            logger.info("worker acknowledged v%d: not one we sent", version)
        self._on_change()

    def _peer_state(self, peer: WorkerPeer, state: str) -> None:
        if peer is self.peer and state in ("failed", "closed"):
            self.lost_media(f"media connection to the worker {state}")
        self._on_change()

    def lost_media(self, reason: str) -> None:
        if self._is_connected():
            self.media_error = reason
        self._on_lost(reason)
        self._on_change()

    def _set_stage(self, stage: str | None) -> None:
        if stage != self.stage:
            self.stage = stage
            self._on_change()

    async def _close_peer(self) -> None:
        peer, self.peer = self.peer, None
        await self._tasks.cancel(self._watch)
        if peer is not None:
            await self._close(peer)

    async def _close(self, peer: WorkerPeer) -> None:
        await peer.close()
        self._on_change()

    async def close(self) -> None:
        await self._tasks.close()
        await self.teardown()
