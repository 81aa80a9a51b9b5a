"""The upstream frame rate follows the pipeline's pace: at most HEADROOM times what it
processes while it is slower than the camera, every frame once it keeps up."""

from __future__ import annotations

from tether.clock import VirtualClock
from tether.media.rate import HEADROOM, RateGovernor


class Pipeline:
    def __init__(self, fps: float | None) -> None:
        self.fps = fps

    def pace(self) -> float | None:
        return self.fps


def run(governor: RateGovernor, clock: VirtualClock, seconds: float, fps: float = 30) -> int:
    """Offer frames at ``fps`` for ``seconds``; how many went out."""
    sent = 0
    for _ in range(round(seconds * fps)):
        clock._now += 1 / fps
        sent += governor.admit()
    return sent


def test_a_slow_pipeline_gets_at_most_twice_its_rate() -> None:
    clock, pipeline = VirtualClock(), Pipeline(6.0)  # 150 ms a frame
    governor = RateGovernor(pipeline.pace, clock)
    run(governor, clock, 2)
    assert governor.limit_fps == HEADROOM * 6.0
    sent = run(governor, clock, 10)
    assert 8.5 <= sent / 10 <= 2 * 6.0, sent
    assert abs(governor.sent_fps() - HEADROOM * 6.0) < 1.0
    assert abs(governor.offered_fps() - 30) < 1.0


def test_the_rate_follows_a_pipeline_that_gets_faster_and_lifts_when_it_keeps_up() -> None:
    clock, pipeline = VirtualClock(), Pipeline(5.0)
    governor = RateGovernor(pipeline.pace, clock)
    run(governor, clock, 3)
    assert governor.limit_fps == 7.5
    pipeline.fps = 12.0
    run(governor, clock, 1)
    assert governor.limit_fps == 18.0
    assert 16 <= run(governor, clock, 2) / 2 <= 19
    pipeline.fps = 25.0  # 37.5 allowed: more than the camera gives
    run(governor, clock, 1)
    assert governor.limit_fps is None and not governor.throttling
    assert run(governor, clock, 2) == 60  # every frame


def test_a_pipeline_that_keeps_up_or_is_not_measured_is_never_throttled() -> None:
    clock = VirtualClock()
    for pace in (None, 22.0, 100.0):  # 22: 33 allowed, above the 30 offered
        governor = RateGovernor(Pipeline(pace).pace, clock)
        assert run(governor, clock, 3) == 90
        assert governor.limit_fps is None


def test_thinning_holds_until_the_allowance_reaches_the_rate_offered() -> None:
    """Hysteresis: it starts below 80 % of the rate offered, ends at 100 %."""
    clock, pipeline = VirtualClock(), Pipeline(17.0)  # 25.5 allowed of 30: not yet
    governor = RateGovernor(pipeline.pace, clock)
    run(governor, clock, 2)
    assert governor.limit_fps is None
    pipeline.fps = 10.0
    run(governor, clock, 1)
    assert governor.limit_fps == 15.0
    pipeline.fps = 17.0  # 25.5: still thinning (below 30)
    run(governor, clock, 1)
    assert governor.limit_fps == 25.5
