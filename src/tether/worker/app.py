"""The worker's HTTP and WebSocket surface."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from aiortc import RTCSessionDescription
from aiortc.sdp import candidate_from_sdp
from fastapi import FastAPI, Header, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from tether import __version__, protocol
from tether.config import WorkerSettings
from tether.media.sdp_check import BadOffer, check_offer_sdp
from tether.pipelines import describe, load_pipelines
from tether.rtc.adapter import MediaAdapter
from tether.rtc.ice import create_peer_connection
from tether.tasks import TaskOwner
from tether.worker.capacity import Capacity, Refused
from tether.worker.ice import IceServers
from tether.worker.session import MediaSession, ParameterError, SessionState

logger = logging.getLogger(__name__)

# Offers in negotiation per signaling socket; more get a `busy` error.
MAX_PENDING_OFFERS = 2


class ResumeDenied(Exception):
    pass


class Worker:
    """Owns the sessions, the pipeline thread pool, and every task of the worker."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.instance_id = uuid.uuid4().hex[:12]
        self.pipelines = load_pipelines()
        self.sessions: dict[str, MediaSession] = {}
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pipeline")
        self.tasks = TaskOwner("worker")
        self.capacity = Capacity(settings.max_sessions)
        self.connections: set[SignalingConnection] = set()
        self._reserved: set[MediaSession] = set()  # offers negotiating: their slots are taken
        self._expiry: dict[str, asyncio.Task[Any]] = {}
        secret = settings.turn_secret.get_secret_value() if settings.turn_secret else None
        self.ice = IceServers(settings.ice_servers, settings.turn_urls, secret, settings.turn_ttl_s)

    def check_token(self, presented: str | None) -> bool:
        expected = self.settings.token
        if expected is None:
            return True
        return presented is not None and hmac.compare_digest(
            presented.encode(), expected.get_secret_value().encode()
        )

    def pipeline_catalog(self) -> list[dict[str, Any]]:
        return [describe(p) for p in self.pipelines.values()]

    def held(self, excluding_owner: str | None = None) -> int:
        """Slots in use: sessions whose studio is attached (connecting or streaming),
        and offers being negotiated."""
        live = (SessionState.CONNECTING, SessionState.ACTIVE)
        taken = {s for s in self.sessions.values() if s.state in live} | self._reserved
        return sum(1 for s in taken if excluding_owner is None or s.owner != excluding_owner)

    def _make_room(self, owner: str) -> None:
        """A warm session keeps its slot only until someone else needs it: the oldest
        warm sessions of other studios are let go to fit one more."""
        warm = [
            s for s in self.sessions.values() if s.state == SessionState.WARM and s.owner != owner
        ]
        excess = self.held(excluding_owner=owner) + len(warm) + 1 - self.capacity.max_sessions
        for session in sorted(warm, key=lambda s: s.lost_at or 0.0)[: max(excess, 0)]:
            logger.info("session %s let go: its slot is needed", session.id)
            self.sessions.pop(session.id, None)
            self.tasks.spawn(session.close(), f"evict-{session.id}")

    def load(self) -> dict[str, Any]:
        return self.capacity.load(self.held(), self.pipelines)

    async def open_session(self, offer: protocol.Offer, owner: str) -> tuple[MediaSession, bool]:
        """Make (or resume) a session for an offer; returns it and whether it resumed.

        Everything is checked, and the new peer connection negotiated, before an
        existing session is touched: a failed offer leaves it as it was. ``owner`` is
        the signaling connection: a studio runs one stream at a time, so its new session
        replaces the ones it had, once accepted. Raises Refused when full or draining."""
        session = self.sessions.get(offer.resume_session_id or "")
        resumed = session is not None and session.state != SessionState.CLOSED
        if resumed:
            assert session is not None
            if not session.owns(offer.resume_secret):
                raise ResumeDenied(
                    f"cannot resume session {session.id}: wrong or missing resume_secret"
                )
        # Decide and take the slot with no await in between: racing offers can't both win.
        self.capacity.admit(self.held(excluding_owner=owner), resumed)
        if not resumed:
            self._make_room(owner)
            session = MediaSession(self.pipelines, self.executor)
            session.on_lost = self._start_grace
            session.owner = owner
            self._reserved.add(session)
        assert session is not None
        try:
            apply = not resumed or offer.parameters_version >= session.version
            if apply:
                session.check(offer.initial_parameters)
            check_offer_sdp(offer.sdp)
            pc = create_peer_connection(self.ice.servers("worker"))
            session.attach(pc)
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
                if not any(t.kind == "video" for t in pc.getTransceivers()):
                    raise BadOffer("the offer has no video track")
                await pc.setLocalDescription(await pc.createAnswer())
                if session.state == SessionState.CLOSED:
                    raise BadOffer("the session expired meanwhile")
            except Exception:
                await pc.close()
                if not resumed:
                    await session.close()
                raise
            session.commit(pc)
            if apply:
                session.apply(offer.initial_parameters, offer.parameters_version)
            await self.tasks.cancel(self._expiry.pop(session.id, None))
            session.owner = owner
            self.sessions[session.id] = session
        finally:
            self._reserved.discard(session)
        for other in [s for s in self.sessions.values() if s.owner == owner and s is not session]:
            await self._drop(other)
        return session, resumed

    def _start_grace(self, session: MediaSession) -> None:
        if self.capacity.draining:  # nobody resumes on a draining worker
            self.tasks.spawn(self._drop(session), f"drop-{session.id}")
            return
        if session.id in self._expiry:
            return
        # A Stop and a network loss look alike from here: say what we know, not "lost".
        logger.info(
            "session %s: peer connection ended; kept %.0fs for a resume",
            session.id,
            self.settings.session_grace_s,
        )
        self._expiry[session.id] = self.tasks.spawn(self._expire(session), f"expire-{session.id}")

    async def _expire(self, session: MediaSession) -> None:
        await asyncio.sleep(self.settings.session_grace_s)
        self._expiry.pop(session.id, None)
        if session.state == SessionState.WARM:
            logger.info("session %s expired", session.id)
            await self._drop(session)

    async def drop_owned_by(self, owner: str) -> None:
        for session in [s for s in self.sessions.values() if s.owner == owner]:
            await self._drop(session)

    async def _drop(self, session: MediaSession) -> None:
        self.sessions.pop(session.id, None)
        await session.close()

    # --- drain ---
    def begin_drain(self) -> None:
        """Take no new sessions, tell every studio to move, let go of warm sessions."""
        if self.capacity.draining:
            return
        self.capacity.draining = True
        logger.info(
            "draining: %d streaming session(s), %.0fs deadline",
            self.held(),
            self.settings.drain_s,
        )
        for connection in list(self.connections):
            connection.notify_draining(self.settings.drain_s)
        for session in list(self.sessions.values()):
            if session.state == SessionState.WARM:
                self.tasks.spawn(self._drop(session), f"drop-{session.id}")

    async def drained(self) -> None:
        """Return once no studio streams here any more, or at the drain deadline."""
        deadline = time.monotonic() + self.settings.drain_s
        while self.held() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        left = self.held()
        if left:
            logger.warning("drain deadline reached with %d session(s) still streaming", left)
        else:
            logger.info("drained: no session left")

    async def close(self) -> None:
        await self.tasks.close()
        for session in list(self.sessions.values()):
            await self._drop(session)
        self.executor.shutdown(wait=True, cancel_futures=True)


