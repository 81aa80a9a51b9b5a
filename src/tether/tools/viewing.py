"""What a viewer sees, from a measuring client's record of the frames it got back: the
one place the benchmarks and the lab tests compute it.

A frame number counts once, at its first arrival: a repeat of a picture already shown
is not a new picture ("distinct"), however many times the path carries it. Per window
(5 s by default) and for the whole span:

- ``distinct_fps``: new frame numbers per second; ``fps``: frames received per second;
- ``full_size``: the share of received frames at the source's size; ``sizes``: the
  sizes seen, ``"WxH": count``;
- ``rtt_p50_ms`` / ``rtt_p95_ms``: from a frame's capture to its first arrival back
  (through the worker and back: the round trip a viewer waits);
- ``freezes``: gaps longer than ``freeze_s`` between one new picture and the next;
  ``longest_gap_ms``: the longest gap, open ones included (a freeze is counted in the
  window where it ends; the span's end closes one still open).

The summary adds ``late``: the same figures over the span after ``late_after_s``
(what a stream settles to once its ramp is over)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

WINDOW_S = 5.0
FREEZE_S = 0.2
LATE_AFTER_S = 10.0


@dataclass(frozen=True)
class Arrival:
    """One frame back at the client: when, which frame number, at what size."""

    at: float
    frame_id: int
    width: int
    height: int


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


@dataclass(frozen=True)
class _Span:
    """The arrivals of one stretch of time, and the first arrivals among them."""

    t0: float
    t1: float
    frames: list[Arrival]
    new: list[Arrival]  # first arrivals of a frame number, in order
    previous_new: float | None  # the last first arrival before t0 (a gap may span t0)

    def figures(
        self,
        sent_at: Mapping[int, float],
        full: tuple[int, int],
        freeze_s: float,
        close_open: bool = True,
    ) -> dict:
        length = max(self.t1 - self.t0, 1e-9)
        sizes: dict[str, int] = {}
        for a in self.frames:
            key = f"{a.width}x{a.height}"
            sizes[key] = sizes.get(key, 0) + 1
        at_full = sum(1 for a in self.frames if (a.width, a.height) == full)
        rtts = [
            (a.at - sent_at[a.frame_id]) * 1000
            for a in self.new
            if a.frame_id in sent_at and 0 <= a.at - sent_at[a.frame_id] < 30
        ]
        gaps, still_open = self._gaps()
        longest = max([*gaps, still_open or 0.0]) if gaps or still_open else None
        if close_open and still_open:
            gaps.append(still_open)
        return {
            "distinct_fps": round(len(self.new) / length, 2),
            "fps": round(len(self.frames) / length, 2),
            "full_size": round(at_full / len(self.frames), 3) if self.frames else None,
            "sizes": dict(sorted(sizes.items(), key=lambda kv: -kv[1])),
            "rtt_p50_ms": _pct(rtts, 0.5),
            "rtt_p95_ms": _pct(rtts, 0.95),
            "freezes": sum(1 for g in gaps if g > freeze_s),
            "longest_gap_ms": None if longest is None else round(longest * 1000),
        }

    def _gaps(self) -> tuple[list[float], float]:
        """The gaps that end in the span, and the one still open at its end."""
        times = [a.at for a in self.new]
        if self.previous_new is not None:
            times.insert(0, self.previous_new)
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        still_open = self.t1 - (times[-1] if times else self.t0)
        return gaps, still_open


def _span(arrivals: list[Arrival], first: set[int], t0: float, t1: float) -> _Span:
    """``first``: indexes (into ``arrivals``) of each frame number's first arrival."""
    frames, new, previous = [], [], None
    for index, a in enumerate(arrivals):
        if a.at < t0:
            if index in first:
                previous = a.at
            continue
        if a.at >= t1:  # half-open: an arrival on a boundary is in the next window
            break
        frames.append(a)
        if index in first:
            new.append(a)
    return _Span(t0, t1, frames, new, previous)


def report(
    arrivals: Iterable[Arrival],
    sent_at: Mapping[int, float],
    full: tuple[int, int],
    t0: float,
    t1: float,
    window_s: float = WINDOW_S,
    freeze_s: float = FREEZE_S,
    late_after_s: float = LATE_AFTER_S,
) -> dict:
    """``{"windows": [...], "summary": {...}}`` for the arrivals in ``[t0, t1)``; each
    window carries ``t`` (its start, seconds after ``t0``). Arrivals in time order;
    spans are half-open, ``[start, end)``."""
    arrivals = list(arrivals)
    seen: set[int] = set()
    first: set[int] = set()
    for index, a in enumerate(arrivals):
        if a.frame_id not in seen:
            seen.add(a.frame_id)
            first.add(index)
    windows = []
    start = t0
    while start < t1 - 1e-6:
        end = min(start + window_s, t1)
        # A freeze still open at a window's end is counted in the window where it ends.
        span = _span(arrivals, first, start, end)
        figures = span.figures(sent_at, full, freeze_s, close_open=end >= t1)
        windows.append({"t": round(start - t0, 1), **figures})
        start = end
    summary = _span(arrivals, first, t0, t1).figures(sent_at, full, freeze_s)
    summary["seconds"] = round(t1 - t0, 1)
    if t1 - t0 > late_after_s:
        late = _span(arrivals, first, t0 + late_after_s, t1).figures(sent_at, full, freeze_s)
        summary["late"] = {"after_s": late_after_s, **late}
    return {"windows": windows, "summary": summary}
