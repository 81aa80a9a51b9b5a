import random

import pytest

from tether.studio.link.backoff import BackoffSchedule


def test_default_schedule_is_immediate_then_1_2_4() -> None:
    schedule = BackoffSchedule(jitter=0)
    assert schedule.tries == 4
    assert [schedule.delay(i) for i in range(4)] == [0.0, 1.0, 2.0, 4.0]
    with pytest.raises(IndexError, match="past the schedule's 4 tries"):
        schedule.delay(4)


def test_jitter_stays_within_bounds_and_zero_stays_zero() -> None:
    schedule = BackoffSchedule(jitter=0.1, rng=random.Random(7))
    for _ in range(200):
        assert schedule.delay(0) == 0.0
        assert 0.9 <= schedule.delay(1) <= 1.1
        assert 3.6 <= schedule.delay(3) <= 4.4


def test_jitter_varies() -> None:
    schedule = BackoffSchedule(jitter=0.1, rng=random.Random(1))
    assert len({round(schedule.delay(2), 6) for _ in range(20)}) > 1


@pytest.mark.parametrize(("delays", "jitter"), [((), 0.1), ((1, -1), 0.1), ((1,), 1.5)])
def test_bad_schedules(delays: tuple, jitter: float) -> None:
    with pytest.raises(ValueError):
        BackoffSchedule(delays, jitter)