class SignalingConnection:
    """One studio's signaling socket."""

    def __init__(self, worker: Worker, websocket: WebSocket) -> None:
        self.worker = worker
        self.websocket = websocket
        self.id = uuid.uuid4().hex[:12]
        self.tasks = TaskOwner(f"signaling-{self.id}")
        self._send_lock = asyncio.Lock()
        self._offers = 0

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_text(protocol.json_dumps(message))

    def notify_draining(self, deadline_s: float) -> None:
        message = {"type": "draining", "deadline_s": deadline_s}
        self.tasks.spawn(self.send(message), "draining")

    async def run(self) -> None:
        await self.send(
            protocol.ready(self.id, self.worker.instance_id, self.worker.pipeline_catalog())
        )
        self.worker.connections.add(self)
        if self.worker.capacity.draining:
            self.notify_draining(self.worker.settings.drain_s)
        try:
            while True:
                event = await self.websocket.receive()
                if event["type"] == "websocket.disconnect":
                    return
                raw = event.get("text") if event.get("text") is not None else event.get("bytes")
                try:
                    await self.handle(raw or "")
                except (WebSocketDisconnect, OSError, RuntimeError):
                    raise
                except Exception:  # a bug must not drop the socket without a close frame
                    logger.exception("signaling message failed")
                    await self.send(protocol.error(None, "internal error", "internal"))
        except (WebSocketDisconnect, OSError, RuntimeError):
            return
        finally:
            self.worker.connections.discard(self)
            await self.tasks.close()
            if self.worker.capacity.draining:
                # Its studio has gone (moved, or died): nothing will resume here.
                await self.worker.drop_owned_by(self.id)

    async def handle(self, raw: str | bytes) -> None:
        try:
            msg = protocol.parse_studio_message(raw)
        except protocol.ProtocolError as exc:
            await self.send(protocol.error(exc.request_id, str(exc), "bad_message"))
            return
        if isinstance(msg, protocol.Ping):
            await self.send({"type": "pong", "request_id": msg.request_id, "t": msg.t})
        elif isinstance(msg, protocol.GetIceServers):
            servers = self.worker.ice.servers(self.id)
            await self.send(
                {"type": "ice_servers", "request_id": msg.request_id, "ice_servers": servers}
            )
        elif isinstance(msg, protocol.Offer):
            if self._offers >= MAX_PENDING_OFFERS:
                await self.send(protocol.error(msg.request_id, "too many offers at once", "busy"))
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
            await self.send(protocol.error(offer.request_id, str(exc), exc.code))
            return
        except ParameterError as exc:
            await self.send(protocol.error(offer.request_id, f"bad initialParameters: {exc}"))
            return
        except ResumeDenied as exc:
            await self.send(protocol.error(offer.request_id, str(exc), "resume_denied"))
            return
        except Exception as exc:
            logger.warning("offer failed: %s", exc)
            await self.send(protocol.error(offer.request_id, f"could not accept offer: {exc}"))
            return
        finally:
            self._offers -= 1
        local = session.pc.localDescription
        await self.send(
            protocol.answer(offer.request_id, local.sdp, session.id, resumed, session.resume_secret)
        )

    async def _add_candidate(self, msg: protocol.IceCandidate) -> None:
        # aiortc gathers all candidates before answering, so trickled ones are optional.
        session = self.worker.sessions.get(msg.session_id or "")
        if session is None or session.pc is None:
            await self.send(protocol.error(msg.request_id, "icecandidate for an unknown session"))
            return
        if not msg.candidate or not msg.candidate.get("candidate"):
            return
        try:
            candidate = candidate_from_sdp(msg.candidate["candidate"].removeprefix("candidate:"))
            candidate.sdpMid = msg.candidate.get("sdpMid")
            candidate.sdpMLineIndex = msg.candidate.get("sdpMLineIndex")
            await session.pc.addIceCandidate(candidate)
        except Exception as exc:
            await self.send(protocol.error(msg.request_id, f"bad candidate: {exc}"))


