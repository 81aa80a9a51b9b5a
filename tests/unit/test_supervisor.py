"""The link supervisor in virtual time, against a scripted link (a SupervisedLink)."""

from __future__ import annotations

import asyncio
from collections import deque

import pytest

from tether.clock import VirtualClock
from tether.studio.link.backoff import BackoffSchedule
from tether.studio.link.supervisor import FatalLinkError, LinkState, LinkSupervisor


class ScriptedLink:
    """Each try takes ``try_s`` of virtual time, then succeeds or fails as scripted."""

    def __init__(self, clock: VirtualClock, try_s: float = 0.1) -> None:
        self.clock = clock
        self.try_s = try_s
        self.outcomes: deque[BaseException | None] = deque()
        self.is_healthy = False
        self.tries: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.teardowns = 0
        self.reachable = False
        self.probes = 0
        self.gave_up = 0
        self.is_wanted = True

    async def establish(self, attempt: int, avoid=frozenset()) -> None:
        self.tries.append(attempt)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self.clock.sleep(self.try_s)
            outcome = self.outcomes.popleft() if self.outcomes else None
            if outcome is not None:
                raise outcome
            self.is_healthy = True
        finally:
            self.in_flight -= 1

    def healthy(self) -> bool:
        return self.is_healthy

    async def probe(self) -> bool:
        self.probes += 1
        return self.reachable

    async def teardown(self) -> None:
        self.teardowns += 1
        self.is_healthy = False

    def give_up(self) -> None:
        self.gave_up += 1

    def probe_every(self, default_s: float) -> float:
        return default_s

    def wanted(self) -> bool:
        return self.is_wanted

    # Recovery steps: each takes ``try_s`` and succeeds (test_supervisor_recovery.py
    # scripts them further).
    flows = False
    fleet = False

    def media_flows(self) -> bool:
        return self.flows

    async def reopen_signaling(self) -> None:
        await self.clock.sleep(self.try_s)

    def can_hand_over(self) -> bool:
        return self.fleet

    async def hand_over(self) -> None:
        await self.clock.sleep(self.try_s)

    async def leave_worker(self, why: str) -> None:
        pass


def make(try_s: float = 0.1, failed_probe_s: float = 0.0):
    clock = VirtualClock()
    connector = ScriptedLink(clock, try_s)
    supervisor = LinkSupervisor(
        connector, BackoffSchedule(jitter=0), clock, failed_probe_s=failed_probe_s
    )
    kinds: list[str] = []
    supervisor.events.listen(lambda e: kinds.append(e.kind))
    return clock, connector, supervisor, kinds


async def connected(clock: VirtualClock, supervisor: LinkSupervisor) -> None:
    await supervisor.start()
    await clock.advance(0.2)
    assert supervisor.state == LinkState.CONNECTED


async def test_connect_then_loss_then_reconnect_history() -> None:
    clock, connector, supervisor, kinds = make()
    await connected(clock, supervisor)
    connector.is_healthy = False
    connector.outcomes.extend([OSError("refused"), None])
    supervisor.lost("heartbeat lost")
    assert supervisor.state == LinkState.RECONNECTING and supervisor.attempt == 1
    await clock.advance(0.1)  # immediate try fails after 0.1 s
    assert supervisor.attempt == 2 and supervisor.next_retry_in_s == pytest.approx(1.0)
    assert supervisor.error == "refused"
    await clock.advance(1.1)
    assert supervisor.state == LinkState.CONNECTED
    assert kinds == ["connecting", "connected", "reconnecting", "reconnected"]
    assert connector.tries == [1, 1, 2]
    assert supervisor.reconnects == 1 and supervisor.outages == 1
    assert supervisor.last_outage_s == pytest.approx(1.2)
    assert supervisor.error is None and supervisor.attempt == 0
    await supervisor.close()


async def test_budget_exhaustion_fails_with_clear_error_and_timing() -> None:
    clock, connector, supervisor, kinds = make(try_s=0.0)
    await connected(clock, supervisor)
    connector.is_healthy = False
    connector.outcomes.extend([OSError("connection refused")] * 4)
    supervisor.lost("signaling socket closed")
    await clock.advance(0.0)
    assert connector.tries[-1] == 1
    await clock.advance(1.0)
    await clock.advance(2.0)
    assert supervisor.state == LinkState.RECONNECTING and supervisor.attempt == 4
    await clock.advance(3.9)
    assert supervisor.state == LinkState.RECONNECTING
    await clock.advance(0.1)
    assert supervisor.state == LinkState.FAILED
    assert connector.tries == [1, 1, 2, 3, 4]
    assert "connection refused" in supervisor.error and "Retry" in supervisor.error
    assert kinds[-1] == "failed"
    # Retry starts a fresh schedule
    await supervisor.retry()
    await clock.advance(0.0)
    assert supervisor.state == LinkState.CONNECTED and kinds[-2:] == ["reconnecting", "reconnected"]
    await supervisor.close()


