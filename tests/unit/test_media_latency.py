"""Matching the frames we sent, the frames that came back and the worker's reports of
which was made from which: pure logic, in virtual time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.client.media_latency import PENDING_KEPT, SENT_KEPT, MediaLatency


class Time:
    """The meter only reads the time: a clock that moves when the test says."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def advance_sync(self, seconds: float) -> None:
        self.t += seconds


def meter() -> tuple[Time, MediaLatency]:
    clock = Time()
    return clock, MediaLatency(clock.now)


def test_nothing_is_known_until_a_frame_made_the_round_trip() -> None:
    clock, m = meter()
    assert m.latency_ms(2.0) is None and m.worker_ms(2.0) is None
    m.sent(100)
    clock.advance_sync(0.03)
    m.arrived(900)  # no report yet: not matched
    assert m.latency_ms(2.0) is None


@pytest.mark.parametrize("report_first", [False, True])
def test_a_round_trip_is_from_sending_to_arrival_whichever_comes_first(
    report_first: bool,
) -> None:
    clock, m = meter()
    m.sent(100)
    clock.advance_sync(0.080)
    if report_first:  # the data channel beat the media
        m.reported(100, 900, worker_ms=20.0)
        clock.advance_sync(0.010)
        m.arrived(900)
        expected = 90.0
    else:
        m.arrived(900)
        clock.advance_sync(0.010)  # when the report comes does not matter
        m.reported(100, 900, worker_ms=20.0)
        expected = 80.0
    assert m.latency_ms(2.0) == pytest.approx(expected)
    assert m.worker_ms(2.0) == 20.0
    assert m.matched == 1


def test_the_median_over_a_window_follows_a_change() -> None:
    clock, m = meter()
    for i in range(30):  # 30 fps, 40 ms round trip
        m.sent(i * 3000)
        clock.advance_sync(0.040)
        m.reported(i * 3000, 10**6 + i, worker_ms=5.0)
        m.arrived(10**6 + i)
    assert m.latency_ms(2.0) == pytest.approx(40.0)
    for i in range(30, 90):  # the worker now needs 200 ms more
        m.sent(i * 3000)
        clock.advance_sync(0.240)
        m.arrived(10**6 + i)
        m.reported(i * 3000, 10**6 + i, worker_ms=205.0)
    assert m.latency_ms(2.0) == pytest.approx(240.0)
    assert m.worker_ms(2.0) == 205.0
    clock.advance_sync(2.5)  # nothing came back since: unknown, not stale
    assert m.latency_ms(2.0) is None and m.worker_ms(2.0) is None


def test_frames_that_are_not_ours_or_too_old_are_not_matched() -> None:
    clock, m = meter()
    m.sent(5)
    for i in range(SENT_KEPT):  # 5 is forgotten
        m.sent(1000 + i)
    m.reported(5, 77, worker_ms=1.0)
    m.arrived(77)
    m.reported(123_456, 78, worker_ms=1.0)  # an input we never sent
    m.arrived(78)
    assert m.matched == 0 and m.latency_ms(2.0) is None
    assert m.worker_ms(2.0) == 1.0  # what the worker says about itself still counts


def test_unmatched_halves_are_forgotten() -> None:
    clock, m = meter()
    for i in range(10 * PENDING_KEPT):  # frames back whose reports were lost
        m.arrived(i)
        m.reported(10**7 + i, 10**8 + i, worker_ms=1.0)  # reports whose frames were lost
    assert len(m._arrived) <= PENDING_KEPT and len(m._made_from) <= PENDING_KEPT


@given(
    st.lists(
        st.tuples(st.integers(0, 500), st.integers(0, 300), st.booleans(), st.booleans()),
        min_size=1,
        max_size=60,
    )
)
def test_every_sample_is_a_real_round_trip(frames: list[tuple[int, int, bool, bool]]) -> None:
    """Whatever gets lost and whichever half comes first, each measurement is exactly
    one frame's time from sending to arrival."""
    clock, m = meter()
    truth: list[float] = []
    for i, (trip_ms, gap_ms, report_first, lost) in enumerate(frames):
        m.sent(i)
        clock.advance_sync(trip_ms / 1000)
        if not lost:
            if report_first:
                m.reported(i, 10**6 + i, worker_ms=1.0)
                m.arrived(10**6 + i)
            else:
                m.arrived(10**6 + i)
                m.reported(i, 10**6 + i, worker_ms=1.0)
            truth.append(float(trip_ms))
        clock.advance_sync(gap_ms / 1000)
    assert m.matched == len(truth)
    assert sorted(round(ms, 6) for _, ms in m._latency) == sorted(truth)
