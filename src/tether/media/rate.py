"""The upstream frame rate: how many of the client's frames a second go to the worker.

A model slower than the camera cannot take every frame: the worker processes the
newest and drops the rest, so each frame sent past the model's pace costs the path
bandwidth (and the worker a decode) for nothing. ``RateGovernor`` is the one door for
that rate. It reads the pipeline's pace (``pace()``: the frames a second it can
process, from the worker's own time per frame and the rate its frames come back) and
allows ``HEADROOM`` times that, so the model never waits for a frame across a jittery
path yet never gets far more than it can take. It thins the stream only where that
would drop frames: once the allowance is below ``THROTTLE_BELOW`` of the rate offered,
until it reaches the rate offered again. A faster model raises the allowance at the
next look (every ``RATE_LOOK_S``). Pure logic; time comes from a Clock."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from tether.clock import Clock
from tether.timing import RATE_LOOK_S, RATE_WINDOW_S

# Frames allowed upstream per frame the pipeline can process.
HEADROOM = 1.5
# Thinning starts when the allowance falls this far below the rate offered...
THROTTLE_BELOW = 0.8
# ...and ends when it is back to this share of it.
THROTTLE_UNTIL = 1.0


class RateGovernor:
    def __init__(self, pace: Callable[[], float | None], clock: Clock) -> None:
        self._pace = pace  # frames/s the pipeline processes (None: not known)
        self.clock = clock
        self.limit_fps: float | None = None  # while thinning, the frames/s allowed
        self._looked_at: float | None = None
        self._offered: deque[float] = deque()
        self._sent: deque[float] = deque()
        self._credit = 1.0  # frames that may go now
        self._credit_at: float | None = None

    @property
    def throttling(self) -> bool:
        self._look()
        return self.limit_fps is not None

    def admit(self) -> bool:
        """Call once per frame offered, in order: whether it goes to the worker."""
        now = self.clock.now()
        self._look()
        _append(self._offered, now)
        limit = self.limit_fps
        if limit is None:
            self._credit, self._credit_at = 1.0, now
        else:
            self._credit += (now - (self._credit_at or now)) * limit
            self._credit_at = now
            admitted = self._credit >= 1.0
            # What is left carries to the next frame, but no burst after a pause.
            self._credit = min(self._credit - admitted, 1.0)
            if not admitted:
                return False
        _append(self._sent, now)
        return True

    def offered_fps(self) -> float:
        return _rate(self._offered, self.clock.now())

    def sent_fps(self) -> float:
        """The frames a second that went to the worker, lately."""
        return _rate(self._sent, self.clock.now())

    def _look(self) -> None:
        now = self.clock.now()
        if self._looked_at is not None and now - self._looked_at < RATE_LOOK_S:
            return
        self._looked_at = now
        pace, offered = self._pace(), self.offered_fps()
        allowed = HEADROOM * pace if pace else None
        if allowed is None or not offered:
            self.limit_fps = None
        elif self.limit_fps is None:
            self.limit_fps = allowed if allowed < THROTTLE_BELOW * offered else None
        else:
            self.limit_fps = allowed if allowed < THROTTLE_UNTIL * offered else None


def _append(times: deque[float], now: float) -> None:
    times.append(now)
    while times and now - times[0] > RATE_WINDOW_S:
        times.popleft()


def _rate(times: deque[float], now: float) -> float:
    recent = [t for t in times if now - t <= RATE_WINDOW_S]
    if len(recent) < 2:
        return 0.0
    return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)
