"""The worker itself: its media sessions, the pipeline thread pool, the slots they
take, and the drain. The HTTP routes and the signaling sockets call into it."""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from collections.abc import Callable
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from tether import protocol
from tether.clock import Clock, MonotonicClock
from tether.config import WorkerSettings
from tether.media.sdp_check import BadOffer, check_offer_sdp
from tether.pipelines import describe, load_pipelines
from tether.rtc.ice import create_peer_connection
from tether.tasks import TaskOwner
from tether.timing import WORKER_CONNECT_TIMEOUT_S, WORKER_DRAIN_CHECK_S
from tether.worker.capacity import Capacity
from tether.worker.engine import Engine
from tether.worker.ice import IceServers
from tether.worker.session import MediaSession, SessionState

logger = logging.getLogger(__name__)


class ResumeDenied(Exception):
    pass


class Worker:
    """Owns the sessions, the pipeline thread pool, and every task of the worker."""

    def __init__(self, settings: WorkerSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or MonotonicClock()
        self.started_at = self.clock.now()
        self.instance_id = uuid.uuid4().hex[:12]
        self.pipelines = load_pipelines()
        self.sessions: dict[str, MediaSession] = {}
        # Runs the pipelines: frames in its thread pool, models loaded once per process.
        self.engine = Engine(
            clock=self.clock,
            load_timeout_s=settings.load_timeout_s,
            memory_mb=settings.model_memory_mb,
        )
        self.tasks = TaskOwner("worker")
        self.capacity = Capacity(settings.max_sessions)
        # Told when the worker starts to drain: each signaling socket tells its studio.
        self.drain_listeners: set[Callable[[float], None]] = set()
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
        session = self._resumable(offer)
        resumed = session is not None
        # Decide and take the slot with no await in between: racing offers can't both win.
        self.capacity.admit(self.held(excluding_owner=owner), resumed)
        if session is None:
            self._make_room(owner)
            session = MediaSession(self.pipelines, self.engine)
            session.on_lost = self._start_grace
            session.owner = owner
            self._reserved.add(session)
        try:
            apply = not resumed or offer.parameters_version >= session.version
            if apply:
                session.check(offer.initial_parameters)
            pc = await self._negotiate(session, offer, resumed)
            session.commit(pc)
            if apply:
                session.apply(offer.initial_parameters, offer.parameters_version)
            await self.tasks.cancel(self._expiry.pop(session.id, None))
            session.owner = owner
            self.sessions[session.id] = session
            self.tasks.spawn(self._connect_deadline(session, pc), f"connect-{session.id}")
        finally:
            self._reserved.discard(session)
        for other in [s for s in self.sessions.values() if s.owner == owner and s is not session]:
            await self._drop(other)
        return session, resumed

    def _resumable(self, offer: protocol.Offer) -> MediaSession | None:
        """The session the offer resumes, if any; ResumeDenied without its secret."""
        session = self.sessions.get(offer.resume_session_id or "")
        if session is None or session.state == SessionState.CLOSED:
            return None
        if not session.owns(offer.resume_secret):
            raise ResumeDenied(
                f"cannot resume session {session.id}: wrong or missing resume_secret"
            )
        return session

    async def _negotiate(
        self, session: MediaSession, offer: protocol.Offer, resumed: bool
    ) -> RTCPeerConnection:
        """A new peer connection that accepted the offer, bound to the session."""
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
        except BaseException:  # cancelled too: the studio's socket closed meanwhile
            await pc.close()
            if not resumed:
                await session.close()
            raise
        return pc

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
        await self.clock.sleep(self.settings.session_grace_s)
        self._expiry.pop(session.id, None)
        if session.state == SessionState.WARM:
            logger.info("session %s expired", session.id)
            await self._drop(session)

    async def _connect_deadline(self, session: MediaSession, pc: RTCPeerConnection) -> None:
        """Give up ``pc`` if it has not connected in time, rather than hold a slot
        until aiortc's ICE gives up."""
        await self.clock.sleep(WORKER_CONNECT_TIMEOUT_S)
        if session.pc is not pc or session.state != SessionState.CONNECTING:
            return  # connected, replaced by a resume, lost or dropped meanwhile
        waited = WORKER_CONNECT_TIMEOUT_S
        if session.has_connected:  # a resume that did not connect: warm again, kept
            logger.info("session %s: resumed peer not connected after %.0fs", session.id, waited)
            await pc.close()
            return
        logger.info("session %s: peer not connected after %.0fs; dropped", session.id, waited)
        await self._drop(session)

    async def drop_unconnected(self, owner: str) -> None:
        """A studio's socket closed: its sessions that never connected their media go
        now (nobody is left to finish their negotiation), freeing their slots. Sessions
        that did connect keep their grace for a resume."""
        gone = [s for s in self.sessions.values() if s.owner == owner and not s.has_connected]
        for session in gone:
            logger.info("session %s: its socket closed before it connected; dropped", session.id)
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
        for tell in list(self.drain_listeners):
            tell(self.settings.drain_s)
        for session in list(self.sessions.values()):
            if session.state == SessionState.WARM:
                self.tasks.spawn(self._drop(session), f"drop-{session.id}")

    async def drained(self) -> None:
        """Return once no studio streams here any more, or at the drain deadline."""
        deadline = self.clock.now() + self.settings.drain_s
        while self.held() and self.clock.now() < deadline:
            await self.clock.sleep(WORKER_DRAIN_CHECK_S)
        left = self.held()
        if left:
            logger.warning("drain deadline reached with %d session(s) still streaming", left)
        else:
            logger.info("drained: no session left")

    async def close(self) -> None:
        await self.tasks.close()
        for session in list(self.sessions.values()):
            await self._drop(session)
        await self.engine.close()
        self.engine.executor.shutdown(wait=True, cancel_futures=True)
