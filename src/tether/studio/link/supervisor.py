"""The link supervisor: one explicit state machine per link, and the one place where
recovery happens.

It knows nothing about aiortc: a SupervisedLink does the work of one step, and the
supervisor decides when to try, counts tries against the schedule, runs the
recoveries that keep a link up (reopening a fallen socket, handing a stream over
from a draining worker; see recovery.py), moves a try to another worker, and
publishes every transition as a typed event. Time comes from a Clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from tether.clock import Clock
from tether.studio.link.backoff import BackoffSchedule
from tether.studio.link.event_log import EventLog
from tether.studio.link.events import (
    TRY_ERRORS,
    FatalLinkError,
    LinkEvent,
    LinkEventKind,
    LinkState,
    MoveEvent,
    Recovery,
    StateEvent,
)
from tether.studio.link.probing import until_answered, until_back
from tether.studio.link.recovery import Recoveries
from tether.studio.link.supervised import SupervisedLink
from tether.tasks import TaskOwner
from tether.timing import FAST_PROBE_S, PROBE_INTERVAL_S, STABLE_S

logger = logging.getLogger(__name__)
K = LinkEventKind


class LinkSupervisor:
    def __init__(
        self,
        link: SupervisedLink,
        schedule: BackoffSchedule,
        clock: Clock,
        stable_s: float = STABLE_S,
        probe_interval_s: float = PROBE_INTERVAL_S,
        failed_probe_s: float = 0.0,
    ) -> None:
        self.link = link
        self.schedule = schedule
        self.clock = clock
        self.stable_s = stable_s  # a loss sooner than this after recovery continues the episode
        self.probe_interval_s = probe_interval_s
        self.failed_probe_s = failed_probe_s  # 0: a failed link waits for Retry
        self.probing = False  # failed, and checking the worker at a slow cadence
        self.state = LinkState.IDLE
        self.error: str | None = None
        self.attempt = 0  # the try in progress or next, 1-based; 0 when none
        self.next_retry_at: float | None = None
        self.outages = 0
        self.reconnects = 0
        self.last_outage_s: float | None = None
        self.recent_outages: list[float] = []  # lengths of the last outages, newest last
        self.events = EventLog()
        self.on_change: Callable[[], None] | None = None  # attempt or countdown changed
        self.recoveries = Recoveries(self)
        self._tries_used = 0
        self._drain_pending = False  # a drain notice came during a try
        self._connected_at: float | None = None
        self._outage_started: float | None = None
        self._tasks = TaskOwner("supervisor")
        self._run: asyncio.Task[Any] | None = None

    # --- reading ---
    @property
    def recovery(self) -> Recovery | None:
        """The recovery under way (None: none)."""
        return self.recoveries.current

    @property
    def trying(self) -> bool:
        return self._run is not None and not self._run.done()

    @property
    def outage_for_s(self) -> float | None:
        """How long the current outage has lasted (None while there is none)."""
        if self._outage_started is None or self.state == LinkState.CONNECTED:
            return None
        return self.clock.now() - self._outage_started

    @property
    def next_retry_in_s(self) -> float | None:
        if self.next_retry_at is None:
            return None
        return max(0.0, self.next_retry_at - self.clock.now())

    # --- events ---
    def moved(self, old: str, new: str, why: str) -> None:
        """The link now uses another of a fleet's workers."""
        logger.info("link moved from %s to %s: %s", old, new, why)
        self._drain_pending = False  # that worker is left already
        self.publish(MoveEvent(K.MOVED, self.state, self.state, why, workers=(old, new)))

    def publish(self, event: LinkEvent) -> None:
        self.events.publish(event)
        self.notify()

    def _transition(self, new: LinkState, reason: str, kind: LinkEventKind | None = None) -> None:
        old = self.state
        self.state = new
        logger.info("link %s -> %s: %s", old.value, new.value, reason)
        self.publish(StateEvent(kind or LinkEventKind(new.value), old, new, reason))

    # --- reports from the link ---
    def lost(self, reason: str) -> None:
        """Something noticed the link is down. Only a connected link starts an episode:
        during a try, the try itself finds out. Any recovery under way ends."""
        if self.state != LinkState.CONNECTED:
            return
        self.recoveries.cancel()
        now = self.clock.now()
        if self._connected_at is None or now - self._connected_at >= self.stable_s:
            self._tries_used = 0  # a new episode; a quick relapse keeps counting
        self.outages += 1
        self._outage_started = now
        self.error = reason
        self.attempt = self._tries_used + 1
        self._transition(LinkState.RECONNECTING, reason, K.RECONNECTING)
        self._run = self._tasks.spawn(self._schedule(initial=False), "reconnect")

    def signaling_lost(self, reason: str, keepalive_failed: bool) -> None:
        """The signaling socket closed. If its pings went unanswered while media flows,
        the path is lossy, not gone: reopen it quietly (a recovery); else an outage."""
        quiet = self.state == LinkState.CONNECTED and keepalive_failed and self.link.media_flows()
        if not (quiet and self.recoveries.reopen(reason)):
            self.lost(f"lost the worker: {reason}")

    def worker_draining(self) -> None:
        """The worker said it is draining: hand the stream over to another, if any (once
        connected, if a try runs now)."""
        if not self.link.can_hand_over():
            logger.info("the worker is draining; the link stays until it ends")
        elif self.state == LinkState.CONNECTED:
            self.recoveries.hand_over()
        else:
            self._drain_pending = self.trying

    # --- commands ---
    async def start(self) -> None:
        """Connect (again) from any state: a fresh episode."""
        await self._halt()
        self.error = None
        self.probing = False
        self._tries_used = 0
        self.attempt = 1
        self._transition(LinkState.CONNECTING, "connect requested")
        self._run = self._tasks.spawn(self._schedule(initial=True), "connect")

    async def retry(self) -> None:
        """Start the schedule over now (the user's Retry)."""
        if self.state in (LinkState.IDLE, LinkState.CLOSING):
            raise RuntimeError("not connected to a worker")
        await self._halt()
        self._fresh_schedule("retry requested")
        self._run = self._tasks.spawn(self._schedule(initial=False), "retry")

    def _fresh_schedule(self, reason: str) -> None:
        """A fresh schedule within the outage that goes on (Retry, or a failed link
        whose worker answers again)."""
        self.probing = False
        self._tries_used = 0
        self.attempt = 1
        if self._outage_started is None:
            self._outage_started = self.clock.now()
        self._transition(LinkState.RECONNECTING, reason, K.RECONNECTING)

    async def stop(self, reason: str = "disconnect requested") -> None:
        """The user's disconnect: cancel and await any try, close, end idle. Never an error."""
        if self.state == LinkState.IDLE:
            return
        self._transition(LinkState.CLOSING, reason)
        await self._halt()
        self.next_retry_at = None
        self.attempt = 0
        self.probing = False
        await self.link.teardown()
        self.error = None
        self._outage_started = None
        self._transition(LinkState.IDLE, "disconnected by user", K.DISCONNECTED)

    async def close(self) -> None:
        await self.stop("shutting down")
        await self.recoveries.close()
        await self._tasks.close()

    async def _halt(self) -> None:
        self._drain_pending = False
        await self.recoveries.stop()
        await self._tasks.cancel(self._run)

    # --- the schedule ---
    async def _schedule(self, initial: bool) -> None:
        last_error = "no try made"
        while self._tries_used < self.schedule.tries:
            self.attempt = self._tries_used + 1
            delay = self.schedule.delay(self._tries_used)
            self.next_retry_at = self.clock.now() + delay
            self.notify()
            await self._wait(delay)
            self.next_retry_at = None
            if not initial and self.link.healthy():
                self._recovered("recovered before the next try; try abandoned")
                return
            self._tries_used += 1
            logger.info("link: try %d/%d", self.attempt, self.schedule.tries)
            try:
                await self.recoveries.try_moving(self.attempt)
            except FatalLinkError as exc:
                self._fail(str(exc), permanent=True)
                return
            except TRY_ERRORS as exc:  # the network or the worker: count it and go on
                last_error = str(exc) or type(exc).__name__
                logger.info("try %d/%d failed: %s", self.attempt, self.schedule.tries, last_error)
                self.error = last_error
                continue
            except Exception as exc:
                logger.exception("try %d/%d: internal error", self.attempt, self.schedule.tries)
                self._fail(
                    f"internal error in the studio ({type(exc).__name__}: {exc}); "
                    "this is a bug, the studio's log has the details"
                )
                return
            self._recovered("worker reachable" if initial else "media and parameters back")
            return
        every = f"every {self.failed_probe_s:g}s after the first minute"
        advice = (
            f"will keep trying by itself ({every}), or press Retry."
            if self.failed_probe_s > 0
            else "check the worker, then press Retry."
        )
        self._fail(f"{last_error}. Gave up after {self.schedule.tries} tries; {advice}")

    async def _wait(self, delay: float) -> None:
        """Wait for the next try, but go at once when a probe finds the worker back."""
        deadline = self.clock.now() + delay
        if await until_answered(self.link.probe, self.clock, self.probe_interval_s, deadline):
            logger.info("worker answers again; trying now")

    def _recovered(self, reason: str) -> None:
        now = self.clock.now()
        was = self.state
        self.attempt = 0
        self.error = None
        # Only a recovery opens a window in which a relapse continues the same episode.
        self._connected_at = now if was == LinkState.RECONNECTING else None
        if was == LinkState.RECONNECTING:
            self.reconnects += 1
            if self._outage_started is not None:
                self.last_outage_s = now - self._outage_started
                self.recent_outages = [*self.recent_outages[-9:], self.last_outage_s]
        self._outage_started = None
        kind = K.RECONNECTED if was == LinkState.RECONNECTING else K.CONNECTED
        self._transition(LinkState.CONNECTED, reason, kind)
        if self._drain_pending:
            self._drain_pending = False
            self.recoveries.hand_over()

    def _fail(self, error: str, permanent: bool = False) -> None:
        self.error = error
        self._drain_pending = False
        self.next_retry_at = None
        self.attempt = 0
        self.link.give_up()
        # A transient outage never needs a human: keep checking, slowly. A permanent
        # error (the token, not a worker) would only fail the same way again.
        self.probing = not permanent and self.failed_probe_s > 0
        self._transition(LinkState.FAILED, error)
        if self.probing:
            self._run = self._tasks.spawn(self._probe_while_failed(), "failed-probe")

    async def _probe_while_failed(self) -> None:
        started = self._outage_started or self.clock.now()
        await until_back(
            self.link,
            self.clock,
            self.probe_interval_s,
            lambda: self.link.probe_every(self.failed_probe_s),
            started + FAST_PROBE_S,
        )
        logger.info("worker answers again after the link failed; trying now")
        self._fresh_schedule("the worker answers again")
        await self._schedule(initial=False)

    def notify(self) -> None:
        if self.on_change is not None:
            self.on_change()