async def _exit_with_parent(parent_pid: int) -> None:
    """`tether up` starts us; if it dies without stopping us, stop ourselves."""
    while os.getppid() == parent_pid:  # noqa: ASYNC110 - nothing to wait on but a poll
        await asyncio.sleep(1.0)
    logger.warning("parent process %d is gone; shutting down", parent_pid)
    os.kill(os.getpid(), signal.SIGTERM)


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def create_worker_app(settings: WorkerSettings) -> FastAPI:
    worker = Worker(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.parent_pid:
            worker.tasks.spawn(_exit_with_parent(settings.parent_pid), "parent-watch")
        loop = asyncio.get_running_loop()

        async def drain_then(exit_now: Callable[[], None]) -> None:
            worker.begin_drain()
            await worker.drained()
            exit_now()

        # The server calls this on SIGTERM, from its signal handler: drain, then exit.
        app.state.request_drain = lambda exit_now: loop.call_soon_threadsafe(
            lambda: worker.tasks.spawn(drain_then(exit_now), "drain")
        )
        yield
        await worker.close()

    media = MediaAdapter.from_settings(settings, [settings.host])  # for as long as the app runs
    app = FastAPI(title="Tether worker", version=__version__, lifespan=media.around(lifespan))
    app.state.worker = worker
    started = time.monotonic()

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "sessions": len(worker.sessions),
            "uptime_s": round(time.monotonic() - started, 1),
        }

    def require_token(authorization: str | None) -> None:
        if not worker.check_token(_bearer(authorization)):
            raise HTTPException(401, "missing or invalid token (Authorization: Bearer <token>)")

    @app.get("/api/v1/sessions")
    async def sessions(authorization: str | None = Header(default=None)) -> dict[str, Any]:
        require_token(authorization)
        return {"sessions": [s.describe() for s in worker.sessions.values()]}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """Readiness for a load balancer or Kubernetes: 503 when full or draining."""
        ok, why = worker.capacity.ready(worker.held())
        return JSONResponse({"ready": ok, "state": why}, status_code=200 if ok else 503)

    @app.get("/api/v1/load")
    async def load(authorization: str | None = Header(default=None)) -> dict[str, Any]:
        require_token(authorization)
        return worker.load()

    @app.post("/api/v1/drain")
    async def drain(authorization: str | None = Header(default=None)) -> dict[str, Any]:
        """Start draining (what SIGTERM does); poll /api/v1/load until sessions is 0."""
        require_token(authorization)
        worker.begin_drain()
        return worker.load()

    @app.get("/api/v1/pipelines")
    async def pipelines(authorization: str | None = Header(default=None)) -> dict[str, Any]:
        require_token(authorization)
        return {"pipelines": worker.pipeline_catalog()}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        # The header only: a URL ends up in access logs and proxies' logs.
        token = _bearer(websocket.headers.get("authorization"))
        await websocket.accept()
        if "token" in websocket.query_params:
            await websocket.close(
                protocol.AUTH_FAILED_CLOSE_CODE,
                "token in the URL refused: send it as 'Authorization: Bearer <token>'",
            )
            return
        if not worker.check_token(token):
            reason = "invalid token" if token else "missing token"
            await websocket.close(
                protocol.AUTH_FAILED_CLOSE_CODE, f"{reason}: authentication failed"
            )
            return
        await SignalingConnection(worker, websocket).run()

    return app
