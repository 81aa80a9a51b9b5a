"""Random event sequences against the supervisor; its invariants must always hold."""

from __future__ import annotations

import asyncio

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.unit.test_supervisor import make
from tether.studio.link.events import MoveElsewhere, Recovery
from tether.studio.link.supervisor import LinkState


class SupervisorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock, self.connector, self.supervisor, self.kinds = make(try_s=0.3)

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    @rule()
    def connect(self) -> None:
        self.run(self.supervisor.start())

    @rule(reason=st.sampled_from(["heartbeat lost", "signaling closed", "peer failed"]))
    def lose(self, reason: str) -> None:
        self.connector.is_healthy = False

        async def report() -> None:  # loss reports arrive on the event loop
            self.supervisor.lost(reason)

        self.run(report())

    @rule(fail=st.booleans(), fatal=st.booleans(), move=st.booleans())
    def script_next_try(self, fail: bool, fatal: bool, move: bool) -> None:
        from tether.studio.link.supervisor import FatalLinkError

        outcome = (FatalLinkError("fatal") if fatal else OSError("refused")) if fail else None
        if move:  # the worker is gone: the try moves on to another
            outcome = MoveElsewhere("http://a", "the worker is gone")
        self.connector.outcomes.append(outcome)

    @rule(quiet=st.booleans(), flows=st.booleans())
    def socket_falls(self, quiet: bool, flows: bool) -> None:
        self.connector.flows = flows

        async def report() -> None:
            self.supervisor.signaling_lost("socket closed", keepalive_failed=quiet)

        self.run(report())

    @rule(fleet=st.booleans())
    def worker_drains(self, fleet: bool) -> None:
        self.connector.fleet = fleet

        async def report() -> None:
            self.supervisor.worker_draining()

        self.run(report())

    @rule()
    def heal_by_itself(self) -> None:
        self.connector.is_healthy = True

    @rule(seconds=st.sampled_from([0.0, 0.1, 0.3, 1.0, 2.5, 5.0, 20.0]))
    def advance(self, seconds: float) -> None:
        self.run(self.clock.advance(seconds))

    @precondition(lambda self: self.supervisor.state in (LinkState.FAILED, LinkState.RECONNECTING))
    @rule()
    def retry(self) -> None:
        self.run(self.supervisor.retry())

    @rule()
    def disconnect(self) -> None:
        self.run(self.supervisor.stop())
        assert self.supervisor.state == LinkState.IDLE
        assert self.supervisor.error is None
        assert not self.supervisor.trying
        assert self.connector.in_flight == 0
        assert self.clock.sleepers == 0
        assert not self.kinds or self.kinds[-1] == "disconnected"
        assert self.supervisor.recovery is None

    @invariant()
    def never_two_tries_at_once(self) -> None:
        assert self.connector.max_in_flight <= 1

    @invariant()
    def tries_within_budget(self) -> None:
        assert self.supervisor._tries_used <= self.supervisor.schedule.tries
        assert 0 <= self.supervisor.attempt <= self.supervisor.schedule.tries

    @invariant()
    def a_recovery_only_where_it_belongs(self) -> None:
        s = self.supervisor
        if s.recovery in (Recovery.REOPEN, Recovery.HANDOVER):
            assert s.state == LinkState.CONNECTED
        if s.recovery == Recovery.MOVE:
            assert s.trying
        if s.state in (LinkState.IDLE, LinkState.FAILED):
            assert s.recovery is None

    @invariant()
    def state_matches_activity(self) -> None:
        s = self.supervisor
        if s.state in (LinkState.IDLE, LinkState.FAILED, LinkState.CONNECTED):
            assert not s.trying or s._run.done() or s.state == LinkState.CONNECTED
        if s.state == LinkState.FAILED:
            assert s.error
        if s.state in (LinkState.CONNECTING, LinkState.RECONNECTING):
            assert s.trying

    def teardown(self) -> None:
        self.run(self.supervisor.close())
        assert self.clock.sleepers == 0 and self.connector.in_flight == 0
        self.loop.close()


SupervisorMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
TestSupervisorStates = SupervisorMachine.TestCase
