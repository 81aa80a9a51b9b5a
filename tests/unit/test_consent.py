"""ICE consent checks that wait for a long path's answer (tether.rtc.consent)."""

from __future__ import annotations

from typing import Any

import aioice.ice
import pytest
from aioice import stun

from tether.rtc import consent
from tether.rtc.adapter import MediaAdapter
from tether.timing import ICE_CONSENT_ANSWER_S


def test_a_check_waits_for_a_round_trip_of_seconds() -> None:
    waits = [stun.RETRY_RTO * 2**i for i in range(consent.CONSENT_RETRANSMISSIONS + 1)]
    assert sum(waits) >= ICE_CONSENT_ANSWER_S > 1.0  # aioice's own: 0.5 s
    assert consent.retransmissions_within(0.5) == 0
    assert consent.retransmissions_within(3.5) == 2


def test_the_reach_in_matches_aioice() -> None:
    """What the stand-in reads from aioice is still there, under the same names."""
    connection = aioice.ice.Connection(ice_controlling=True)
    for name in ("_nominated", "_query_consent_task", "build_request", "remote_password"):
        assert hasattr(connection, name), name
    assert aioice.ice.CONSENT_FAILURES == 6
    assert callable(aioice.ice.Connection.query_consent)


def test_the_adapter_installs_it_and_gives_aioice_its_own_back() -> None:
    before = aioice.ice.Connection.query_consent
    with MediaAdapter().installed():
        assert aioice.ice.Connection.query_consent is consent.patient_query_consent
        with MediaAdapter.stock().installed():
            assert aioice.ice.Connection.query_consent.__module__ == "aioice.ice"
    assert aioice.ice.Connection.query_consent is before


class _Pair:
    remote_addr = ("192.0.2.1", 9)

    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers
        self.retransmissions: list[int | None] = []
        self.protocol = self

    async def request(self, request: Any, addr: Any, **kwargs: Any) -> Any:
        self.retransmissions.append(kwargs.get("retransmissions"))
        if not self.answers.pop(0):
            raise stun.TransactionTimeout()
        return object(), addr


class _Connection:
    remote_password = "pw"

    def __init__(self, pair: _Pair) -> None:
        self._nominated = {1: pair}
        self._query_consent_task: object | None = object()
        self.closed = 0

    def build_request(self, pair: Any, nominate: bool) -> object:
        return object()

    async def close(self) -> None:
        self.closed += 1


async def test_six_unanswered_checks_in_a_row_close_and_an_answer_starts_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(consent, "CONSENT_INTERVAL", 0.001)
    pair = _Pair([False] * 5 + [True] + [False] * 6)
    connection = _Connection(pair)
    await consent.patient_query_consent(connection)
    assert connection.closed == 1 and connection._query_consent_task is None
    assert len(pair.retransmissions) == 12  # five failures did not close it
    assert set(pair.retransmissions) == {consent.CONSENT_RETRANSMISSIONS}
