"""The supervisor's recoveries in virtual time: the quiet socket reopen, the drain
handover and the move to another worker, each with its whole history of events, the
recovery under way at each, and when (seconds since the link connected)."""

from __future__ import annotations

from collections import deque

from tests.unit.test_supervisor import ScriptedLink
from tether.clock import VirtualClock
from tether.studio.link.backoff import BackoffSchedule
from tether.studio.link.events import LinkEventKind, LinkState, MoveElsewhere, Recovery
from tether.studio.link.supervisor import LinkSupervisor

LOST = "keepalive ping timeout"


class RecoveringLink(ScriptedLink):
    """Scripts the recovery steps too: each reopen takes ``step_s`` and fails or not as
    scripted; a handover takes ``step_s``, then moves (or fails); a try that left a
    worker reports where it landed, as the real connection does."""

    def __init__(self, clock: VirtualClock, step_s: float = 0.1) -> None:
        super().__init__(clock, try_s=0.0)
        self.step_s = step_s
        self.flows = True
        self.fleet = True
        self.reopens: deque[BaseException | None] = deque()
        self.reopened_at: list[float] = []
        self.handover_fails: BaseException | None = None
        self.left: list[str] = []
        self.avoided: list[frozenset[str]] = []
        self.supervisor: LinkSupervisor | None = None

    async def establish(self, attempt: int, avoid=frozenset()) -> None:
        self.avoided.append(frozenset(avoid))
        await super().establish(attempt, avoid)
        if self.left and self.supervisor is not None:  # landed on another worker
            self.supervisor.moved(self.left.pop(), "http://b", "the worker is gone")

    def media_flows(self) -> bool:
        return self.flows

    async def reopen_signaling(self) -> None:
        self.reopened_at.append(self.clock.now())
        await self.clock.sleep(self.step_s)
        outcome = self.reopens.popleft() if self.reopens else None
        if outcome is not None:
            raise outcome

    def can_hand_over(self) -> bool:
        return self.fleet

    async def hand_over(self) -> None:
        await self.clock.sleep(self.step_s)
        if self.handover_fails is not None:
            raise self.handover_fails
        assert self.supervisor is not None
        self.supervisor.moved("http://a", "http://b", "the worker is draining")

    async def leave_worker(self, why: str) -> None:
        self.left.append("http://a")


async def connected_link(step_s: float = 0.1):
    """A connected link and its history: (kind, state, recovery, seconds since up)."""
    clock = VirtualClock()
    link = RecoveringLink(clock, step_s)
    supervisor = LinkSupervisor(link, BackoffSchedule(jitter=0), clock)
    link.supervisor = supervisor
    history: list[tuple[str, str, str | None, float]] = []
    await supervisor.start()
    await clock.advance(0.0)
    assert supervisor.state == LinkState.CONNECTED
    up = clock.now()

    def record(event) -> None:
        recovery = supervisor.recovery.value if supervisor.recovery else None
        history.append((event.kind.value, event.new.value, recovery, round(clock.now() - up, 3)))

    supervisor.events.listen(record)
    return clock, link, supervisor, history


async def test_a_fallen_socket_is_reopened_quietly_on_the_clock() -> None:
    clock, link, supervisor, history = await connected_link()
    link.reopens.extend([OSError("refused"), OSError("refused"), None])
    supervisor.signaling_lost(LOST, keepalive_failed=True)
    assert supervisor.state == LinkState.CONNECTED and supervisor.recovery == Recovery.REOPEN
    await clock.advance(0.4)  # the first reopen failed at 0.1; the next went at 0.35
    assert supervisor.recovery == Recovery.REOPEN and len(link.reopened_at) == 2
    await clock.advance(1.0)
    up = link.reopened_at[0]
    assert [round(t - up, 3) for t in link.reopened_at] == [0.0, 0.35, 0.7]
    assert history == [
        ("reopening", "connected", "reopen", 0.0),
        ("reopened", "connected", None, 0.8),
    ]
    assert supervisor.recovery is None and supervisor.outages == 0
    assert [e.on_timeline for e in supervisor.events.history[-2:]] == [False, False]
    await supervisor.close()


async def test_a_reopen_becomes_an_outage_when_the_media_path_fails_too() -> None:
    clock, link, supervisor, history = await connected_link()
    link.reopens.extend([OSError("refused")] * 3)
    supervisor.signaling_lost(LOST, keepalive_failed=True)
    await clock.advance(0.5)
    link.flows = False  # the heartbeat would say so too; here only the reopen notices
    link.is_healthy = False
    link.outcomes.append(None)
    await clock.advance(0.5)
    assert history == [
        ("reopening", "connected", "reopen", 0.0),
        ("reconnecting", "reconnecting", None, 0.7),
        ("reconnected", "connected", None, 0.7),
    ]
    assert supervisor.events.history[-2].reason == f"lost the worker: {LOST}"
    assert len(link.reopened_at) == 2 and supervisor.outages == 1
    await supervisor.close()


async def test_a_loss_during_a_reopen_ends_it_and_the_schedule_takes_over() -> None:
    clock, link, supervisor, history = await connected_link()
    link.reopens.extend([OSError("refused")] * 10)
    supervisor.signaling_lost(LOST, keepalive_failed=True)
    await clock.advance(0.2)
    link.is_healthy = False
    supervisor.lost("heartbeat lost")
    await clock.advance(5.0)
    assert history == [
        ("reopening", "connected", "reopen", 0.0),
        ("reconnecting", "reconnecting", None, 0.2),
        ("reconnected", "connected", None, 0.2),
    ]
    assert len(link.reopened_at) == 1  # nothing reopens behind the schedule's back
    assert clock.sleepers == 0
    await supervisor.close()


