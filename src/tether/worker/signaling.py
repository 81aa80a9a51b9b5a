"""One studio's signaling socket at the worker: it says ``ready``, answers pings and
ICE-server requests, turns offers into sessions, and tells the studio when the worker
drains. Every message it sends is a ``tether.protocol`` model."""

from __future__ import annotations

import asyncio
import logging
import uuid

from aiortc.sdp import candidate_from_sdp
from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel

from tether import protocol
from tether.tasks import TaskOwner
from tether.worker.capacity import Refused
from tether.worker.session import ParameterError
from tether.worker.worker import ResumeDenied, Worker

logger = logging.getLogger(__name__)

# Offers in negotiation per signaling socket; more get a `busy` error.
MAX_PENDING_OFFERS = 2
# Errors that end the socket itself: nothing more can be sent on it.
SOCKET_GONE = (WebSocketDisconnect, OSError, RuntimeError)


def error(request_id: str | None, message: str, code: str = "bad_request") -> protocol.WorkerError:
    return protocol.WorkerError(request_id=request_id, code=code, message=message)


class SignalingConnection:
    """One studio's signaling socket."""

    def __init__(self, worker: Worker, websocket: WebSocket) -> None:
        self.worker = worker
        self.websocket = websocket
        self.id = uuid.uuid4().hex[:12]
        self.tasks = TaskOwner(f"signaling-{self.id}")
        self._send_lock = asyncio.Lock()
        self._offers = 0

    async def send(self, message: BaseModel) -> None:
        async with self._send_lock:
            await self.websocket.send_text(protocol.encode(message))

    def notify_draining(self, deadline_s: float) -> None:
        self.tasks.spawn(self.send(protocol.Draining(deadline_s=deadline_s)), "draining")

    async def run(self) -> None:
        worker = self.worker
        ready = protocol.Ready(
            connection_id=self.id,
            instance_id=worker.instance_id,
            pipelines=worker.pipeline_catalog(),
        )
        await self.send(ready)
        worker.drain_listeners.add(self.notify_draining)
        if worker.capacity.draining:
            self.notify_draining(worker.settings.drain_s)
        try:
            await self._receive_all()
        except SOCKET_GONE:
            return
        finally:
            worker.drain_listeners.discard(self.notify_draining)
            await self.tasks.close()
            if worker.capacity.draining:
                # Its studio has gone (moved, or died): nothing will resume here.
                await worker.drop_owned_by(self.id)
            else:
                # A session still negotiating would hold its slot until ICE gives up.
                await worker.drop_unconnected(self.id)

    async def _receive_all(self) -> None:
        while True:
            event = await self.websocket.receive()
            if event["type"] == "websocket.disconnect":
                return
            raw = event.get("text") if event.get("text") is not None else event.get("bytes")
            try:
                await self.handle(raw or "")
            except SOCKET_GONE:
                raise
            except Exception:  # a bug must not drop the socket without a close frame
                logger.exception("signaling message failed")
                await self.send(error(None, "internal error", "internal"))

    async def handle(self, raw: str | bytes) -> None:
        try:
            msg = protocol.parse_studio_message(raw)
        except protocol.ProtocolError as exc:
            await self.send(error(exc.request_id, str(exc), "bad_message"))
            return
        if isinstance(msg, protocol.Ping):
            await self.send(protocol.Pong(request_id=msg.request_id, t=msg.t))
        elif isinstance(msg, protocol.GetIceServers):
            servers = self.worker.ice.servers(self.id)
            await self.send(
                protocol.IceServersReply(request_id=msg.request_id, ice_servers=servers)
            )
        elif isinstance(msg, protocol.Offer):
            if self._offers >= MAX_PENDING_OFFERS:
                await self.send(error(msg.request_id, "too many offers at once", "busy"))
                return
            # Offers take a while (ICE gathering); keep answering pings meanwhile.
            self._offers += 1
            self.tasks.spawn(self._answer(msg), "offer")
        elif isinstance(msg, protocol.IceCandidate):
            await self._add_candidate(msg)

    async def _answer(self, offer: protocol.Offer) -> None:
        try:
            session, resumed = await self.worker.open_session(offer, self.id)
        except Refused as exc:
            await self.send(error(offer.request_id, str(exc), exc.code))
            return
        except ParameterError as exc:
            await self.send(error(offer.request_id, f"bad initialParameters: {exc}"))
            return
        except ResumeDenied as exc:
            await self.send(error(offer.request_id, str(exc), "resume_denied"))
            return
        except Exception as exc:
            logger.warning("offer failed: %s", exc)
            await self.send(error(offer.request_id, f"could not accept offer: {exc}"))
            return
        finally:
            self._offers -= 1
        answer = protocol.Answer(
            request_id=offer.request_id,
            sdp=session.pc.localDescription.sdp,
            session_id=session.id,
            resumed=resumed,
            resume_secret=session.resume_secret,
        )
        await self.send(answer)

    async def _add_candidate(self, msg: protocol.IceCandidate) -> None:
        # aiortc gathers all candidates before answering, so trickled ones are optional.
        session = self.worker.sessions.get(msg.session_id or "")
        if session is None or session.pc is None:
            await self.send(error(msg.request_id, "icecandidate for an unknown session"))
            return
        if not msg.candidate or not msg.candidate.get("candidate"):
            return
        try:
            candidate = candidate_from_sdp(msg.candidate["candidate"].removeprefix("candidate:"))
            candidate.sdpMid = msg.candidate.get("sdpMid")
            candidate.sdpMLineIndex = msg.candidate.get("sdpMLineIndex")
            await session.pc.addIceCandidate(candidate)
        except Exception as exc:
            await self.send(error(msg.request_id, f"bad candidate: {exc}"))
