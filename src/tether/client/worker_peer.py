"""One peer connection to the worker: sends a source track, receives the processed
track into a slot, and carries parameters and heartbeats on the data channel."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import MediaStreamTrack, RTCDataChannel, RTCSessionDescription

from tether import protocol
from tether.client.signaling import SignalingClient
from tether.media import FrameSlot, pump
from tether.rtc import create_peer_connection
from tether.tasks import TaskOwner

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resume:
    """What resuming a worker session takes: its id and the secret from its answer."""

    session_id: str
    secret: str


class WorkerPeer:
    def __init__(
        self,
        source: MediaStreamTrack,
        processed: FrameSlot,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pc = create_peer_connection()
        self._now = now
        self.started_at = now()
        self.processed = processed
        self.session_id: str | None = None
        self.resume: Resume | None = None  # for the next peer, should this one be lost
        self.acked_version: int | None = None
        self.params_error: str | None = None
        self.last_pong_at: float | None = None
        self.rtt_ms: float | None = None
        self.on_state: Callable[[str], None] | None = None
        self.on_ack: Callable[[int], None] | None = None
        self._source = source
        self._channel: RTCDataChannel | None = None
        self._tasks = TaskOwner("worker-peer")
        self._connected = asyncio.Event()
        self._channel_open = asyncio.Event()

    @property
    def state(self) -> str:
        return self.pc.connectionState

    @property
    def channel_open(self) -> bool:
        return self._channel is not None and self._channel.readyState == "open"

    async def start(
        self,
        signaling: SignalingClient,
        parameters: dict[str, Any],
        version: int,
        resume: Resume | None = None,
        wait_s: float = 10.0,
    ) -> None:
        """Offer over signaling and apply the answer. Raises SignalingError."""
        pc = self.pc
        pc.addTrack(self._source)
        self._channel = pc.createDataChannel(protocol.DATA_CHANNEL_LABEL)
        self._bind_channel(self._channel)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self._tasks.spawn(pump(track, self.processed), "pump")

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "connected":
                self._connected.set()
            if self.on_state is not None:
                self.on_state(pc.connectionState)

        await pc.setLocalDescription(await pc.createOffer())
        offer: dict[str, Any] = {
            "type": "offer",
            "sdp": pc.localDescription.sdp,
            "sdp_type": "offer",
            "initialParameters": parameters,
            "parameters_version": version,
        }
        if resume is not None:
            offer["resume_session_id"] = resume.session_id
            offer["resume_secret"] = resume.secret
        reply = await signaling.request(offer, wait_s)
        self.session_id = reply.get("sessionId")
        secret = reply.get("resume_secret")
        if isinstance(self.session_id, str) and isinstance(secret, str):
            self.resume = Resume(self.session_id, secret)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))

    async def wait_connected(self, wait_s: float) -> bool:
        try:
            async with asyncio.timeout(wait_s):
                await self._connected.wait()
                await self._channel_open.wait()
        except TimeoutError:
            return False
        return True

    def _bind_channel(self, channel: RTCDataChannel) -> None:
        @channel.on("open")
        def on_open() -> None:
            self._channel_open.set()

        @channel.on("message")
        def on_message(raw: str | bytes) -> None:
            try:
                msg = protocol.decode_channel_message(raw)
            except protocol.ProtocolError as exc:
                logger.warning("worker data channel: %s", exc)
                return
            kind = msg["type"]
            if kind == "pong":
                now = self._now()
                self.last_pong_at = now
                if isinstance(msg.get("t"), int | float):
                    self.rtt_ms = (now - msg["t"]) * 1000.0
            elif kind == "parameters_ack" and isinstance(msg.get("version"), int):
                self.acked_version = msg["version"]
                self.params_error = None
                if self.on_ack is not None:
                    self.on_ack(msg["version"])
            elif kind == "parameters_error":
                self.params_error = str(msg.get("message"))
                logger.warning("worker rejected parameters v%s: %s", msg.get("version"), msg)
            elif kind == "error":
                logger.warning("worker data channel error: %s", msg.get("message"))

    def send(self, text: str) -> bool:
        if not self.channel_open:
            return False
        assert self._channel is not None
        self._channel.send(text)
        return True

    def send_parameters(self, version: int, parameters: dict[str, Any]) -> bool:
        return self.send(protocol.parameters_message(version, parameters))

    def silent_for(self) -> float:
        """Seconds since the last pong (or since the start, before the first)."""
        return self._now() - (self.last_pong_at or self.started_at)

    async def close(self) -> None:
        self.on_state = None
        self.on_ack = None
        await self._tasks.close()
        await self.pc.close()
