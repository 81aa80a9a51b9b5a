"""A worker media session: receive video, run the pipeline on the newest frame, send
the result back, apply parameters from the data channel.

A session outlives its peer connection: after a loss it stays warm for a grace
period, so an offer with ``resume_session_id`` re-attaches its pipeline and parameters.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection
from pydantic import BaseModel, ValidationError

from tether import protocol
from tether.media.frames import FrameSlot, pump
from tether.pipelines import Pipeline, PipelineParams, UnknownPipeline, resolve
from tether.rtc.measures import on_frame_sent, receiver_of
from tether.tasks import TaskOwner
from tether.worker.engine import Engine
from tether.worker.processed_track import ProcessedTrack
from tether.worker.stream_pipeline import StreamPipeline

logger = logging.getLogger(__name__)


class SessionState(StrEnum):
    CONNECTING = "connecting"
    ACTIVE = "active"
    WARM = "warm"  # peer connection lost, waiting for a resume
    CLOSED = "closed"


class ParameterError(ValueError):
    pass


# Sends one message on a data channel (if it is open).
Send = Callable[[BaseModel], None]


class MediaSession:
    def __init__(self, pipelines: dict[str, Pipeline], engine: Engine) -> None:
        self.id = uuid.uuid4().hex[:12]
        # Given only to the studio that made the session (in its answer); a resume needs it.
        self.resume_secret = secrets.token_urlsafe(24)
        self.state = SessionState.CONNECTING
        # Whether media ever connected: only such a session is kept for a resume when its
        # studio's socket closes (one that never connected has nothing to resume).
        self.has_connected = False
        self.input = FrameSlot("worker.in")
        self.frames_out = 0
        self._send: Send | None = None  # the data channel's send, once bound
        self._send_timing: Send | None = None  # the heartbeat channel's send, once bound
        self.resumes = 0
        self.created_at = time.time()
        self.parameters: dict[str, Any] = {}
        self.version = 0
        self._pipelines = pipelines
        self._tasks = TaskOwner(f"session-{self.id}")
        # The worker's engine: its models load once per process, whichever session asks.
        # Running, loading or failing: told to the studio on the parameters channel.
        self.pipeline = StreamPipeline(
            engine, self._send_message, self._tasks.spawn, *resolve(pipelines, {})
        )
        self.pc: RTCPeerConnection | None = None
        # Told when the peer connection ends and the session goes warm (by the Worker).
        self.on_lost: Callable[[MediaSession], None] | None = None
        self.owner: str | None = None  # the signaling connection whose stream this is
        self.lost_at: float | None = None  # when it last went warm

    @property
    def frames_in(self) -> int:
        return self.input.seq

    @property
    def pipeline_errors(self) -> int:  # frames the pipeline failed on, for the session's life
        return self.pipeline.errors

    @property
    def pipeline_error(self) -> str | None:  # the last failure, while it is failing
        return self.pipeline.error

    def owns(self, secret: str | None) -> bool:
        return secret is not None and hmac.compare_digest(
            secret.encode(), self.resume_secret.encode()
        )

    # --- parameters ---
    def check(self, parameters: dict[str, Any]) -> tuple[Pipeline, PipelineParams]:
        """The pipeline and parameters a set resolves to, or ParameterError; changes nothing."""
        try:
            return resolve(self._pipelines, parameters)
        except UnknownPipeline as exc:
            raise ParameterError(exc.message) from None
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "parameters"
            raise ParameterError(f"{where}: {err['msg']}") from None

    def apply(self, parameters: dict[str, Any], version: int) -> None:
        """Apply a full parameter set; the previous one stays on error."""
        if version < self.version:
            return  # stale: a newer set was applied already
        pipeline, params = self.check(parameters)
        self.parameters = dict(parameters)
        self.version = version
        logger.info("session %s: parameters v%d (%s)", self.id, version, pipeline.name)
        self.pipeline.choose(pipeline, params)

    # --- media ---
    async def process(self, frame: av.VideoFrame) -> av.VideoFrame:
        # Never on the event loop: a model that loads or runs for seconds must leave the
        # heartbeat answering (tether.worker.runner runs it off the loop).
        out = await self.pipeline.process(frame)
        self.frames_out += 1
        return out

    def _send_message(self, message: BaseModel) -> None:
        if self._send is not None:
            self._send(message)

    def attach(self, pc: RTCPeerConnection) -> None:
        """Bind a new peer connection's events to this session, before the offer is set.
        The session keeps its current one until ``commit``: an offer that fails leaves
        it untouched."""

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self._tasks.spawn(pump(track, self.input), "pump")
                processed = ProcessedTrack(
                    self.input, self.process, self.report_timing, receiver_of(pc, track)
                )
                on_frame_sent(pc.addTrack(processed), processed.sent)

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label == protocol.DATA_CHANNEL_LABEL:
                self._bind_channel(channel)
            elif channel.label == protocol.HEARTBEAT_CHANNEL_LABEL:
                self._bind_heartbeat(channel)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc is not self.pc:
                return
            if pc.connectionState == "connected":
                self.state = SessionState.ACTIVE
                self.has_connected = True
            elif pc.connectionState in ("failed", "closed") and self.state != SessionState.CLOSED:
                self.state = SessionState.WARM
                self.lost_at = time.monotonic()
                if self.on_lost:
                    self.on_lost(self)

    def commit(self, pc: RTCPeerConnection) -> None:
        """The offer on ``pc`` succeeded: it replaces the session's peer connection."""
        old = self.pc
        self.pc = pc
        if old is not None:
            self.resumes += 1
            self._tasks.spawn(old.close(), "close-old-pc")
        self.state = SessionState.CONNECTING

    def _bind_channel(self, channel: RTCDataChannel) -> None:
        def send(message: BaseModel) -> None:
            if channel.readyState == "open":
                channel.send(protocol.encode(message))

        self._send = send

        @channel.on("open")
        def on_open() -> None:
            send(protocol.ParametersAck(version=self.version))
            if self.pipeline.reported is not None:  # a resumed session: where its pipeline is
                send(self.pipeline.reported)
            if self.pipeline.error is not None:  # a resumed session that is still failing
                self.pipeline.send_error()

        if channel.readyState == "open":
            on_open()

        @channel.on("message")
        def on_message(raw: str | bytes) -> None:
            try:
                msg = protocol.parse_channel_message(raw)
            except protocol.ProtocolError as exc:
                send(protocol.ChannelError(message=str(exc)))
                return
            if isinstance(msg, protocol.HeartbeatPing):  # an older studio pings here
                send(protocol.HeartbeatPong(seq=msg.seq, t=msg.t))
            elif isinstance(msg, protocol.Parameters):
                try:
                    self.apply(msg.parameters, msg.version)
                except ParameterError as exc:
                    send(protocol.ParametersError(version=msg.version, message=str(exc)))
                    return
                # Acknowledge what is applied now: this version, or a newer one when this
                # was stale. Never a version that was not applied.
                send(protocol.ParametersAck(version=self.version))
            else:
                send(protocol.ChannelError(message=f"unexpected message type {msg.type!r}"))

    def report_timing(self, timing: protocol.FrameTiming) -> None:
        if self._send_timing is not None:
            self._send_timing(timing)

    def _bind_heartbeat(self, channel: RTCDataChannel) -> None:
        def send(message: BaseModel) -> None:
            if channel.readyState == "open":
                channel.send(protocol.encode(message))

        # Timing reports ride the lossy channel: a lost one is just one sample fewer.
        self._send_timing = send

        @channel.on("message")
        def on_message(raw: str | bytes) -> None:
            try:
                msg = protocol.parse_channel_message(raw)
            except protocol.ProtocolError:
                return  # nothing to answer on a lossy channel
            if isinstance(msg, protocol.HeartbeatPing):
                frames = {"frames_in": self.frames_in, "frames_out": self.frames_out}
                meter = self.pipeline.meter
                send(
                    protocol.HeartbeatPong(
                        seq=msg.seq,
                        t=msg.t,
                        pipeline_fps=meter.fps(),
                        pipeline_ms=meter.p50_ms(),
                        **frames,
                    )
                )

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state.value,
            "pipeline": self.pipeline.current.name,
            "pipeline_loading": self.pipeline.wanted.name if self.pipeline.wanted else None,
            "parameters": self.parameters,
            "parameters_version": self.version,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "pipeline_errors": self.pipeline_errors,
            "pipeline_error": self.pipeline_error,
            "pipeline_state": self.pipeline.reported.state if self.pipeline.reported else None,
            "resumes": self.resumes,
            "created_at": self.created_at,
        }

    async def close(self) -> None:
        self.state = SessionState.CLOSED
        self.pipeline.close()  # first: a frame still in flight starts nothing more
        await self._tasks.close()
        if self.pc is not None:
            await self.pc.close()
