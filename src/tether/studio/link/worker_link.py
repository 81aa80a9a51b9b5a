"""The link to the worker: a signaling socket plus, while a stream runs, a peer
connection. This is the supervisor's Connector: it does one try at a time and
reports losses; the supervisor owns the state.

Loss is detected by whichever comes first: the peer connection leaving
``connected``, the signaling socket closing (WebSocket keepalive included), the
data-channel heartbeat going unanswered, or the media watchdog (the worker stopped
sending frames while ours flow and the heartbeat still answers)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from tether.client.signaling import AuthError, SignalingClient, SignalingError, host_port
from tether.client.worker_peer import Resume, WorkerPeer
from tether.clock import Clock, MonotonicClock
from tether.config import StudioSettings
from tether.media import FrameSlot, Signal, SlotTrack
from tether.protocol import heartbeat_ping
from tether.studio.link.backoff import BackoffSchedule
from tether.studio.link.supervisor import FatalLinkError, LinkEvent, LinkState, LinkSupervisor
from tether.studio.parameters import ParameterStore
from tether.tasks import TaskOwner

__all__ = ["LinkEvent", "LinkState", "WorkerLink"]

logger = logging.getLogger(__name__)

# The worker stopped sending frames while ours flow for this long: a media stall.
MEDIA_STALL_S = 2.0
# Our own frames count as flowing if the newest is at most this old.
SOURCE_FRESH_S = 0.5


class WorkerLink:
    def __init__(
        self,
        settings: StudioSettings,
        source: FrameSlot,
        processed: FrameSlot,
        params: ParameterStore,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.source = source
        self.processed = processed
        self.params = params
        self.clock = clock or MonotonicClock()
        schedule = BackoffSchedule(settings.reconnect_delays, settings.reconnect_jitter)
        self.supervisor = LinkSupervisor(self, schedule, self.clock)
        self.supervisor.listeners.append(self._on_event)
        self.supervisor.on_change = self.notify
        self.webrtc_error: str | None = None
        self.connect_stage: str | None = None
        self.worker_url: str | None = None
        self._token: str | None = None
        self.signaling: SignalingClient | None = None
        self.peer: WorkerPeer | None = None
        self.streaming = False
        self.pipelines: list[dict[str, Any]] = []  # the last catalog the worker sent
        self.changed = Signal()  # any status change
        self._instance_id: str | None = None
        self._resume_id: Resume | None = None
        self._media_lock = asyncio.Lock()
        self._tasks = TaskOwner("link")
        self._monitor: asyncio.Task[Any] | None = None

    # --- what the status shows ---
    @property
    def state(self) -> LinkState:
        return self.supervisor.state

    @property
    def error(self) -> str | None:
        return self.webrtc_error or self.supervisor.error

    @property
    def webrtc_connected(self) -> bool:
        return self.peer is not None and self.peer.state == "connected"

    @property
    def session_id(self) -> str | None:
        return self.peer.session_id if self.peer else None

    @property
    def heartbeat_on(self) -> bool:
        return self.settings.heartbeat_timeout_s > 0

    def media_healthy(self) -> bool:
        peer = self.peer
        if peer is None or peer.state != "connected" or not peer.channel_open:
            return False
        if not self.heartbeat_on:
            return True
        return peer.silent_for() <= self.settings.heartbeat_timeout_s and not self._stalled()

    def worker_lag_s(self) -> float:
        """How long the worker's frames have been missing while ours flow (0 when ours
        don't, or there is no media path)."""
        if self.peer is None or not self._source_flowing():
            return 0.0
        since = max(self.processed.updated_at or 0.0, self.peer.started_at)
        return self.clock.now() - since

    def _stalled(self) -> bool:
        return self.worker_lag_s() > MEDIA_STALL_S

    def notify(self) -> None:
        self.changed.fire()

    # --- commands ---
    async def connect(self, worker_url: str, token: str | None) -> None:
        """Connect (or switch) to a worker; runs in the background."""
        await self.supervisor.stop()
        self.worker_url, self._token = worker_url, token
        self.webrtc_error = None
        await self.supervisor.start()

    async def disconnect(self) -> None:
        """Intentional: cancels any try, clears the session's parameters, never an error."""
        await self.supervisor.stop()
        self.webrtc_error = None
        self.params.clear()
        self.notify()

    async def reconnect(self) -> None:
        if self.state == LinkState.CONNECTED:
            return
        await self.supervisor.retry()

    async def set_streaming(self, active: bool) -> None:
        self.streaming = active
        if not active:
            await self._close_peer()
        elif self.state == LinkState.CONNECTED:
            self._tasks.spawn(self._media_while_connected(), "media")

    def send_parameters(self) -> None:
        if self.peer is not None:
            self.peer.send_parameters(self.params.version, self.params.parameters)

    async def debug_drop_media(self) -> None:
        """Close the worker peer connection abruptly, as a network drop would."""
        if self.peer is not None:
            await self.peer.pc.close()

    async def debug_drop_signaling(self) -> None:
        if self.signaling is not None:
            await self.signaling.abort()

    # --- Connector: one try ---
    async def establish(self, attempt: int) -> None:
        assert self.worker_url is not None
        restarted = False
        if self.signaling is None or not self.signaling.is_open:
            restarted = await self._open_signaling()
        if self.streaming:
            async with self._media_lock:
                if restarted or not self.media_healthy():
                    await self._build_media()
                await self._await_flow()
        self.connect_stage = None

    def healthy(self) -> bool:
        signaling_up = self.signaling is not None and self.signaling.is_open
        return signaling_up and (not self.streaming or self.media_healthy())

    async def probe(self) -> bool:
        """Does the worker's port accept a connection? (No auth: just 'is it back'.)"""
        if self.signaling is not None and self.signaling.is_open:
            return self.healthy()
        try:
            host, port = host_port(self.worker_url or "")
            async with asyncio.timeout(0.5):
                _, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError, ValueError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def teardown(self) -> None:
        await self._close_peer()
        await self._close_signaling()
        self.connect_stage = None
        self._resume_id = None

    # --- the work ---
    async def _open_signaling(self) -> bool:
        """Open the socket; True when the worker process is a new one (sessions gone)."""
        await self._close_signaling()
        self._stage("signaling")
        client = SignalingClient(self.worker_url or "", self._token)
        try:
            await client.connect(self.settings.connect_timeout_s)
        except AuthError as exc:
            raise FatalLinkError(f"{exc}; check the token") from None
        client.on_close = self._signaling_closed
        self.signaling = client
        self.pipelines = list(client.ready.get("pipelines", []))
        restarted = self._instance_id is not None and client.instance_id != self._instance_id
        self._instance_id = client.instance_id
        if restarted:
            logger.info("the worker restarted; its sessions are gone")
            self._resume_id = None
        return restarted

    async def _build_media(self) -> None:
        """A new peer connection, resuming the worker's warm session if it has one."""
        assert self.signaling is not None
        await self._close_peer()
        self._stage("offer")
        peer = WorkerPeer(
            SlotTrack(self.source, "studio.to_worker"), self.processed, now=self.clock.now
        )
        peer.on_state = lambda state: self._peer_state(peer, state)
        peer.on_ack = self._acked
        self.peer = peer
        await peer.start(
            self.signaling,
            self.params.parameters,
            self.params.version,
            resume=self._resume_id,
            wait_s=self.settings.connect_timeout_s,
        )
        self._resume_id = peer.resume
        self._stage("ice")
        if not await peer.wait_connected(self.settings.connect_timeout_s):
            raise SignalingError(
                f"the media path to the worker did not connect within "
                f"{self.settings.connect_timeout_s:g}s (ICE/DTLS)"
            )
        await self._tasks.cancel(self._monitor)
        if self.heartbeat_on:
            self._monitor = self._tasks.spawn(self._watch(peer), "heartbeat")

    async def _await_flow(self) -> None:
        """Recovered means processed frames flow and the worker has the latest parameters."""
        peer = self.peer
        assert peer is not None
        self._stage("first frame")
        seq = self.processed.seq
        deadline = self.clock.now() + self.settings.connect_timeout_s
        while True:
            if self.params.acked_version < self.params.version and peer.channel_open:
                peer.send_parameters(self.params.version, self.params.parameters)
            frames_ok = self.processed.seq > seq or not self._source_flowing()
            if frames_ok and self.params.in_sync:
                return
            if peer.state in ("failed", "closed"):
                raise SignalingError(f"media connection {peer.state} while recovering")
            if self.clock.now() > deadline:
                what = "processed frames" if not frames_ok else "a parameter acknowledgement"
                raise SignalingError(f"no {what} from the worker after reconnecting")
            await self.clock.sleep(0.02)

    def _source_flowing(self) -> bool:
        src = self.source.updated_at
        return src is not None and self.clock.now() - src <= SOURCE_FRESH_S

    async def _watch(self, peer: WorkerPeer) -> None:
        """Heartbeat pings; report a loss when pongs stop or the worker's frames stop."""
        interval = self.settings.heartbeat_interval_s
        tick = min(interval, 0.1)
        seq, next_ping = 0, self.clock.now()
        while peer is self.peer:
            now = self.clock.now()
            if now >= next_ping:
                seq += 1
                peer.send(heartbeat_ping(seq, now))
                next_ping = now + interval
            if self.state == LinkState.CONNECTED:
                silent = peer.silent_for()
                if silent > self.settings.heartbeat_timeout_s:
                    self._media_lost(f"heartbeat: no answer from the worker for {silent:.1f}s")
                elif self._stalled():
                    self._media_lost(
                        "the worker stopped sending frames while ours flow "
                        "(its heartbeat still answers: the pipeline may be stuck)"
                    )
            await self.clock.sleep(tick)

    async def _media_while_connected(self) -> None:
        """A stream started while connected: set up media; a failure is a loss."""
        try:
            async with self._media_lock:
                if self.state != LinkState.CONNECTED or not self.streaming:
                    return
                if not self.media_healthy():
                    await self._build_media()
                    self._stage(None)
        except (SignalingError, OSError) as exc:
            self._media_lost(str(exc))

    def _on_event(self, event: LinkEvent) -> None:
        if event.new == LinkState.CONNECTED:
            self.webrtc_error = None
        if event.new == LinkState.FAILED:
            # Given up: whatever is left of the media path is dead (detached at once, so
            # nothing counts it as healthy); Retry builds anew.
            self.connect_stage = None
            peer, self.peer = self.peer, None
            if peer is not None:
                self._tasks.spawn(peer.close(), "close-failed-media")
        if event.new == LinkState.CONNECTED and self.streaming and self.peer is None:
            self._tasks.spawn(self._media_while_connected(), "media")

    def _acked(self, version: int) -> None:
        self.params.ack(version)
        self.notify()

    def _peer_state(self, peer: WorkerPeer, state: str) -> None:
        if peer is self.peer and state in ("failed", "closed"):
            self._media_lost(f"media connection to the worker {state}")
        self.notify()

    def _media_lost(self, reason: str) -> None:
        if self.state == LinkState.CONNECTED:
            self.webrtc_error = reason
        self.supervisor.lost(reason)
        self.notify()

    def _signaling_closed(self, reason: str) -> None:
        self.supervisor.lost(f"lost the worker: {reason}")
        self.notify()

    def _stage(self, stage: str | None) -> None:
        self.connect_stage = stage
        self.notify()

    async def _close_peer(self) -> None:
        peer, self.peer = self.peer, None
        await self._tasks.cancel(self._monitor)
        if peer is not None:
            await peer.close()
            self.notify()

    async def _close_signaling(self) -> None:
        signaling, self.signaling = self.signaling, None
        if signaling is not None:
            await signaling.close()

    async def close(self) -> None:
        await self.supervisor.close()
        await self._tasks.close()
        await self.teardown()