async def test_try_abandoned_when_link_recovers_during_wait() -> None:
    clock, connector, supervisor, kinds = make()
    await connected(clock, supervisor)
    connector.is_healthy = False
    connector.outcomes.append(OSError("nope"))
    supervisor.lost("signaling socket closed")
    await clock.advance(0.1)  # first try failed; now waiting 1 s
    connector.is_healthy = True  # e.g. the path came back by itself
    await clock.advance(1.0)
    assert supervisor.state == LinkState.CONNECTED
    assert connector.tries == [1, 1]  # no second try
    assert "abandoned" in supervisor.events.history[-1].reason
    await supervisor.close()


async def test_fatal_error_fails_at_once() -> None:
    clock, connector, supervisor, kinds = make()
    connector.outcomes.append(FatalLinkError("the worker rejected the token"))
    await supervisor.start()
    await clock.advance(0.2)
    assert supervisor.state == LinkState.FAILED
    assert supervisor.error == "the worker rejected the token"
    assert connector.tries == [1]
    await supervisor.close()


async def test_disconnect_during_wait_and_during_try() -> None:
    for during_try in (False, True):
        clock, connector, supervisor, kinds = make(try_s=5.0)
        await supervisor.start()
        await clock.advance(5.0)
        connector.is_healthy = False
        connector.outcomes.append(OSError("x"))
        supervisor.lost("gone")
        await clock.advance(5.0 if not during_try else 1.0)
        assert (connector.in_flight == 1) is during_try
        await supervisor.stop()
        assert supervisor.state == LinkState.IDLE and supervisor.error is None
        assert connector.in_flight == 0 and not supervisor.trying
        assert kinds[-2:] == ["closing", "disconnected"]
        assert "failed" not in kinds
        assert clock.sleepers == 0
        tries = list(connector.tries)
        await clock.advance(60)
        assert connector.tries == tries  # nothing runs after a disconnect
        await supervisor.close()


async def test_quick_relapse_counts_toward_the_same_episode() -> None:
    clock, connector, supervisor, kinds = make(try_s=0.0)
    await connected(clock, supervisor)
    connector.is_healthy = False
    connector.outcomes.extend([OSError("a"), OSError("b")])
    supervisor.lost("drop 1")
    await clock.advance(1.0)  # immediate try failed, 1 s try failed... wait 2 s
    await clock.advance(2.0)  # third try succeeds
    assert supervisor.state == LinkState.CONNECTED and connector.tries[-1] == 3
    connector.is_healthy = False
    supervisor.lost("drop 2, right after")  # within stable_s: same episode, 1 try left
    connector.outcomes.append(OSError("c"))
    await clock.advance(10)
    assert supervisor.state == LinkState.FAILED
    assert connector.tries[-1] == 4
    await supervisor.close()


async def test_a_stable_link_starts_a_fresh_episode() -> None:
    clock, connector, supervisor, kinds = make(try_s=0.0)
    await connected(clock, supervisor)
    for _ in range(3):
        connector.is_healthy = False
        connector.outcomes.extend([OSError("a"), OSError("b"), OSError("c")])
        supervisor.lost("drop")
        await clock.advance(8)
        assert supervisor.state == LinkState.CONNECTED
        await clock.advance(10)  # stable
    await supervisor.close()


async def test_loss_reports_while_not_connected_are_ignored() -> None:
    clock, connector, supervisor, kinds = make(try_s=1.0)
    await supervisor.start()
    supervisor.lost("noise during connect")
    await clock.advance(1.0)
    assert supervisor.state == LinkState.CONNECTED
    assert kinds == ["connecting", "connected"] and connector.max_in_flight == 1
    await supervisor.close()
    assert asyncio.current_task() is not None


async def test_a_waiting_try_goes_at_once_when_the_probe_finds_the_worker() -> None:
    clock, connector, supervisor, kinds = make(try_s=0.0)
    await connected(clock, supervisor)
    connector.is_healthy = False
    connector.outcomes.extend([OSError("down"), OSError("down")])
    supervisor.lost("gone")
    await clock.advance(1.0)  # tries 1 and 2 failed; waiting 2 s for try 3
    assert connector.tries[-1] == 2 and supervisor.state == LinkState.RECONNECTING
    connector.reachable = True
    await clock.advance(0.35)  # the next probe, and a tick to notice its answer
    assert supervisor.state == LinkState.CONNECTED and connector.tries[-1] == 3
    assert connector.probes >= 1
    await supervisor.close()


async def test_typed_event_hooks() -> None:
    clock, connector, supervisor, kinds = make()
    seen = []
    unsubscribe = supervisor.events.on("reconnecting", lambda e: seen.append((e.kind, e.reason)))
    await connected(clock, supervisor)
    connector.is_healthy = False
    supervisor.lost("heartbeat lost")
    assert seen == [("reconnecting", "heartbeat lost")]
    unsubscribe()
    await clock.advance(1)
    with pytest.raises(ValueError, match="unknown event"):
        supervisor.events.on("exploded", print)
    await supervisor.close()
