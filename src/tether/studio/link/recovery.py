"""The supervisor's recoveries beside its schedule: what it does while the link stays
up (reopen a fallen socket, hand a stream over from a draining worker) and inside a
try (move to another worker). One at a time; each is a state (``current``, shown as
``LinkStatus.recovery``) with an event where it begins and where it ends, and each
waits on the supervisor's clock. A loss of the link ends any of them: the schedule
then takes over."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from tether.clock import Clock
from tether.studio.link.events import (
    TRY_ERRORS,
    FatalLinkError,
    LinkEvent,
    LinkEventKind,
    LinkState,
    MoveElsewhere,
    Recovery,
    RecoveryEvent,
)
from tether.studio.link.supervised import SupervisedLink
from tether.tasks import TaskOwner

logger = logging.getLogger(__name__)
K = LinkEventKind


class Host(Protocol):
    """The supervisor, as its recoveries see it."""

    state: LinkState
    link: SupervisedLink
    clock: Clock
    probe_interval_s: float

    def publish(self, event: LinkEvent) -> None: ...

    def lost(self, reason: str) -> None: ...

    def notify(self) -> None: ...


class Recoveries:
    def __init__(self, host: Host) -> None:
        self._host = host
        self.current: Recovery | None = None
        self._tasks = TaskOwner("recovery")
        self._task: asyncio.Task[Any] | None = None

    def begin(self, recovery: Recovery, kind: LinkEventKind, reason: str) -> None:
        logger.info("link recovery %s: %s", recovery.value, reason)
        self.current = recovery
        self._publish(kind, reason)

    def _end(self, kind: LinkEventKind, reason: str) -> None:
        logger.info("link recovery %s ended (%s): %s", self.current, kind.value, reason)
        self.current, self._task = None, None
        self._publish(kind, reason)

    def _publish(self, kind: LinkEventKind, reason: str) -> None:
        state = self._host.state
        self._host.publish(RecoveryEvent(kind, state, state, reason, recovery=self.current))

    # --- the recoveries ---
    def reopen(self, reason: str) -> bool:
        """The socket fell while media flows: reopen it, every probe interval, while the
        media path lives. False: another recovery is under way (the loss is an outage)."""
        if self.current is not None:
            return self.current == Recovery.REOPEN
        self.begin(Recovery.REOPEN, K.REOPENING, reason)
        self._task = self._tasks.spawn(self._reopen(reason), "reopen")
        return True

    async def _reopen(self, reason: str) -> None:
        host = self._host
        why = f"lost the worker: {reason}"
        while host.link.media_flows():
            try:
                await host.link.reopen_signaling()
            except FatalLinkError as exc:
                why = str(exc)
                break
            except TRY_ERRORS as exc:
                logger.info("reopening the signaling socket: %s", exc)
                await host.clock.sleep(host.probe_interval_s)
                continue
            self._end(K.REOPENED, "the signaling socket is back")
            return
        # The media path failed too: an outage after all.
        self.current, self._task = None, None
        host.lost(why)

    def hand_over(self) -> None:
        """The worker is draining: move the stream to another before it goes (one go;
        if it cannot be made, the stream stays until the worker ends it)."""
        if self.current is not None:
            return
        self.begin(Recovery.HANDOVER, K.HANDING_OVER, "the worker is draining")
        self._task = self._tasks.spawn(self._hand_over(), "handover")

    async def _hand_over(self) -> None:
        try:
            await self._host.link.hand_over()
        except TRY_ERRORS as exc:
            logger.warning("could not move off the draining worker: %s; staying", exc)
            self._end(K.HANDOVER_FAILED, f"{exc}; staying until the worker ends the stream")
            return
        self.current, self._task = None, None  # the move itself said where to ("moved")
        self._host.notify()

    async def try_moving(self, attempt: int) -> None:
        """One try of the schedule. A worker that cannot serve is left for another in
        the same try (a dead one must not cost the schedule): the MOVE recovery."""
        link = self._host.link
        left: set[str] = set()
        try:
            while True:
                try:
                    await link.establish(attempt, frozenset(left))
                    return
                except MoveElsewhere as move:
                    left.add(move.worker)
                    self.begin(Recovery.MOVE, K.MOVING, move.reason)
                    await link.leave_worker(move.reason)
        finally:
            if self.current == Recovery.MOVE:  # the try is over: up, or failed
                self.current = None
                self._host.notify()

    # --- ending ---
    def cancel(self) -> None:
        """The link was lost: whatever recovery runs ends now (not awaited)."""
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self.current = None

    async def stop(self) -> None:
        """A command takes over (connect, retry, disconnect): end any recovery, awaited."""
        task, self._task = self._task, None
        self.current = None
        await self._tasks.cancel(task)

    async def close(self) -> None:
        await self.stop()
        await self._tasks.close()
