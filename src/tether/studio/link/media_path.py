"""The media path to the worker, and its one door.

``bring_up`` is the only code that builds worker media: a peer behind its own gate,
negotiated (resuming the worker's warm session), returned only once processed frames
flow and the worker applied the latest parameters. A try and a stream that starts
while connected come through it with the gate open; a handover comes through it with
the gate closed, so the new worker's frames wait until ``switch_to`` swaps the gates
in one step and the client never sees two workers' frames interleaved."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import av

from tether.client.signaling import SignalingClient, SignalingError
from tether.client.worker_peer import Resume, WorkerPeer
from tether.clock import Clock
from tether.media.forwarding import ForwardTrack
from tether.media.frames import FrameSlot
from tether.media.rate import RateGovernor
from tether.studio.link.health import Health
from tether.studio.link.parameter_sync import ParameterSync
from tether.tasks import TaskOwner
from tether.timing import FLOW_POLL_S, MEDIA_LATENCY_WINDOW_S, RESUME_GRACE_S

logger = logging.getLogger(__name__)


class GatedSlot(FrameSlot):
    """A peer's own slot in front of the link's: frames pass on only while open, so at a
    handover the old worker's stop exactly when the new worker's start."""

    def __init__(self, target: FrameSlot, open_: bool) -> None:
        super().__init__()
        self.target = target
        self.open = open_

    def put(self, frame: av.VideoFrame) -> None:
        super().put(frame)
        if self.open:
            self.target.put(frame)


def gate_of(peer: WorkerPeer) -> GatedSlot:
    assert isinstance(peer.processed, GatedSlot)  # every peer is built by bring_up
    return peer.processed


class MediaPath:
    def __init__(
        self,
        health: Health,
        sync: ParameterSync,
        source: FrameSlot,
        processed: FrameSlot,
        on_lost: Callable[[str], None],
        on_stage: Callable[[str | None], None],
        on_change: Callable[[], None],
        armed: Callable[[], bool],
    ) -> None:
        self.health = health
        self.timing = health.timing
        self.clock: Clock = health.clock
        self.sync = sync
        self.source = source
        self.processed = processed
        self._on_lost = on_lost  # the link's peer failed, or its heartbeat went silent
        self._on_stage = on_stage
        self._on_change = on_change
        self._armed = armed  # the link counts as up: a loss now is an outage
        self.peer: WorkerPeer | None = None  # the link's peer (its gate open)
        self.resume: Resume | None = None  # resumes the worker's session on the next peer
        self.error: str | None = None  # why the media path was lost, while it stands
        self.lock = asyncio.Lock()  # one bring-up (or handover) at a time
        self._tasks = TaskOwner("media")
        self._watch: asyncio.Task[Any] | None = None
        # The frames a second we send the worker: no more than its pipeline can take.
        self.rate = RateGovernor(self.pipeline_pace, self.clock)

    def healthy(self) -> bool:
        return self.health.media_healthy(self.peer)

    def pipeline_pace(self) -> float | None:
        """The frames a second the worker's pipeline can process: from its time per
        frame (the worker's own measure, else the one from its frame reports), or the
        rate its frames come out where that is higher (a pipeline that overlaps
        frames). None while not known (nothing measured, or its frames wait for a load)."""
        peer = self.peer
        if peer is None or peer.pipeline_loading:
            return None
        per_frame_ms = peer.pipeline_ms or peer.latency.worker_ms(MEDIA_LATENCY_WINDOW_S)
        if not per_frame_ms:
            return None
        return max(1000.0 / per_frame_ms, peer.pipeline_fps or 0.0, self.processed.fps)

    # --- the one door ---
    async def bring_up(
        self, signaling: SignalingClient, rtt_s: float, staged: bool = False
    ) -> WorkerPeer:
        """A new peer over ``signaling`` (whose round trip is ``rtt_s``), up once its
        frames flow and its worker applied the latest parameters. Live: it replaces the
        link's peer. Staged (a handover): its gate stays closed and the link's peer is
        untouched. Raises SignalingError."""
        gate = GatedSlot(self.processed, open_=not staged)
        peer = WorkerPeer(
            ForwardTrack(self.source, "studio.to_worker", self.rate),
            gate,
            now=self.clock.now,
            relay=True,
        )
        peer.on_state = lambda state: self._peer_state(peer, state)
        peer.on_ack = self.sync.acked
        if not staged:
            await self.close_peer()
            self.peer = peer
        try:
            await self._negotiate(peer, signaling, rtt_s, None if staged else self.resume)
            if not staged and peer.session_id:
                self.resume = peer.resume
                await self._watch_health(peer)
            await self.await_flow(peer)
        except BaseException:
            if staged:
                await peer.close()
            raise
        return peer

    async def _negotiate(
        self, peer: WorkerPeer, signaling: SignalingClient, rtt_s: float, resume: Resume | None
    ) -> None:
        """Offer (an immutable copy of the latest parameters) and connect."""
        self._on_stage("offer")
        offered = self.sync.offer()
        await peer.start(
            signaling,
            offered.parameters,
            offered.version,
            resume=resume,
            wait_s=self.timing.offer_timeout_s + rtt_s,
        )
        self._on_stage("ice")
        if not await peer.wait_connected(self.timing.ice_timeout_s):
            raise SignalingError(
                f"the media path to the worker did not connect within "
                f"{self.timing.ice_timeout_s:g}s (ICE/DTLS)"
            )

    async def await_resume(self) -> bool:
        """The peer we had may come back by itself once the path returns (its ICE
        outlives an outage of seconds): give it a moment, pinged at once, before a new
        peer replaces it. A try that tore it down as soon as its socket opened took
        about a second longer (a new peer's ICE, DTLS and first keyframe), and seconds
        more where that went wrong, where the old one was back in a tenth."""
        peer = self.peer
        if peer is None or peer.state != "connected" or not peer.channel_open:
            return False
        peer.send_ping(0, self.clock.now())
        deadline = self.clock.now() + RESUME_GRACE_S
        while not self.healthy():
            if self.clock.now() >= deadline:
                return False
            await self.clock.sleep(FLOW_POLL_S)
        logger.info("the worker's peer came back by itself")
        return True

    async def await_flow(self, peer: WorkerPeer) -> None:
        """Up means processed frames flow (if ours do) and the worker applied the latest
        parameters, which are sent until it says so. The frames wait as long as the
        worker says its pipeline is loading."""
        gate, live = gate_of(peer), peer is self.peer
        self._on_stage("first frame" if live else "moving")
        seq = gate.seq
        deadline = self.clock.now() + self.timing.flow_timeout_s
        while True:
            self.sync.resend_if_unacked(peer, live)
            frames_ok = gate.seq > seq or not self.health.source_flowing()
            if frames_ok and self.sync.applied(peer, live):
                return
            if peer.state in ("failed", "closed") or (live and peer is not self.peer):
                raise SignalingError(f"media connection {peer.state} while recovering")
            if peer.pipeline_loading:  # a model loads first: late frames are no failure
                deadline = max(deadline, self.clock.now() + self.timing.flow_timeout_s)
            if self.clock.now() > deadline:
                what = "processed frames" if not frames_ok else "a parameter acknowledgement"
                raise SignalingError(f"no {what} from the worker after reconnecting")
            await self.clock.sleep(FLOW_POLL_S)

    async def switch_to(self, peer: WorkerPeer | None) -> WorkerPeer | None:
        """Make a staged peer the link's, in one step; returns the old one to let go.
        (None: no stream, so no peer on either side.)"""
        old, self.peer = self.peer, peer
        if old is not None:
            old.on_state = None
            gate_of(old).open = False
        self.resume = peer.resume if peer is not None else None
        if peer is not None:
            gate_of(peer).open = True
            await self._watch_health(peer)
        return old

    # --- health ---
    async def _watch_health(self, peer: WorkerPeer) -> None:
        await self._tasks.cancel(self._watch)
        if self.timing.heartbeat_on:
            self._watch = self._tasks.spawn(
                self.health.watch(
                    peer,
                    current=lambda: peer is self.peer,
                    armed=self._armed,
                    on_lost=self.lost,
                    on_tick=lambda: self.sync.resend_if_unacked(peer),
                ),
                "heartbeat",
            )

    def _peer_state(self, peer: WorkerPeer, state: str) -> None:
        if peer is self.peer and state in ("failed", "closed"):
            self.lost(f"media connection to the worker {state}")
        self._on_change()

    def lost(self, reason: str) -> None:
        if self._armed():
            self.error = reason
        self._on_lost(reason)
        self._on_change()

    # --- ending ---
    def forget_session(self) -> None:
        """The worker's sessions are gone (it restarted, or we left it)."""
        self.resume = None

    def drop(self) -> None:
        """Detach the peer at once (nothing may count it healthy), close it meanwhile."""
        peer, self.peer = self.peer, None
        if peer is not None:
            self._tasks.spawn(self.close(peer), "close-failed-media")

    async def close_peer(self) -> None:
        peer, self.peer = self.peer, None
        await self._tasks.cancel(self._watch)
        if peer is not None:
            await self.close(peer)

    async def close(self, peer: WorkerPeer) -> None:
        await peer.close()
        self._on_change()

    async def shut(self) -> None:
        await self._tasks.close()
        await self.close_peer()
        self.resume = None
        self.error = None
