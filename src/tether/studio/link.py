"""The link to the worker: a signaling socket plus, while a stream runs, a peer
connection. Its state is one explicit enum; every transition is an event."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tether.config import StudioSettings
from tether.media import FrameSlot, Signal, SlotTrack
from tether.studio.parameters import ParameterStore
from tether.studio.signaling import SignalingClient, SignalingError
from tether.studio.worker_peer import WorkerPeer
from tether.tasks import TaskOwner

logger = logging.getLogger(__name__)


class LinkState(StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    CLOSING = "closing"


@dataclass(frozen=True)
class LinkEvent:
    """A state transition. ``kind`` is the typed event apps subscribe to:
    connecting, connected, reconnecting, reconnected, failed, disconnected, closing."""

    kind: str
    old: LinkState
    new: LinkState
    reason: str
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "from": self.old.value,
            "to": self.new.value,
            "reason": self.reason,
            "at": self.at,
        }


@dataclass
class LinkStats:
    outages: int = 0
    reconnects: int = 0
    last_outage_s: float | None = None


class WorkerLink:
    def __init__(
        self,
        settings: StudioSettings,
        source: FrameSlot,
        processed: FrameSlot,
        params: ParameterStore,
    ) -> None:
        self.settings = settings
        self.source = source
        self.processed = processed
        self.params = params
        self.state = LinkState.IDLE
        self.error: str | None = None
        self.webrtc_error: str | None = None
        self.connect_stage: str | None = None
        self.worker_url: str | None = None
        self._token: str | None = None
        self.signaling: SignalingClient | None = None
        self.peer: WorkerPeer | None = None
        self.streaming = False
        self.pipelines: list[dict[str, Any]] = []  # last catalog the worker sent
        self.stats = LinkStats()
        self.history: list[LinkEvent] = []
        self.listeners: list[Callable[[LinkEvent], None]] = []
        self.changed = Signal()  # any status change (state, ack, media)
        self._tasks = TaskOwner("link")
        self._main: asyncio.Task[Any] | None = None

    # --- state ---
    def _transition(self, new: LinkState, reason: str, kind: str | None = None) -> None:
        old = self.state
        if old == new:
            return
        self.state = new
        logger.info("link %s -> %s: %s", old.value, new.value, reason)
        event = LinkEvent(kind or new.value, old, new, reason)
        self.history = [*self.history[-49:], event]
        for listener in list(self.listeners):
            listener(event)
        self.notify()

    def notify(self) -> None:
        self.changed.fire()

    @property
    def webrtc_connected(self) -> bool:
        return self.peer is not None and self.peer.state == "connected"

    @property
    def media_live(self) -> bool:
        return self.state == LinkState.CONNECTED and self.webrtc_connected

    @property
    def session_id(self) -> str | None:
        return self.peer.session_id if self.peer else None

    # --- commands ---
    async def connect(self, worker_url: str, token: str | None) -> None:
        """(Re)connect to a worker in the background; status tells how it goes."""
        await self._stop_all()
        self.worker_url, self._token = worker_url, token
        self.error = self.webrtc_error = None
        self._transition(LinkState.CONNECTING, f"connect to {worker_url}")
        self._main = self._tasks.spawn(self._establish(), "establish")

    async def disconnect(self) -> None:
        """Intentional: never an error."""
        if self.state == LinkState.IDLE:
            return
        self._transition(LinkState.CLOSING, "disconnect requested")
        await self._stop_all()
        self.error = self.webrtc_error = None
        self.connect_stage = None
        self._transition(LinkState.IDLE, "disconnected by user", "disconnected")

    async def reconnect(self) -> None:
        """Start over with the last worker URL and token."""
        assert self.worker_url is not None
        await self.connect(self.worker_url, self._token)

    async def debug_drop_media(self) -> None:
        """Close the worker peer connection abruptly, as a network drop would."""
        if self.peer is not None:
            await self.peer.pc.close()

    async def set_streaming(self, active: bool) -> None:
        self.streaming = active
        if not active:
            await self._close_peer()
        elif self.state == LinkState.CONNECTED and self.peer is None:
            self._tasks.spawn(self._start_media_or_fail(), "media")

    def send_parameters(self) -> None:
        if self.peer is not None:
            self.peer.send_parameters(self.params.version, self.params.parameters)

    # --- work ---
    async def _establish(self) -> None:
        try:
            await self._open_signaling()
            if self.streaming:
                await self._start_media()
        except SignalingError as exc:
            self._fail(str(exc))
            return
        self.connect_stage = None
        self._transition(LinkState.CONNECTED, "worker reachable")

    async def _open_signaling(self) -> None:
        assert self.worker_url is not None
        self.connect_stage = "signaling"
        self.notify()
        client = SignalingClient(self.worker_url, self._token)
        await client.connect(self.settings.connect_timeout_s)
        client.on_close = self._signaling_closed
        self.signaling = client
        self.pipelines = list(client.ready.get("pipelines", []))

    async def _start_media_or_fail(self) -> None:
        try:
            await self._start_media()
        except SignalingError as exc:
            self._fail(str(exc))

    async def _start_media(self) -> None:
        assert self.signaling is not None
        self.connect_stage = "offer"
        self.notify()
        peer = WorkerPeer(SlotTrack(self.source), self.processed)
        peer.on_state = self._peer_state
        peer.on_ack = self._acked
        self.peer = peer
        await peer.start(
            self.signaling,
            self.params.parameters,
            self.params.version,
            wait_s=self.settings.connect_timeout_s,
        )
        self.connect_stage = "ice"
        self.notify()
        if not await peer.wait_connected(self.settings.connect_timeout_s):
            raise SignalingError(
                f"media path to the worker did not connect within "
                f"{self.settings.connect_timeout_s:g}s (ICE/DTLS)"
            )
        self.connect_stage = None
        self.webrtc_error = None
        self.notify()

    def _acked(self, version: int) -> None:
        self.params.ack(version)
        self.notify()

    def _peer_state(self, state: str) -> None:
        if state in ("failed", "closed") and self.state == LinkState.CONNECTED:
            self.webrtc_error = f"media connection to the worker {state}"
            self._fail(self.webrtc_error)
        self.notify()

    def _signaling_closed(self, reason: str) -> None:
        if self.state in (LinkState.CONNECTED, LinkState.CONNECTING):
            self._fail(f"lost the worker: {reason}")

    def _fail(self, error: str) -> None:
        self.error = error
        self.stats.outages += 1
        self._transition(LinkState.FAILED, error)

    async def _close_peer(self) -> None:
        peer, self.peer = self.peer, None
        if peer is not None:
            await peer.close()
            self.notify()

    async def _stop_all(self) -> None:
        await self._tasks.cancel(self._main)
        await self._close_peer()
        signaling, self.signaling = self.signaling, None
        if signaling is not None:
            await signaling.close()

    async def close(self) -> None:
        await self._tasks.close()
        await self._stop_all()
