"""Typed link events: kinds are a StrEnum (the same strings as before), each family
has its class, ``on`` hands a callback the class of its kind, and the events' JSON
form is unchanged."""

from __future__ import annotations

import json

import pytest

from tests.unit.test_supervisor import connected, make
from tether.studio.link import (
    LinkEvent,
    LinkEventKind,
    LinkState,
    MoveEvent,
    Recovery,
    RecoveryEvent,
    StateEvent,
)


def test_kinds_are_the_strings_they_always_were() -> None:
    assert LinkEventKind.RECONNECTED == "reconnected"
    event = LinkEvent("moved", LinkState.CONNECTED, LinkState.CONNECTED, "drain", 2.5, ("a", "b"))
    assert event.kind is LinkEventKind.MOVED
    assert json.dumps(event.as_dict()) == (
        '{"kind": "moved", "from": "a", "to": "b", "reason": "drain", "state": "connected", '
        '"at": 2.5}'
    )
    state = StateEvent(LinkEventKind.FAILED, LinkState.RECONNECTING, LinkState.FAILED, "x", 1.0)
    assert json.dumps(state.as_dict()) == (
        '{"kind": "failed", "from": "reconnecting", "to": "failed", "reason": "x", "at": 1.0}'
    )
    assert state.on_timeline and event.on_timeline
    with pytest.raises(ValueError):
        LinkEvent("exploded", LinkState.IDLE, LinkState.IDLE, "")


async def test_on_hands_each_kind_its_own_class() -> None:
    clock, connector, supervisor, kinds = make()
    states: list[StateEvent] = []
    moves: list[MoveEvent] = []
    recoveries: list[RecoveryEvent] = []
    supervisor.events.on(LinkEventKind.RECONNECTED, states.append)
    supervisor.events.on(LinkEventKind.MOVED, moves.append)
    supervisor.events.on(LinkEventKind.MOVING, recoveries.append)
    unsubscribe = supervisor.events.on("reconnecting", states.append)  # a plain string
    await connected(clock, supervisor)
    connector.is_healthy = False
    supervisor.lost("gone")
    supervisor.recoveries.begin(Recovery.MOVE, LinkEventKind.MOVING, "the worker is busy")
    supervisor.moved("http://a", "http://b", "the worker is busy")
    await clock.advance(0.5)
    assert [type(e) for e in states] == [StateEvent, StateEvent]
    assert [e.kind for e in states] == ["reconnecting", "reconnected"]
    assert (moves[0].from_worker, moves[0].to_worker) == ("http://a", "http://b")
    assert recoveries[0].recovery == Recovery.MOVE and not recoveries[0].on_timeline
    unsubscribe()
    with pytest.raises(ValueError, match="unknown event"):
        supervisor.events.on("exploded", print)
    await supervisor.close()
