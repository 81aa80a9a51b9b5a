"""Congestion on a capped path is met by the bitrate, not by resends: a receiver's
estimate falls under heavy loss (not under random loss of 10 %), and a sender's
resends stay within a share of what it sends."""

from __future__ import annotations

import inspect
import random

from aiortc import RTCRtpReceiver

from tether.rtc.loss_control import LOSS_HIGH, LossAwareEstimator, LossWindow, loss_capped
from tether.rtc.resend import RESEND_SHARE, RESEND_START_BYTES, ResendBudget


def window_losses(loss: float, seconds: float, pps: int = 40, seed: int = 1) -> list[float]:
    rng, window, out = random.Random(seed), LossWindow(), []
    for i in range(int(seconds * pps)):
        if rng.random() >= loss:
            window.packet(i & 0xFFFF, i / pps)
        if window.fraction is not None and len(out) < window.windows:
            out.append(window.fraction)
    return out


def test_loss_is_counted_from_first_transmissions_per_window() -> None:
    losses = window_losses(0.5, 10)
    assert len(losses) >= 8
    assert all(0.3 < f < 0.7 for f in losses), losses
    assert window_losses(0.0, 5) and max(window_losses(0.0, 5)) == 0.0


def test_random_loss_of_ten_percent_never_holds_the_estimate_down() -> None:
    for seed in range(5):
        assert max(window_losses(0.10, 60, seed=seed)) <= LOSS_HIGH


def test_heavy_loss_caps_the_estimate_at_what_arrives_less_half_the_loss() -> None:
    assert loss_capped(375_000, 250_000, 0.5) == 187_500
    assert loss_capped(150_000, 250_000, 0.5) is None  # already lower
    assert loss_capped(375_000, 250_000, 0.05) is None  # light loss: not congestion
    assert loss_capped(375_000, None, 0.5) is None


def test_aiortc_makes_the_nack_generator_just_before_the_estimator() -> None:
    """The estimator finds its receiver's loss window by that order."""
    source = inspect.getsource(RTCRtpReceiver.__init__)
    assert source.index("NackGenerator()") < source.index("RemoteBitrateEstimator()")
    assert LossAwareEstimator().losses is None  # none made: it does without


def test_resends_stay_within_their_share_of_the_media() -> None:
    budget, octets, resent = ResendBudget(), 0, 0
    for i in range(300):  # 10 s: 20 kB/s of media, resends asked for twice as much
        octets += 666
        now = i / 30
        for _ in range(2):
            if budget.allow(1000, octets, now):
                resent += 1000
    assert resent <= RESEND_SHARE * octets + RESEND_START_BYTES
    assert resent >= 0.8 * RESEND_SHARE * octets
    assert budget.refused > 0


def test_the_resends_random_loss_needs_all_go() -> None:
    budget, octets, refused = ResendBudget(), 0, 0
    rng = random.Random(3)
    for i in range(900):
        octets += 1000
        if rng.random() < 0.2:  # 20 % of packets lost and asked for once
            refused += not budget.allow(1000, octets, i / 90)
    assert refused == 0
