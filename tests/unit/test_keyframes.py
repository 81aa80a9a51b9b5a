"""Keyframe requests on a congested path: paced, so they never fill it with keyframes;
and the encoder's keyframes capped to what the link carries in a moment."""

from __future__ import annotations

import fractions

import av

from tether.rtc.adapter import MediaAdapter
from tether.rtc.keyframes import KeyframePacing
from tether.timing import KEYFRAME_REQUEST_INTERVAL_S, KEYFRAME_REQUEST_MAX_S
from tether.tools.scene import make_scene


def asks_at(pacing: KeyframePacing, until_s: float, step_s: float = 0.01) -> list[float]:
    times = []
    for i in range(round(until_s / step_s)):
        t = round(i * step_s, 6)
        if pacing.may_ask(t):
            times.append(t)
    return times


def test_unanswered_requests_back_off_to_the_longest_wait() -> None:
    times = asks_at(KeyframePacing(), 6.0)
    gaps = [round(b - a, 2) for a, b in zip(times, times[1:], strict=False)]
    assert gaps[0] == KEYFRAME_REQUEST_INTERVAL_S
    assert all(b >= a - 0.02 for a, b in zip(gaps, gaps[1:], strict=False))  # no sooner
    assert abs(max(gaps) - KEYFRAME_REQUEST_MAX_S) < 0.02
    # 10 a second before; now a handful in 6 s
    assert len(times) <= 10, times


def test_a_keyframe_that_arrives_starts_the_pacing_over() -> None:
    pacing = KeyframePacing()
    asks_at(pacing, 3.0)
    assert pacing.wait_s == KEYFRAME_REQUEST_MAX_S
    pacing.keyframe_arrived()
    assert pacing.may_ask(100.0)
    assert not pacing.may_ask(100.0 + KEYFRAME_REQUEST_INTERVAL_S / 2)
    assert pacing.may_ask(100.0 + KEYFRAME_REQUEST_INTERVAL_S * 1.01)


def test_a_forced_request_goes_at_once() -> None:
    pacing = KeyframePacing()
    assert pacing.may_ask(0.0)
    assert not pacing.may_ask(0.01)
    assert pacing.may_ask(0.01, force=True)


def encode_sizes(bitrate: int, frames: int, keyframe_every: int) -> list[int]:
    from tether.rtc.encoder import FittedVp8Encoder

    scene = make_scene("camera", 256, 256, 1)
    encoder = FittedVp8Encoder()
    encoder.target_bitrate = bitrate
    sizes = []
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(scene.planes(i), format="yuv420p")
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        payloads, _ = encoder.encode(frame, force_keyframe=i % keyframe_every == 0)
        sizes.append(sum(map(len, payloads)))
    return sizes


def test_the_fitted_encoders_keyframes_fit_a_fifth_of_a_second_of_the_link() -> None:
    """aiortc's first keyframe after every restart was 15 KB at 200 kbit/s: more than a
    250 kbit/s path queues, so it never arrived whole and each request made another."""
    with MediaAdapter().installed():
        bitrate = 235_000  # the encoder aims at 85 %: 200 kbit/s
        sizes = encode_sizes(bitrate, 30, keyframe_every=10)
    budget = 0.2 * 200_000 / 8  # bytes
    keyframes = sizes[::10]
    assert max(keyframes) <= 1.25 * budget, keyframes  # libvpx's own overshoot
    assert sizes[0] <= budget, sizes[:3]  # the restart's keyframe too
