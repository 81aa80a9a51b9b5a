"""The media round trip's latency, measured from the frames themselves.

Three things are known about a frame, each keyed by an RTP timestamp as it was on
the wire (``tether.rtc``): when we sent an input frame, when a processed frame came
back, and - reported by the worker - which input frame each processed frame was made
from and how long its pipeline took. Where all three meet, the round trip of that
frame is measured: from our sending it to its result arriving, through both network
legs, the worker's decoding, queueing, pipeline and encoding. The report and the
frame it is about may come in either order. Everything is bounded: what never
matches (a lost frame or report) is forgotten.
"""

from __future__ import annotations

import statistics
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TypeVar

V = TypeVar("V")

# Input frames remembered (several seconds at 60 fps: a slow link still matches).
SENT_KEPT = 512
# Processed frames or reports waiting for their other half.
PENDING_KEPT = 128
# Measurements kept for the median.
SAMPLES_KEPT = 128


def _remember(table: OrderedDict[int, V], key: int, value: V, limit: int) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)


class MediaLatency:
    """Matches what one peer connection sent, got back and was told. ``now`` gives
    seconds on the clock both the sends and the arrivals are measured with."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._sent: OrderedDict[int, float] = OrderedDict()  # input frame -> sent at
        self._arrived: OrderedDict[int, float] = OrderedDict()  # processed -> arrived at
        self._made_from: OrderedDict[int, int] = OrderedDict()  # processed -> input
        self._latency: deque[tuple[float, float]] = deque(maxlen=SAMPLES_KEPT)  # (at, ms)
        self._worker: deque[tuple[float, float]] = deque(maxlen=SAMPLES_KEPT)
        self.matched = 0

    def sent(self, rtp_timestamp: int) -> None:
        _remember(self._sent, rtp_timestamp, self._now(), SENT_KEPT)

    def arrived(self, rtp_timestamp: int) -> None:
        now = self._now()
        source = self._made_from.pop(rtp_timestamp, None)
        if source is None:
            _remember(self._arrived, rtp_timestamp, now, PENDING_KEPT)
        else:
            self._match(source, now)

    def reported(self, source: int, output: int, worker_ms: float) -> None:
        """The worker made its frame ``output`` from our frame ``source``."""
        self._worker.append((self._now(), worker_ms))
        arrived_at = self._arrived.pop(output, None)
        if arrived_at is None:
            _remember(self._made_from, output, source, PENDING_KEPT)
        else:
            self._match(source, arrived_at)

    def _match(self, source: int, arrived_at: float) -> None:
        sent_at = self._sent.get(source)
        if sent_at is None or arrived_at < sent_at:
            return  # sent before we remember, or not ours
        self.matched += 1
        self._latency.append((arrived_at, (arrived_at - sent_at) * 1000.0))

    def latency_ms(self, window_s: float) -> float | None:
        """The median round trip of frames that came back in the last ``window_s``."""
        return self._median(self._latency, window_s)

    def worker_ms(self, window_s: float) -> float | None:
        """The median time the worker's pipeline took per frame, lately."""
        return self._median(self._worker, window_s)

    def _median(self, samples: deque[tuple[float, float]], window_s: float) -> float | None:
        since = self._now() - window_s
        recent = [value for at, value in samples if at >= since]
        return statistics.median(recent) if recent else None
