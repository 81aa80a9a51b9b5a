"""The link to the worker, as the rest of the studio sees it: commands, one at a time,
and ``status()``, a frozen snapshot. Nothing outside the package reaches inside.

Inside: the supervisor (the state machine, its schedule and every recovery), the
connection it drives (placement, signaling side, media path, parameter sync), and
health (heartbeat, watchdog), which reports losses by callback. The link forwards
the connection's reports to the supervisor (``Reports``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tether.clock import Clock, MonotonicClock
from tether.config import StudioSettings
from tether.media.frames import FrameSlot, Signal
from tether.studio.link.backoff import BackoffSchedule
from tether.studio.link.connection import Reports, WorkerConnection
from tether.studio.link.events import LinkEvent, LinkState
from tether.studio.link.health import Health
from tether.studio.link.media_stats import MediaStats
from tether.studio.link.status import LinkStatus
from tether.studio.link.supervisor import LinkSupervisor
from tether.studio.parameters import ParameterStore
from tether.tasks import TaskOwner
from tether.timing import MEDIA_LATENCY_WINDOW_S, Timing

logger = logging.getLogger(__name__)


class NotConnected(Exception):
    """A command that needs a link (Retry) while there is none."""


class WorkerLink:
    def __init__(
        self,
        settings: StudioSettings,
        source: FrameSlot,
        processed: FrameSlot,
        params: ParameterStore,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock or MonotonicClock()
        self.params = params
        self.changed = Signal()  # any status change
        timing = Timing.from_settings(settings)
        self._health = Health(timing, self.clock, source, processed)
        self._connection = WorkerConnection(
            self._health, self.clock, source, processed, params, self._reports()
        )
        schedule = BackoffSchedule(settings.reconnect_delays, settings.reconnect_jitter)
        self._supervisor = LinkSupervisor(
            self._connection, schedule, self.clock, failed_probe_s=timing.failed_probe_s
        )
        self._supervisor.on_change = self.notify
        # Subscribe to one kind of link event (typed by kind); returns an unsubscribe.
        self.on = self._supervisor.events.on
        self._commands = asyncio.Lock()  # connect/disconnect/reconnect/streaming: one at a time
        self.media_stats = MediaStats(self.clock)  # the current peer's loss and bandwidth
        self._tasks = TaskOwner("link")
        self._measuring: asyncio.Task[Any] | None = None

    # --- reading ---
    @property
    def state(self) -> LinkState:
        return self._supervisor.state

    @property
    def worker_url(self) -> str | None:
        """The worker in use; with a fleet and none chosen yet, the fleet's address."""
        conn = self._connection
        return conn.worker_url or (conn.placement.spec if conn.placement else None)

    @property
    def target(self) -> str | None:
        """What the link was pointed at: one URL, a list, or a dns+ name."""
        placement = self._connection.placement
        return placement.spec if placement else None

    @property
    def pipelines(self) -> list[dict[str, Any]]:
        return list(self._connection.signaling.pipelines)

    def status(self) -> LinkStatus:
        sup, conn = self._supervisor, self._connection
        peer, signaling = conn.media.peer, conn.signaling
        state = sup.state
        media_healthy = self._health.media_healthy(peer)
        reconnecting = state in (LinkState.CONNECTING, LinkState.RECONNECTING)
        # A media error stands until the link is back (a recovery may skip the try).
        media_error = None if state == LinkState.CONNECTED else conn.media.error
        measured = peer.latency if peer and media_healthy else None
        return LinkStatus(
            state=state,
            error=media_error or sup.error,
            signaling_up=signaling.is_open,
            connect_stage=conn.stage,
            worker_url=conn.worker_url,
            connection_id=signaling.connection_id,
            webrtc_connected=peer is not None and peer.state == "connected",
            webrtc_error=media_error,
            attempt=sup.attempt if reconnecting else 0,
            tries=sup.schedule.tries,
            next_retry_in_s=sup.next_retry_in_s,
            probing=sup.probing,
            last_outage_s=sup.last_outage_s,
            outage_for_s=sup.outage_for_s,
            recent_outages_s=tuple(sup.recent_outages),
            outages=sup.outages,
            reconnects=sup.reconnects,
            session_id=peer.session_id if peer else None,
            streaming=conn.streaming,
            media_healthy=media_healthy,
            output_live=self._health.output_live(peer),
            params_version=self.params.version,
            params_acked_version=self.params.acked_version,
            params_error=peer.params_error if peer else None,
            pipeline_error=peer.pipeline_error if peer else None,
            heartbeat_rtt_ms=peer.rtt_ms if peer and media_healthy else None,
            events=tuple(e for e in sup.events.history if e.on_timeline)[-10:],
            workers=conn.placement.workers() if conn.placement else (),
            media_loss=self.media_stats.loss if peer and media_healthy else None,
            bandwidth_kbps=self.media_stats.bandwidth_kbps if peer and media_healthy else None,
            bandwidth_limited=bool(peer and media_healthy and self.media_stats.limited),
            upstream_limited_kbps=self.media_stats.upstream_limited_kbps if measured else None,
            media_latency_ms=measured.latency_ms(MEDIA_LATENCY_WINDOW_S) if measured else None,
            worker_ms=measured.worker_ms(MEDIA_LATENCY_WINDOW_S) if measured else None,
            pipeline_fps=peer.pipeline_fps if peer and media_healthy else None,
            pipeline_ms=peer.pipeline_ms if peer and media_healthy else None,
            recovery=sup.recovery,
            pipeline_state=peer.pipeline_state() if peer else None,
            upstream_fps=conn.media.rate.sent_fps() if peer else None,
            upstream_fps_limit=conn.media.rate.limit_fps if peer else None,
        )

    def output_live(self) -> bool:
        """Whether a client should see the worker's frames now (the output track asks
        this for every frame, so it is cheaper than a whole snapshot)."""
        return self._health.output_live(self._connection.media.peer)

    def notify(self) -> None:
        self.changed.fire()

    # --- commands ---
    async def connect(self, worker_url: str, token: str | None) -> None:
        """Connect (or switch) to a worker; runs in the background."""
        async with self._commands:
            await self._supervisor.stop()
            self._connection.point_at(worker_url, token)
            await self._supervisor.start()

    async def disconnect(self) -> None:
        """Intentional: cancels any try and any probing; never an error."""
        async with self._commands:
            await self._supervisor.stop()
            self.notify()

    async def reconnect(self) -> None:
        """Start the schedule again now. Raises NotConnected when there is no link."""
        async with self._commands:
            if self.state in (LinkState.IDLE, LinkState.CLOSING) or self.worker_url is None:
                raise NotConnected("not connected to a worker: use /api/v1/cloud/connect")
            if self.state != LinkState.CONNECTED:
                await self._supervisor.retry()

    async def set_streaming(self, active: bool) -> None:
        if active and self._measuring is None:  # peers exist only while streaming
            media = self._connection.media
            self._measuring = self._tasks.spawn(
                self.media_stats.follow(lambda: p.pc if (p := media.peer) else None),
                "media-stats",
            )
        async with self._commands:
            await self._connection.set_streaming(active)
            self.notify()

    def parameters_changed(self) -> None:
        self._connection.send_parameters()
        self.notify()

    async def debug_drop_media(self) -> None:
        """Close the worker peer connection abruptly, as a network drop would."""
        if (peer := self._connection.media.peer) is not None:
            await peer.pc.close()

    async def debug_drop_signaling(self) -> None:
        if (signaling := self._connection.signaling.client) is not None:
            await signaling.abort()

    async def close(self) -> None:
        await self._tasks.close()
        async with self._commands:
            await self._supervisor.close()
            await self._connection.close()

    def _reports(self) -> Reports:
        """The connection's reports go to the supervisor (made after the connection)."""
        return Reports(
            lost=lambda reason: self._supervisor.lost(reason),
            signaling_lost=lambda why, quiet: self._supervisor.signaling_lost(why, quiet),
            worker_draining=lambda: self._supervisor.worker_draining(),
            moved=lambda old, new, why: self._supervisor.moved(old, new, why),
            notify=self.notify,
            connected=lambda: self._supervisor.state == LinkState.CONNECTED,
        )


__all__ = ["LinkEvent", "LinkState", "LinkStatus", "NotConnected", "WorkerLink"]
