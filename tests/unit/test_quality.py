"""Link quality in virtual time: levels, the limiting factor, and hysteresis."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.clock import VirtualClock
from tether.studio.link.quality import (
    Factor,
    LargestPicture,
    Level,
    QualityMeter,
    Sample,
    grade,
    pipeline_bound,
)

HEALTHY = Sample(rtt_ms=40, loss=0.0, fps_in=30, fps_out=30, latency_ms=90, worker_ms=5)


def step(clock: VirtualClock, meter: QualityMeter, sample: Sample, seconds: float) -> None:
    """Feed ``sample`` every 0.25 s for ``seconds`` of virtual time."""
    for _ in range(int(seconds / 0.25)):
        meter.update(sample)
        clock._now += 0.25


@pytest.mark.parametrize(
    ("factor", "value", "level"),
    [
        (Factor.RTT, 100, Level.GOOD), (Factor.RTT, 250, Level.FAIR),
        (Factor.RTT, 500, Level.POOR), (Factor.RTT, 900, Level.BAD),
        (Factor.LOSS, 0.01, Level.GOOD), (Factor.LOSS, 0.10, Level.POOR),
        (Factor.LOSS, 0.02, Level.GOOD), (Factor.LOSS, 0.04, Level.FAIR),
        (Factor.BANDWIDTH, 2000, Level.GOOD), (Factor.BANDWIDTH, 450, Level.GOOD),
        (Factor.BANDWIDTH, 300, Level.FAIR),
        (Factor.BANDWIDTH, 200, Level.POOR),  # what a 250 kbit/s path estimates
        (Factor.BANDWIDTH, 90, Level.BAD), (Factor.FPS, 0.5, Level.POOR),
        (Factor.FPS, 0.95, Level.GOOD),
    ],
)  # fmt: skip
def test_grades(factor: Factor, value: float, level: Level) -> None:
    assert grade(factor, value) == level


def test_healthy_link_is_good_with_no_limiting_factor() -> None:
    meter = QualityMeter(VirtualClock())
    assert meter.update(HEALTHY).as_dict() == {"level": "good", "factor": None}


def test_the_worst_factor_sets_level_and_names_itself() -> None:
    clock = VirtualClock()
    meter = QualityMeter(clock)
    lossy = Sample(rtt_ms=250, loss=0.12, fps_in=30, fps_out=29)  # rtt fair, loss poor
    step(clock, meter, lossy, 2)
    assert meter.current.as_dict() == {"level": "poor", "factor": "loss"}
    slow_worker = Sample(rtt_ms=40, fps_in=30, fps_out=30, worker_ms=60)  # 1.8 frame periods
    assert meter.raw(slow_worker).factor == Factor.WORKER


def test_degrades_after_a_second_and_improves_only_after_five() -> None:
    clock = VirtualClock()
    meter = QualityMeter(clock, degrade_s=1.0, improve_s=5.0)
    far = Sample(rtt_ms=700)
    meter.update(far)
    clock._now += 0.5
    assert meter.update(far).level == Level.GOOD  # one blip is not a verdict
    clock._now += 0.6
    assert meter.update(far).as_dict() == {"level": "bad", "factor": "rtt"}
    step(clock, meter, HEALTHY, 4.5)
    assert meter.current.level == Level.BAD  # not yet
    step(clock, meter, HEALTHY, 1.0)
    assert meter.current.level == Level.GOOD


def test_flapping_around_a_threshold_does_not_flicker() -> None:
    clock = VirtualClock()
    meter = QualityMeter(clock)
    step(clock, meter, Sample(rtt_ms=320), 2)  # fair -> poor band
    assert meter.current.level == Level.POOR
    levels = set()
    for i in range(200):  # 290 / 310 ms alternating for 50 s: just around the bound
        levels.add(meter.update(Sample(rtt_ms=290 if i % 2 else 310)).level)
        clock._now += 0.25
    assert levels == {Level.POOR}
    step(clock, meter, Sample(rtt_ms=280), 6)  # clearly better, but inside the margin
    assert meter.current.level == Level.POOR
    step(clock, meter, Sample(rtt_ms=200), 6)
    assert meter.current.level == Level.FAIR


@given(st.lists(st.floats(0, 2000), min_size=1, max_size=60))
def test_level_changes_at_most_once_per_second(rtts: list[float]) -> None:
    clock = VirtualClock()
    meter = QualityMeter(clock)
    changes, last = [], meter.current.level
    for rtt in rtts:
        level = meter.update(Sample(rtt_ms=rtt)).level
        if level != last:
            changes.append(clock.now())
            last = level
        clock._now += 0.1
    assert all(b - a >= 1.0 for a, b in zip(changes, changes[1:], strict=False))


def test_reset_forgets() -> None:
    clock = VirtualClock()
    meter = QualityMeter(clock)
    step(clock, meter, Sample(loss=0.5), 2)
    meter.reset()
    assert meter.current.level == Level.GOOD


def test_fps_recovers_on_a_healthy_link_that_drops_a_frame_now_and_then() -> None:
    clock = VirtualClock()
    meter = QualityMeter(clock)
    step(clock, meter, Sample(fps_in=30, fps_out=20), 2)  # a slow start: fair, fps
    assert meter.current.as_dict() == {"level": "fair", "factor": "fps"}
    step(clock, meter, Sample(fps_in=30, fps_out=28.5), 6)  # 0.95: healthy, not perfect
    assert meter.current.level == Level.GOOD
    assert grade(Factor.FPS, 0.905, margin=0.1) == Level.FAIR  # inside the margin


def test_a_factor_that_comes_and_goes_does_not_hold_an_improvement_back() -> None:
    clock = VirtualClock()
    meter = QualityMeter(clock)
    step(clock, meter, Sample(bitrate_kbps=200), 2)
    assert meter.current.as_dict() == {"level": "poor", "factor": "bandwidth"}
    # Better all along: fair while the path holds the video back, good (unmeasured)
    # between; after the wait it shows the worst of the better ones.
    for i in range(24):
        meter.update(Sample(bitrate_kbps=330) if i % 2 else Sample())
        clock._now += 0.25
    assert meter.current.as_dict() == {"level": "fair", "factor": "bandwidth"}
    step(clock, meter, Sample(bitrate_kbps=200), 2)
    step(clock, meter, Sample(bitrate_kbps=330), 3)
    step(clock, meter, Sample(bitrate_kbps=200), 0.5)  # a relapse restarts the wait
    step(clock, meter, Sample(bitrate_kbps=330), 4.5)
    assert meter.current.level == Level.POOR
    step(clock, meter, Sample(bitrate_kbps=330), 1)
    assert meter.current.level == Level.FAIR


def test_bandwidth_is_judged_against_the_largest_picture_the_stream_carried() -> None:
    meter = QualityMeter(VirtualClock())
    assert meter.raw(Sample(bitrate_kbps=200, pixels=512 * 512)).level == Level.POOR
    # A quarter of the picture: 70 kbit/s is what 280 would be for the full one.
    assert meter.raw(Sample(bitrate_kbps=70, pixels=256 * 256)).level == Level.FAIR
    assert meter.raw(Sample(bitrate_kbps=200)).level == Level.POOR  # size unknown
    # What a 150 kbit/s path allows keeps a quarter of the picture moving: poor, not bad.
    assert meter.raw(Sample(bitrate_kbps=120, pixels=512 * 512)).level == Level.POOR
    assert meter.raw(Sample(bitrate_kbps=80, pixels=512 * 512)).level == Level.BAD
    picture, stream, other = LargestPicture(), object(), object()
    assert picture.see(stream, None) is None
    assert picture.see(stream, (512, 512)) == 512 * 512
    # Shrunk to fit the path: still judged as the picture it was.
    assert picture.see(stream, (256, 256)) == 512 * 512
    assert picture.see(other, (256, 256)) == 256 * 256  # a new stream starts afresh


def test_a_slow_model_is_named_pipeline_and_leaves_the_link_fair() -> None:
    clock = VirtualClock()
    meter = QualityMeter(clock)
    # 150 ms a frame: about 6.5 of 30 frames come back, at the model's own pace.
    six_fps = Sample(rtt_ms=40, loss=0.0, fps_in=30, fps_out=6.5, latency_ms=200, worker_ms=150)
    step(clock, meter, six_fps, 3)
    assert meter.current.as_dict() == {"level": "fair", "factor": "pipeline"}
    # The same few frames when the model could make far more: the path loses them.
    lost = Sample(rtt_ms=40, loss=0.0, fps_in=30, fps_out=6.5, latency_ms=200, worker_ms=20)
    step(clock, meter, lost, 2)
    assert meter.current.as_dict() == {"level": "bad", "factor": "fps"}
    # Its own time is not the link's delay: 150 ms of a 260 ms glass-to-glass.
    slow_and_late = replace(six_fps, latency_ms=260)
    assert meter.raw(slow_and_late).as_dict() == {"level": "fair", "factor": "pipeline"}
    assert meter.raw(replace(slow_and_late, worker_ms=20)).factor == Factor.FPS
    # A path slow on its own beside a slow model is still named.
    assert meter.raw(replace(six_fps, latency_ms=900)).as_dict() == {
        "level": "poor",
        "factor": "latency",
    }
    # A worse path beside a slow model is still named: the path's factor wins.
    lossy_and_slow = Sample(rtt_ms=40, loss=0.10, fps_in=30, fps_out=6.5, worker_ms=150)
    assert meter.raw(lossy_and_slow).as_dict() == {"level": "poor", "factor": "loss"}


def test_a_loading_model_is_the_pipeline_not_a_bad_link() -> None:
    meter = QualityMeter(VirtualClock())
    loading = Sample(rtt_ms=40, loss=0.0, fps_in=30, fps_out=0.0, pipeline_loading=True)
    assert meter.raw(loading).as_dict() == {"level": "fair", "factor": "pipeline"}
    assert meter.raw(replace(loading, pipeline_loading=False)).as_dict() == {
        "level": "bad",
        "factor": "fps",
    }


def test_a_model_that_keeps_up_caps_nothing() -> None:
    meter = QualityMeter(VirtualClock())
    # 28 ms a frame at 30 fps: busy most of each second, yet every frame comes back.
    keeps_up = Sample(rtt_ms=40, loss=0.0, fps_in=30, fps_out=29.5, worker_ms=28)
    assert meter.raw(keeps_up).factor != Factor.PIPELINE


@given(
    fps_out=st.floats(0, 60),
    worker_ms=st.floats(0, 2000),
    fps_in=st.floats(1, 60),
    loading=st.booleans(),
)
def test_a_pipeline_bound_link_is_never_worse_than_fair_by_the_model_alone(
    fps_out: float, worker_ms: float, fps_in: float, loading: bool
) -> None:
    sample = Sample(
        rtt_ms=40, loss=0.0, fps_in=fps_in, fps_out=fps_out, worker_ms=worker_ms,
        pipeline_loading=loading,
    )  # fmt: skip
    quality = QualityMeter(VirtualClock()).raw(sample)
    if pipeline_bound(sample):
        assert quality.level <= Level.FAIR
        assert quality.factor in (None, Factor.PIPELINE)
