"""The encoder's fit to the link: bitrate hysteresis, shrinking and frame skipping."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest

from tether.clock import VirtualClock
from tether.media.encoding import EncodingPolicy
from tether.timing import ENCODER_GROW_HOLD_S, ENCODER_INCREASE_HOLD_S


def frames(
    policy: EncodingPolicy,
    clock: VirtualClock,
    seconds: float,
    size=(512, 512),
    use: float = 1.0,
    fps: int = 30,
):
    """Offer ``seconds`` of frames; the encoder produces ``use`` of its bitrate (1.0: a
    picture that takes every bit it gets, like a camera's noise)."""
    shapes = []
    for _ in range(int(seconds * fps)):
        shape = policy.shape(*size, clock.now())
        if shape.send:
            sent_fps = fps / 2 if policy.skipping else fps
            policy.produced(int(shape.bitrate * use / sent_fps))
        shapes.append(shape)
        clock._now += 1 / fps
    return shapes


def test_a_lower_bitrate_applies_at_once_a_higher_one_after_a_hold() -> None:
    clock = VirtualClock()
    policy = EncodingPolicy(500_000, clock)
    policy.request(300_000)
    assert policy.applied == 300_000
    policy.request(320_000)  # within 15 %: not worth a keyframe
    assert policy.applied == 300_000
    policy.request(600_000)
    assert policy.applied == 300_000  # just lowered: wait
    frames(policy, clock, ENCODER_INCREASE_HOLD_S + 0.1)
    assert policy.applied == 600_000


def test_remb_jitter_does_not_restart_the_encoder_every_second() -> None:
    clock = VirtualClock()
    policy = EncodingPolicy(200_000, clock)
    changes, last = 0, policy.applied
    for bitrate in [178_000, 199_000, 222_000, 248_000, 278_000, 235_000, 249_000, 263_000] * 3:
        policy.request(bitrate)
        frames(policy, clock, 1.0)
        changes += policy.applied != last
        last = policy.applied
    assert changes <= 8  # aiortc alone: a restart (and keyframe) on nearly every one


def test_a_starved_picture_shrinks_then_skips_frames_and_grows_back_slowly() -> None:
    clock = VirtualClock()
    policy = EncodingPolicy(1_000_000, clock)
    shape = frames(policy, clock, 1)[-1]
    assert (shape.width, shape.height, shape.send) == (512, 512, True)

    policy.request(150_000)  # 0.019 bit per pixel at 512x512x30
    shape = frames(policy, clock, 1)[-1]
    assert (shape.width, shape.height) == (256, 256)
    assert all(s.send for s in frames(policy, clock, 1))

    policy.request(40_000)  # too little even at the smallest size: half the frames
    sent = frames(policy, clock, 2)
    assert {(s.width, s.height) for s in sent} == {(256, 256)}  # never below MIN_WIDTH
    assert sum(s.send for s in sent) == pytest.approx(30, abs=1)

    policy.request(1_000_000)
    frames(policy, clock, ENCODER_INCREASE_HOLD_S)
    # Room for more again: frame rate first, then size, each after a hold.
    shapes = frames(policy, clock, ENCODER_GROW_HOLD_S * 2 + 1)
    assert shapes[0].width == 256
    assert shapes[-1].width == 512 and all(s.send for s in shapes[-30:])


def test_a_720p_picture_at_the_floor_runs_at_quarter_size() -> None:
    clock = VirtualClock()
    policy = EncodingPolicy(150_000, clock)
    shape = frames(policy, clock, 1, size=(1280, 720))[-1]
    assert (shape.width, shape.height, shape.send) == (320, 180, True)


def _encode_real_frames(picture, count: int = 20) -> tuple[set, int]:
    """Encode ``count`` frames (``picture(i)``: rgb) at 150 kbps the way a tether app
    does; returns the sizes encoded and the frames skipped."""
    from tether.rtc.adapter import MediaAdapter
    from tether.rtc.encoder import FittedVp8Encoder

    with MediaAdapter().installed():  # as every tether app runs
        encoder = FittedVp8Encoder()
        encoder.target_bitrate = 150_000  # the encoder aims at 85 % of it
        assert encoder.target_bitrate == 127_500
        sizes, empty = [], 0
        for i in range(count):
            frame = av.VideoFrame.from_ndarray(picture(i), "rgb24")
            frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
            payloads, timestamp = encoder.encode(frame)
            assert abs(timestamp - i * 3000) <= 1  # PyAV rounds via the codec time base
            empty += not payloads
            sizes.append((encoder.codec.width, encoder.codec.height))
        return sizes, empty


def test_the_fitted_encoder_shrinks_real_frames_that_need_the_bits() -> None:
    rng = np.random.default_rng(0)
    sizes, empty = _encode_real_frames(lambda i: rng.integers(0, 256, (512, 512, 3), np.uint8))
    # Noise takes every bit: measured over the first frames, then a quarter of the pixels.
    assert sizes[0] == (512, 512) and set(sizes[-5:]) == {(256, 256)}
    assert empty == 0


def test_the_fitted_encoder_keeps_the_size_of_a_picture_that_fits() -> None:
    # A plain picture needs a fraction of the same bitrate: no reason to shrink it.
    sizes, empty = _encode_real_frames(lambda i: np.full((512, 512, 3), i * 10, np.uint8))
    assert set(sizes) == {(512, 512)} and empty == 0


def test_a_source_faster_than_a_camera_never_loses_a_frame() -> None:
    """`tether run` sends the next frame once the last is back (150+ a second): a
    skipped frame would stall it for good, so such a rate is fitted as 60 fps."""
    clock = VirtualClock()
    policy = EncodingPolicy(200_000, clock)
    shapes = []
    for i in range(600):
        clock._now += 1 / 200
        shapes.append(policy.shape(256, 192, i / 200))
    assert all(s.send for s in shapes) and policy.skipped == 0
    assert policy.fps() == 60.0


def test_a_picture_that_uses_little_of_a_low_bitrate_keeps_its_size() -> None:
    """A still or an already compressed picture: the estimate follows what is sent, so
    it is low, and it says nothing about the path."""
    clock = VirtualClock()
    policy = EncodingPolicy(150_000, clock)  # 0.019 bit per pixel at 512x512x30
    shapes = frames(policy, clock, 3, use=0.3)
    assert {(s.width, s.height) for s in shapes} == {(512, 512)}
    assert all(s.send for s in shapes)


def test_a_shrunk_picture_that_uses_little_grows_back_without_a_higher_estimate() -> None:
    """Once shrunk, the estimate can grow only to 1.5 times what the smaller picture
    sends: the bits per pixel of the larger one may never get there."""
    clock = VirtualClock()
    policy = EncodingPolicy(150_000, clock)
    assert frames(policy, clock, 1)[-1].width == 256  # starved: shrinks
    shapes = frames(policy, clock, ENCODER_GROW_HOLD_S + 1, use=0.1)
    assert shapes[0].width == 256 and shapes[-1].width == 512
    # The larger picture is measured afresh: using 40 % of the bitrate, it stays.
    assert {s.width for s in frames(policy, clock, 3, use=0.4)} == {512}


def test_60_fps_costs_the_square_root_of_twice_the_bits_of_30() -> None:
    clock = VirtualClock()
    policy = EncodingPolicy(380_000, clock)  # was shrunk: below 0.025 x 512 x 512 x 60
    assert {s.width for s in frames(policy, clock, 2, fps=60)} == {512}
    policy.request(250_000)  # below 0.025 x 512 x 512 x 42.4: too little
    assert frames(policy, clock, 1, fps=60)[-1].width == 256


def test_only_an_estimate_that_held_the_encoder_back_is_carried_to_the_next() -> None:
    import aiortc.codecs.vpx as vpx

    from tether.rtc.adapter import MediaAdapter
    from tether.rtc.encoder import FITTED_START_BPS, FittedVp8Encoder, carry_bitrate

    class Peer:
        def __init__(self, encoder: FittedVp8Encoder) -> None:
            self.sender = type("Sender", (), {"_RTCRtpSender__encoder": encoder})()

        def getSenders(self) -> list:
            return [self.sender]

    def peer(bitrate: int, use: float) -> Peer:
        encoder = FittedVp8Encoder()
        encoder.target_bitrate = bitrate
        frames(encoder.policy, VirtualClock(), 1, use=use)
        return Peer(encoder)

    before = vpx.DEFAULT_BITRATE
    with MediaAdapter(ice_hosts="loopback").installed():
        started = vpx.DEFAULT_BITRATE
        assert started == FITTED_START_BPS  # the steadied estimate's start, shared
        carry_bitrate(peer(100_000, use=0.2))  # a still picture's estimate
        assert started == vpx.DEFAULT_BITRATE
        carry_bitrate(peer(200_000, use=1.0))  # a link that held the picture back
        assert vpx.DEFAULT_BITRATE == 170_000
        carry_bitrate(peer(100_000, use=0.2))  # never lowered by a picture that sent little
        assert vpx.DEFAULT_BITRATE == 170_000
        relay = FittedVp8Encoder()  # a relay's sender: it only packs forwarded frames
        relay.target_bitrate = 80_000
        carry_bitrate(Peer(relay))
        assert vpx.DEFAULT_BITRATE == 170_000
    assert before == vpx.DEFAULT_BITRATE  # undone with the adapter
