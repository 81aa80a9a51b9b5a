"""The link supervisor: one explicit state machine per link.

It knows nothing about aiortc: a Connector does the work of one try, and the
supervisor decides when to try, counts tries against the schedule, and publishes
every transition as a typed event. Time comes from a Clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from tether.clock import Clock
from tether.studio.link.backoff import BackoffSchedule
from tether.studio.link.events import (
    EVENT_KINDS,
    TRY_ERRORS,
    FatalLinkError,
    LinkEvent,
    LinkState,
    TryFailed,
)
from tether.studio.link.probing import until_answered, until_back
from tether.tasks import TaskOwner
from tether.timing import FAST_PROBE_S, PROBE_INTERVAL_S, STABLE_S

__all__ = [
    "FatalLinkError", "LinkEvent", "LinkState", "LinkSupervisor", "TryFailed",
]  # fmt: skip

logger = logging.getLogger(__name__)


class Connector(Protocol):
    async def establish(self, attempt: int) -> None:
        """One try: make the link healthy or raise. Returns only once it is."""

    def healthy(self) -> bool:
        """Whether the link is healthy right now (a pending try is then abandoned)."""

    async def probe(self) -> bool:
        """A cheap check that the worker answers again (a waiting try then goes now)."""

    async def teardown(self) -> None:
        """Close everything (the user asked to disconnect)."""

    def give_up(self) -> None:
        """The schedule ran out: drop what is left of the media path."""

    def wanted(self) -> bool:
        """Whether the link is needed now (a stream runs): a failed link keeps probing."""

    def probe_every(self, default_s: float) -> float:
        """How often a failed link probes: ``default_s``, or sooner while waiting for a
        busy fleet's slot to free."""


