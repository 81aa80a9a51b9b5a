"""The supervisor when things go wrong inside the studio: a listener that raises, a
try that hits a bug, and a failed link that must recover without a human."""

from __future__ import annotations

import logging

import pytest

from tests.unit.test_supervisor import connected, make
from tether.studio.link.supervisor import FatalLinkError, LinkState


async def test_a_raising_listener_is_isolated_and_the_link_recovers(caplog) -> None:
    clock, connector, supervisor, kinds = make()

    def explode(event) -> None:
        raise RuntimeError("listener bug")

    supervisor.events.on("reconnecting", explode)
    await connected(clock, supervisor)
    connector.is_healthy = False
    with caplog.at_level(logging.ERROR):
        supervisor.lost("heartbeat lost")
        await clock.advance(0.5)
    assert supervisor.state == LinkState.CONNECTED, kinds  # the try ran anyway
    assert kinds[-2:] == ["reconnecting", "reconnected"]
    assert any("listener failed" in r.message and r.exc_info for r in caplog.records)
    await supervisor.close()


@pytest.mark.parametrize("bug", [AssertionError("x is None"), KeyError("sdp")])
async def test_a_bug_in_a_try_is_an_internal_error_with_a_traceback(caplog, bug) -> None:
    clock, connector, supervisor, kinds = make()
    connector.outcomes.append(bug)
    with caplog.at_level(logging.INFO):
        await supervisor.start()
        await clock.advance(0.5)
    assert supervisor.state == LinkState.FAILED
    assert supervisor.error.startswith("internal error")
    assert type(bug).__name__ in supervisor.error
    assert connector.tries == [1]  # not counted as a network failure and retried
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and errors[0].exc_info is not None
    await supervisor.close()


async def test_attempt_numbers_in_log_and_status_agree_try_1_first(caplog) -> None:
    clock, connector, supervisor, kinds = make(try_s=0.0)
    await connected(clock, supervisor)
    connector.is_healthy = False
    connector.outcomes.extend([OSError("refused")] * 2)
    seen: list[int] = []
    supervisor.on_change = lambda: seen.append(supervisor.attempt)
    with caplog.at_level(logging.INFO, logger="tether.studio.link.supervisor"):
        supervisor.lost("gone")
        assert supervisor.attempt == 1
        await clock.advance(10)
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("link: try")]
    assert logged == ["link: try 1/4", "link: try 2/4", "link: try 3/4"]
    assert sorted({a for a in seen if a}) == [1, 2, 3]  # the status showed each try
    assert supervisor.state == LinkState.CONNECTED
    await supervisor.close()


async def test_failed_link_keeps_probing_and_recovers_by_itself() -> None:
    clock, connector, supervisor, kinds = make(try_s=0.0, failed_probe_s=5.0)
    await connected(clock, supervisor)
    connector.is_healthy = False
    connector.outcomes.extend([OSError("refused")] * 4)
    supervisor.lost("gone")
    await clock.advance(8)
    assert supervisor.state == LinkState.FAILED and supervisor.probing
    assert "keep trying" in supervisor.error and connector.gave_up == 1
    await clock.advance(20)  # the worker does not answer: still failed, still probing
    assert supervisor.state == LinkState.FAILED and connector.probes >= 4
    connector.reachable = True
    await clock.advance(5.1)
    assert supervisor.state == LinkState.CONNECTED
    assert kinds[-2:] == ["reconnecting", "reconnected"] and not supervisor.probing
    await supervisor.close()


async def test_failed_probing_waits_for_a_stream_and_stops_on_disconnect() -> None:
    clock, connector, supervisor, kinds = make(try_s=0.0, failed_probe_s=5.0)
    connector.outcomes.extend([OSError("refused")] * 4)
    connector.is_wanted = False
    connector.reachable = True
    await supervisor.start()
    await clock.advance(8)
    assert supervisor.state == LinkState.FAILED
    await clock.advance(20)
    assert supervisor.state == LinkState.FAILED  # no stream wants the link
    await supervisor.stop()
    connector.is_wanted = True
    await clock.advance(20)
    assert supervisor.state == LinkState.IDLE and not supervisor.probing
    assert not supervisor.trying and len(connector.tries) == 4
    await supervisor.close()


async def test_permanent_error_fails_at_once_and_is_not_probed() -> None:
    clock, connector, supervisor, kinds = make(failed_probe_s=5.0)
    connector.outcomes.append(FatalLinkError("the worker rejected the token"))
    connector.reachable = True
    await supervisor.start()
    await clock.advance(60)
    assert supervisor.state == LinkState.FAILED and not supervisor.probing
    assert connector.tries == [1] and connector.probes == 0
    await supervisor.close()
