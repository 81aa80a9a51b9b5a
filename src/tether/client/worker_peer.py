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
from tether.client.media_latency import MediaLatency
from tether.client.signaling import SignalingClient
from tether.media import forwarding
from tether.media.frames import FrameSlot, pump
from tether.rtc.encoded_frame import EncodedFrame
from tether.rtc.encoder import carry_bitrate
from tether.rtc.ice import create_peer_connection
from tether.rtc.measures import datagrams_received, on_frame_sent, receiver_of, wire_timestamp
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
        relay: bool = False,
    ) -> None:
        self.pc = create_peer_connection()
        self.relay = relay  # forward encoded video (the studio) instead of decoding it
        self._now = now
        self.started_at = now()
        self.connected_at: float | None = None  # silence is counted from here
        self.processed = processed
        self.session_id: str | None = None
        self.resume: Resume | None = None  # for the next peer, should this one be lost
        self.acked_version: int | None = None
        self.params_error: str | None = None
        self.pipeline_error: str | None = None  # the worker's pipeline failing on frames
        # Loading, ready or failing, as the worker last said, and when it said so.
        self._pipeline_state: protocol.PipelineState | None = None
        self._pipeline_state_at = 0.0
        # The pipeline's pace as the worker measures it (its last pong): fps, p50 ms.
        self.pipeline_fps: float | None = None
        self.pipeline_ms: float | None = None
        self.answer: protocol.Answer | None = None  # the worker's answer (resume details)
        self.last_pong_at: float | None = None
        self._heard_at: float | None = None
        self.worker_output_at: float | None = None  # the worker's output last grew
        self._worker_frames: int | None = None
        self.worker_input_at: float | None = None  # the worker's input last grew
        self._worker_input: int | None = None
        self._datagrams = 0
        self.rtt_ms: float | None = None
        self.latency = MediaLatency(now)  # the media round trip, from the frames
        self.on_state: Callable[[str], None] | None = None
        self.on_ack: Callable[[int], None] | None = None
        self._source = source
        self._channel: RTCDataChannel | None = None
        self._heartbeat: RTCDataChannel | None = None
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
        ice_servers = await signaling.ice_servers()
        if ice_servers:  # STUN/TURN from the worker: the peer must be made with them
            unused, self.pc = self.pc, create_peer_connection(ice_servers)
            await unused.close()
        pc = self.pc
        on_frame_sent(pc.addTrack(self._source), lambda _, wire: self.latency.sent(wire))
        self._open_channels()
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_connection_state)
        await pc.setLocalDescription(await pc.createOffer())
        offer = protocol.Offer(
            type="offer",
            sdp=pc.localDescription.sdp,
            initial_parameters=parameters,
            parameters_version=version,
            resume_session_id=resume.session_id if resume else None,
            resume_secret=resume.secret if resume else None,
        )
        answer = await signaling.request(offer, protocol.Answer, wait_s)
        self.answer = answer
        self.session_id = answer.session_id
        self.resume = Resume(answer.session_id, answer.resume_secret)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))

    def _open_channels(self) -> None:
        self._channel = self.pc.createDataChannel(protocol.DATA_CHANNEL_LABEL)
        self._bind_channel(self._channel)
        # Its own channel, unordered and never retransmitted: a lost ping is just lost,
        # and never holds later pongs back behind a retransmit.
        self._heartbeat = self.pc.createDataChannel(
            protocol.HEARTBEAT_CHANNEL_LABEL, ordered=False, maxRetransmits=0
        )
        self._heartbeat.on("message", self._on_message)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "video":
            return
        pc = self.pc
        if self.relay:
            forwarding.attach(pc, track)
        receiver = receiver_of(pc, track)

        def arrived(unit: Any) -> None:
            stamp = unit.timestamp if isinstance(unit, EncodedFrame) else unit.pts
            if receiver is None or stamp is None:
                return
            wire = wire_timestamp(receiver, stamp)
            if wire is not None:
                self.latency.arrived(wire)

        self._tasks.spawn(pump(track, self.processed, arrived), "pump")

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            if self.connected_at is None:
                self.connected_at = self._now()
            self._connected.set()
        if self.on_state is not None:
            self.on_state(state)

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

        channel.on("message", self._on_message)

    def _on_message(self, raw: str | bytes) -> None:
        try:
            msg = protocol.parse_channel_message(raw)
        except protocol.ProtocolError as exc:
            logger.warning("worker data channel: %s", exc)
            return
        if isinstance(msg, protocol.HeartbeatPong):
            now = self._now()
            self.last_pong_at = now
            self.rtt_ms = (now - msg.t) * 1000.0
            if msg.frames_out is not None and msg.frames_out != self._worker_frames:
                self._worker_frames, self.worker_output_at = msg.frames_out, now
            if msg.frames_in is not None and msg.frames_in != self._worker_input:
                self._worker_input, self.worker_input_at = msg.frames_in, now
            self.pipeline_fps, self.pipeline_ms = msg.pipeline_fps, msg.pipeline_ms
        elif isinstance(msg, protocol.ParametersAck):
            self.acked_version = msg.version
            self.params_error = None
            if self.on_ack is not None:
                self.on_ack(msg.version)
        elif isinstance(msg, protocol.ParametersError):
            self.params_error = msg.message
            logger.warning("worker rejected parameters v%d: %s", msg.version, msg.message)
        elif isinstance(msg, protocol.FrameTiming):
            self.latency.reported(msg.input, msg.output, msg.worker_ms)
        elif isinstance(msg, protocol.PipelineError):
            self.pipeline_error = msg.message
        elif isinstance(msg, protocol.PipelineState):
            self._pipeline_state, self._pipeline_state_at = msg, self._now()
        elif isinstance(msg, protocol.ChannelError):
            logger.warning("worker data channel error: %s", msg.message)

    @property
    def pipeline_loading(self) -> bool:
        """The worker says its frames wait for a pipeline's load (they are late for that).
        A load beside a running pipeline (make-before-break) keeps the frames coming."""
        state = self._pipeline_state
        return state is not None and state.state == "loading" and state.running is None

    def pipeline_state(self) -> protocol.PipelineState | None:
        """The worker's pipeline state; a load's time counted on to now."""
        state = self._pipeline_state
        if state is None or state.state != "loading" or state.elapsed_s is None:
            return state
        since = max(self._now() - self._pipeline_state_at, 0.0)
        return state.model_copy(update={"elapsed_s": state.elapsed_s + since})

    def send(self, text: str) -> bool:
        if not self.channel_open:
            return False
        assert self._channel is not None
        self._channel.send(text)
        return True

    def send_parameters(self, version: int, parameters: dict[str, Any]) -> bool:
        return self.send(
            protocol.encode(protocol.Parameters(version=version, parameters=parameters))
        )

    def last_heard_at(self) -> float | None:
        """When a datagram last arrived from the worker (checked on each call)."""
        count = datagrams_received(self.pc)
        if count != self._datagrams:
            self._datagrams, self._heard_at = count, self._now()
        return self._heard_at

    def send_ping(self, seq: int, t: float) -> bool:
        channel = self._heartbeat
        if channel is None or channel.readyState != "open":
            return False
        channel.send(protocol.encode(protocol.HeartbeatPing(seq=seq, t=t)))
        return True

    async def close(self) -> None:
        self.on_state = None
        self.on_ack = None
        await self._tasks.close()
        carry_bitrate(self.pc)  # the next peer starts where this one's feedback had got to
        await self.pc.close()
