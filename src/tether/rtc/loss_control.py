"""A receiver's bitrate estimate held down by loss.

aiortc's estimate (REMB) is delay-based only: it falls when queueing delay grows. A
path whose queue stays full (a ``tbf`` cap, a narrow uplink) has a long but steady
delay, so the estimate settles at up to 1.5 times what arrives, the sender keeps
sending more than the path carries, and a third to a half of the packets are lost for
as long as the stream runs (measured: 490 kbit/s offered to a 250 kbit/s cap for 30 s,
about one new picture a second). As libwebrtc does, heavy loss is taken as congestion
here: at the end of each ``LOSS_CONTROL_WINDOW_S``, when more than ``LOSS_HIGH`` of
the packets sent the first time in the last two windows are missing, the estimate
drops to what arrives times (1 - loss / 2), and aiortc's rate control climbs again
from there. Loss is counted
from sequence numbers by the receiver's NACK generator (``PacedNackGenerator``), which
aiortc makes just before the estimator, in the same receiver."""

from __future__ import annotations

from typing import Any

from aiortc.rate import RemoteBitrateEstimator

from tether.rtc.nack import newer
from tether.timing import LOSS_CONTROL_WINDOW_S

# More than this share of first transmissions lost in a window is congestion (above
# libwebrtc's 10 %: 10 % random loss must not walk the bitrate down to the floor).
LOSS_HIGH = 0.25


class LossWindow:
    """First-transmission loss over consecutive windows (retransmissions not counted).
    Pure logic; time is passed in."""

    def __init__(self, window_s: float = LOSS_CONTROL_WINDOW_S) -> None:
        self.window_s = window_s
        self.fraction: float | None = None  # over the last two complete windows
        self._last: float | None = None  # the last complete window's alone
        self.windows = 0  # complete windows so far
        self._max_seq: int | None = None
        self._start: float | None = None
        self._expected = 0
        self._received = 0

    def packet(self, seq: int, now: float) -> None:
        if self._start is None:
            self._start = now
        if self._max_seq is None or newer(seq, self._max_seq):
            gap = 1 if self._max_seq is None else (seq - self._max_seq) & 0xFFFF
            self._max_seq = seq
            self._expected += gap
            self._received += 1
        if now - self._start >= self.window_s and self._expected:
            # Over the last two windows: one window of 10 % random loss reads above
            # LOSS_HIGH now and then; two in a row almost never.
            fraction = max(0.0, 1.0 - self._received / self._expected)
            self.fraction = fraction if self._last is None else (fraction + self._last) / 2
            self._last = fraction
            self.windows += 1
            self._start, self._expected, self._received = now, 0, 0


def loss_capped(estimate: int | None, incoming: int | None, loss: float | None) -> int | None:
    """The estimate where loss holds it down (None: loss does not bind)."""
    if loss is None or loss <= LOSS_HIGH or not incoming:
        return None
    cap = int(incoming * (1 - loss / 2))
    return cap if estimate is None or cap < estimate else None


# The loss window of the NACK generator made last: the next estimator takes it.
_made: list[LossWindow] = []


def made_window() -> LossWindow:
    window = LossWindow()
    _made[:] = [window]
    return window


class LossAwareEstimator(RemoteBitrateEstimator):
    def __init__(self) -> None:
        super().__init__()
        self.losses = _made.pop() if _made else None
        self._applied_window = 0
        self._estimate: int | None = None

    def add(self, **kwargs: Any) -> tuple[int, list[int]] | None:
        remb = super().add(**kwargs)
        if remb is not None:
            self._estimate = remb[0]
        losses = self.losses
        if losses is None or losses.windows == self._applied_window:
            return remb
        self._applied_window = losses.windows
        now_ms = kwargs["arrival_time_ms"]
        incoming = self.incoming_bitrate.rate(now_ms)
        cap = loss_capped(self._estimate, incoming, losses.fraction)
        if cap is None:
            return remb
        self.rate_control.set_estimate(cap, now_ms)
        self.last_update_ms, self._estimate = now_ms, cap
        return cap, list(self.ssrcs)