async def test_a_clean_close_or_no_media_is_an_outage_at_once() -> None:
    for keepalive_failed, flows in ((False, True), (True, False)):
        clock, link, supervisor, history = await connected_link()
        link.flows = flows
        supervisor.signaling_lost("closed by the worker", keepalive_failed)
        await clock.advance(0.0)
        assert [h[:3] for h in history] == [
            ("reconnecting", "reconnecting", None),
            ("reconnected", "connected", None),
        ]
        assert link.reopened_at == []
        await supervisor.close()


async def test_a_draining_worker_is_handed_over_before_it_goes() -> None:
    clock, link, supervisor, history = await connected_link(step_s=0.5)
    supervisor.worker_draining()
    assert supervisor.recovery == Recovery.HANDOVER
    supervisor.worker_draining()  # said twice: still one handover
    await clock.advance(1.0)
    assert history == [
        ("handing_over", "connected", "handover", 0.0),
        ("moved", "connected", "handover", 0.5),
    ]
    assert supervisor.recovery is None and supervisor.state == LinkState.CONNECTED
    assert supervisor.events.history[-1].workers == ("http://a", "http://b")
    await supervisor.close()


async def test_a_handover_that_cannot_be_made_stays_on_the_worker() -> None:
    clock, link, supervisor, history = await connected_link(step_s=0.5)
    link.handover_fails = OSError("no worker has room")
    supervisor.worker_draining()
    await clock.advance(1.0)
    assert history == [
        ("handing_over", "connected", "handover", 0.0),
        ("handover_failed", "connected", None, 0.5),
    ]
    assert "no worker has room" in supervisor.events.history[-1].reason
    assert supervisor.state == LinkState.CONNECTED and supervisor.error is None
    await supervisor.close()


async def test_drain_without_a_fleet_starts_no_handover() -> None:
    clock, link, supervisor, history = await connected_link()
    link.fleet = False
    supervisor.worker_draining()
    await clock.advance(2.0)
    assert history == [] and supervisor.recovery is None
    await supervisor.close()


async def test_a_drain_said_during_a_try_hands_over_once_connected() -> None:
    clock, link, supervisor, history = await connected_link(step_s=0.5)
    link.is_healthy = False
    link.outcomes.append(OSError("refused"))
    supervisor.lost("gone")
    await clock.advance(0.0)  # the first try failed; the next in 1 s
    supervisor.worker_draining()
    assert supervisor.recovery is None
    await clock.advance(2.0)
    assert history == [
        ("reconnecting", "reconnecting", None, 0.0),
        ("reconnected", "connected", None, 1.0),
        ("handing_over", "connected", "handover", 1.0),
        ("moved", "connected", "handover", 1.5),
    ]
    await supervisor.close()


async def test_a_try_moves_to_another_worker_without_costing_the_schedule() -> None:
    clock, link, supervisor, history = await connected_link()
    link.is_healthy = False
    link.outcomes.extend([MoveElsewhere("http://a", "the worker is gone (refused)"), None])
    supervisor.lost("heartbeat lost")
    await clock.advance(0.0)
    assert history == [
        ("reconnecting", "reconnecting", None, 0.0),
        ("moving", "reconnecting", "move", 0.0),
        ("moved", "reconnecting", "move", 0.0),
        ("reconnected", "connected", None, 0.0),
    ]
    assert link.tries[-2:] == [1, 1] and supervisor.reconnects == 1
    assert link.avoided[-2:] == [frozenset(), frozenset({"http://a"})]
    assert supervisor.events.history[-3].reason == "the worker is gone (refused)"
    await supervisor.close()


async def test_a_try_that_moved_and_failed_ends_the_move_and_counts_once() -> None:
    clock, link, supervisor, history = await connected_link()
    link.is_healthy = False
    link.outcomes.extend([MoveElsewhere("http://a", "the worker is busy"), OSError("down")])
    supervisor.lost("heartbeat lost")
    await clock.advance(0.0)
    assert supervisor.recovery is None and supervisor.attempt == 2
    assert supervisor.next_retry_in_s == 1.0 and supervisor.error == "down"
    await clock.advance(1.0)
    assert history == [
        ("reconnecting", "reconnecting", None, 0.0),
        ("moving", "reconnecting", "move", 0.0),
        ("moved", "reconnecting", None, 1.0),  # the next try landed elsewhere
        ("reconnected", "connected", None, 1.0),
    ]
    assert link.tries[-3:] == [1, 1, 2]
    await supervisor.close()


def test_recovery_events_stay_off_the_status_timeline() -> None:
    shown = {k.value for k in LinkEventKind if k.value in ("moved", "failed")}
    assert shown == {"moved", "failed"}
    recoveries = {"reopening", "reopened", "handing_over", "handover_failed", "moving"}
    assert {k.value for k in LinkEventKind} - recoveries == {
        "connecting", "connected", "reconnecting", "reconnected", "failed", "closing",
        "disconnected", "moved",
    }  # fmt: skip
