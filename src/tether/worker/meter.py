"""The pipeline's pace as the worker sees it: frames put out per second over a recent
window, and the median time a frame spent in the pipeline. Told to the studio on each
heartbeat pong."""

from __future__ import annotations

import statistics
from collections import deque

from tether.clock import Clock, MonotonicClock
from tether.timing import PIPELINE_METER_WINDOW_S

MIN_SPAN_S = 0.5  # a rate over less time than this is noise


class PipelineMeter:
    def __init__(self, clock: Clock | None = None, window_s: float = PIPELINE_METER_WINDOW_S):
        self._clock = clock or MonotonicClock()
        self._window_s = window_s
        self._done: deque[tuple[float, float]] = deque()  # (when, seconds it took)
        self._since = self._clock.now()  # counting since (a younger window is shorter)

    def add(self, took_s: float) -> None:
        now = self._clock.now()
        self._done.append((now, took_s))
        self._trim(now)

    def reset(self) -> None:
        """Another pipeline runs now: the old one's pace says nothing of it."""
        self._done.clear()
        self._since = self._clock.now()

    def _trim(self, now: float) -> None:
        while self._done and now - self._done[0][0] > self._window_s:
            self._done.popleft()

    def fps(self) -> float | None:
        now = self._clock.now()
        self._trim(now)
        if not self._done:
            return None
        span = max(min(self._window_s, now - self._since), MIN_SPAN_S)
        return round(len(self._done) / span, 1)

    def p50_ms(self) -> float | None:
        self._trim(self._clock.now())
        if not self._done:
            return None
        return round(statistics.median(took for _, took in self._done) * 1000.0, 2)