class LinkSupervisor:
    def __init__(
        self,
        connector: Connector,
        schedule: BackoffSchedule,
        clock: Clock,
        stable_s: float = STABLE_S,
        probe_interval_s: float = PROBE_INTERVAL_S,
        failed_probe_s: float = 0.0,
    ) -> None:
        self.connector = connector
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
        self.history: list[LinkEvent] = []
        self.listeners: list[Callable[[LinkEvent], None]] = []
        self.on_change: Callable[[], None] | None = None  # attempt or countdown changed
        self._tries_used = 0
        self._connected_at: float | None = None
        self._outage_started: float | None = None
        self._tasks = TaskOwner("supervisor")
        self._run: asyncio.Task[Any] | None = None

    # --- events ---
    def record(self, kind: str, reason: str, workers: tuple[str, str] | None = None) -> None:
        """An event that is not a change of state (a move between workers)."""
        logger.info("link %s: %s", kind, reason)
        self._publish(LinkEvent(kind, self.state, self.state, reason, workers=workers))

    def _transition(self, new: LinkState, reason: str, kind: str | None = None) -> None:
        old = self.state
        self.state = new
        logger.info("link %s -> %s: %s", old.value, new.value, reason)
        self._publish(LinkEvent(kind or new.value, old, new, reason))

    def _publish(self, event: LinkEvent) -> None:
        self.history = [*self.history[-49:], event]
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # one bad listener must not strand the link
                logger.exception("link event listener failed on %s", event.kind)
        self._notify()

    EVENT_KINDS = EVENT_KINDS

    def on(self, kind: str, callback: Callable[[LinkEvent], None]) -> Callable[[], None]:
        """Call ``callback`` on every event of one kind; returns an unsubscribe function."""
        if kind not in self.EVENT_KINDS:
            raise ValueError(f"unknown event {kind!r}; one of {', '.join(self.EVENT_KINDS)}")

        def listener(event: LinkEvent) -> None:
            if event.kind == kind:
                callback(event)

        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

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

    # --- commands ---
    async def start(self) -> None:
        """Connect (again) from any state: a fresh episode."""
        await self._tasks.cancel(self._run)
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
        await self._tasks.cancel(self._run)
        self.probing = False
        self._tries_used = 0
        self.attempt = 1
        if self._outage_started is None:
            self._outage_started = self.clock.now()
        self._transition(LinkState.RECONNECTING, "retry requested", "reconnecting")
        self._run = self._tasks.spawn(self._schedule(initial=False), "retry")

    def lost(self, reason: str) -> None:
        """Something noticed the link is down. Only a connected link starts an episode:
        during a try, the try itself finds out."""
        if self.state != LinkState.CONNECTED:
            return
        now = self.clock.now()
        if self._connected_at is None or now - self._connected_at >= self.stable_s:
            self._tries_used = 0  # a new episode; a quick relapse keeps counting
        self.outages += 1
        self._outage_started = now
        self.error = reason
        self.attempt = self._tries_used + 1
        self._transition(LinkState.RECONNECTING, reason, "reconnecting")
        self._run = self._tasks.spawn(self._schedule(initial=False), "reconnect")

    async def stop(self, reason: str = "disconnect requested") -> None:
        """The user's disconnect: cancel and await any try, close, end idle. Never an error."""
        if self.state == LinkState.IDLE:
            return
        self._transition(LinkState.CLOSING, reason)
        await self._tasks.cancel(self._run)
        self.next_retry_at = None
        self.attempt = 0
        self.probing = False
        await self.connector.teardown()
        self.error = None
        self._outage_started = None
        self._transition(LinkState.IDLE, "disconnected by user", "disconnected")

    async def close(self) -> None:
        await self.stop("shutting down")
        await self._tasks.close()

    # --- the schedule ---
    async def _schedule(self, initial: bool) -> None:
        last_error = "no try made"
        while self._tries_used < self.schedule.tries:
            index = self._tries_used
            self.attempt = index + 1
            delay = self.schedule.delay(index)
            self.next_retry_at = self.clock.now() + delay
            self._notify()
            await self._wait(delay)
            self.next_retry_at = None
            if not initial and self.connector.healthy():
                self._recovered("recovered before the next try; try abandoned")
                return
            self._tries_used += 1
            logger.info("link: try %d/%d", self.attempt, self.schedule.tries)
            try:
                await self.connector.establish(self.attempt)
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
        keep_trying = self.failed_probe_s > 0
        advice = (
            f"will keep trying by itself (every {self.failed_probe_s:g}s after the first "
            f"minute), or press Retry."
            if keep_trying
            else "check the worker, then press Retry."
        )
        self._fail(f"{last_error}. Gave up after {self.schedule.tries} tries; {advice}")

    async def _wait(self, delay: float) -> None:
        """Wait for the next try, but go at once when a probe finds the worker back."""
        deadline = self.clock.now() + delay
        if await until_answered(self.connector.probe, self.clock, self.probe_interval_s, deadline):
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
        kind = "reconnected" if was == LinkState.RECONNECTING else "connected"
        self._transition(LinkState.CONNECTED, reason, kind)

    def _fail(self, error: str, permanent: bool = False) -> None:
        self.error = error
        self.next_retry_at = None
        self.attempt = 0
        self.connector.give_up()
        # A transient outage never needs a human: keep checking, slowly. A permanent
        # error (the token, not a worker) would only fail the same way again.
        self.probing = not permanent and self.failed_probe_s > 0
        self._transition(LinkState.FAILED, error)
        if self.probing:
            self._run = self._tasks.spawn(self._probe_while_failed(), "failed-probe")

    async def _probe_while_failed(self) -> None:
        started = self._outage_started or self.clock.now()
        await until_back(
            self.connector,
            self.clock,
            self.probe_interval_s,
            lambda: self.connector.probe_every(self.failed_probe_s),
            started + FAST_PROBE_S,
        )
        logger.info("worker answers again after the link failed; trying now")
        self.probing = False
        self._tries_used = 0
        self.attempt = 1
        if self._outage_started is None:
            self._outage_started = self.clock.now()
        self._transition(LinkState.RECONNECTING, "the worker answers again", "reconnecting")
        await self._schedule(initial=False)

    def _notify(self) -> None:
        if self.on_change is not None:
            self.on_change()
