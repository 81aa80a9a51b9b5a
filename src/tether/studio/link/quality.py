"""How good a living link is: a level (good, fair, poor, bad) and the factor that limits
it (rtt, loss, bandwidth, fps, latency, worker, pipeline). Pure logic on samples the studio
already has; time comes from a Clock.

Each measured factor gets a level from its thresholds; the link's level is the worst
of them and the factor is the one that set it. Hysteresis, so a badge does not
flicker: a worse level shows once it has lasted ``degrade_s``, a better one only once
it has lasted ``improve_s``; and a factor must clear its threshold by a margin before
it counts as better.

A slow model is not a bad link: when the pipeline's own time per frame is what caps
the frames coming back (or it is loading), the factor is ``pipeline``, in place of
``fps`` and ``worker``, and it makes the level at worst ``fair``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from tether.clock import Clock


class Level(IntEnum):
    GOOD = 0
    FAIR = 1
    POOR = 2
    BAD = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class Factor(StrEnum):
    RTT = "rtt"
    LOSS = "loss"
    BANDWIDTH = "bandwidth"
    FPS = "fps"
    LATENCY = "latency"
    WORKER = "worker"
    PIPELINE = "pipeline"  # the model's own pace (or its load) caps the frame rate


@dataclass(frozen=True)
class Sample:
    """What is known about the link now; None = not measured."""

    rtt_ms: float | None = None
    loss: float | None = None  # fraction of packets lost, 0..1
    bitrate_kbps: float | None = None  # what the link can carry, where it holds video back
    fps_in: float | None = None  # frames going to the worker
    fps_out: float | None = None  # processed frames coming back
    latency_ms: float | None = None  # glass to glass, from the frames themselves
    worker_ms: float | None = None  # the worker's time per frame
    pixels: int | None = None  # the largest picture the stream carried
    pipeline_loading: bool = False  # the worker says its pipeline is loading a model


# Upper bounds for good, fair, poor (bad beyond); for bandwidth and fps lower bounds.
THRESHOLDS: dict[Factor, tuple[float, float, float]] = {
    Factor.RTT: (150.0, 300.0, 600.0),
    # Up to 2% the receivers' retransmission requests repair nearly all of it.
    Factor.LOSS: (0.02, 0.05, 0.15),
    Factor.LATENCY: (250.0, 500.0, 1000.0),
    Factor.WORKER: (0.5, 0.9, 1.5),  # share of the frame interval the worker needs
    # kbit/s a path's estimators allow (payload, so below a cap on the wire), for 512x512
    # (a smaller picture needs less: see REFERENCE_PIXELS): smooth from about 400; a
    # 250 kbit path (about 200) and a 150 kbit one (about 120) carry a quarter of the
    # picture at full frame rate; below 100 little is left of it.
    Factor.BANDWIDTH: (400.0, 250.0, 100.0),
    Factor.FPS: (0.9, 0.6, 0.3),  # processed frames back per frame sent
    Factor.PIPELINE: (0.9, 0.6, 0.3),  # the same ratio, where the model sets it
}
HIGHER_IS_BETTER = {Factor.BANDWIDTH, Factor.FPS, Factor.PIPELINE}
RATIOS = {Factor.FPS, Factor.PIPELINE}  # top out at 1
# The pipeline is busy this share of each second making the frames that come back: it,
# not the path, sets their rate (a model at 150 ms a frame sends about 6.5 a second).
PIPELINE_BUSY = 0.8
# What a slow model makes of the link at worst: the picture is slower, the link is fine.
PIPELINE_WORST = Level.FAIR
REFERENCE_PIXELS = 512 * 512  # the picture the bandwidth bounds are for
MARGIN = 0.1  # a factor improves only when 10% inside its better band


def _values(sample: Sample) -> dict[Factor, float]:
    out: dict[Factor, float] = {}
    if sample.rtt_ms is not None:
        out[Factor.RTT] = sample.rtt_ms
    if sample.loss is not None:
        out[Factor.LOSS] = sample.loss
    if sample.latency_ms is not None:
        # The link's share of the delay: a model's own time per frame is the model's
        # (150 ms a frame made a healthy path read 'fair: latency' a fifth of the time).
        model_ms = sample.worker_ms if pipeline_bound(sample) and sample.worker_ms else 0.0
        out[Factor.LATENCY] = max(sample.latency_ms - model_ms, 0.0)
    if sample.bitrate_kbps is not None:
        scale = REFERENCE_PIXELS / sample.pixels if sample.pixels else 1.0
        out[Factor.BANDWIDTH] = sample.bitrate_kbps * scale  # as if for the reference
    if sample.fps_in and sample.fps_out is not None and sample.fps_in >= 1.0:
        ratio = min(sample.fps_out / sample.fps_in, 1.0)
        if pipeline_bound(sample):
            out[Factor.PIPELINE] = 0.0 if sample.pipeline_loading else ratio
        else:
            out[Factor.FPS] = ratio
            if sample.worker_ms is not None:
                out[Factor.WORKER] = sample.worker_ms / (1000.0 / sample.fps_in)
    return out


def pipeline_bound(sample: Sample) -> bool:
    """Fewer frames come back than go out, at the pipeline's own pace (or it is loading
    a model). A pipeline that keeps up, however long each frame takes it, caps nothing."""
    if sample.pipeline_loading:
        return True
    if sample.worker_ms is None or sample.fps_out is None or not sample.fps_in:
        return False
    capped = sample.fps_out < THRESHOLDS[Factor.FPS][0] * sample.fps_in
    return capped and sample.worker_ms * sample.fps_out / 1000.0 >= PIPELINE_BUSY


def grade(factor: Factor, value: float, margin: float = 0.0) -> Level:
    """The level of one factor; ``margin`` makes the bands stricter (for improving)."""
    level = _grade(factor, value, margin)
    return min(level, PIPELINE_WORST) if factor == Factor.PIPELINE else level


def _grade(factor: Factor, value: float, margin: float) -> Level:
    bounds = THRESHOLDS[factor]
    for level, bound in zip((Level.GOOD, Level.FAIR, Level.POOR), bounds, strict=True):
        if factor in RATIOS:
            # A ratio that tops out at 1: the margin is a share of what is missing
            # (10% of 0.9 would ask for 0.99, which a healthy link's jitter never shows).
            if value >= bound + (1 - bound) * margin:
                return level
        elif factor in HIGHER_IS_BETTER:
            if value >= bound * (1 + margin):
                return level
        elif value <= bound * (1 - margin):
            return level
    return Level.BAD


class LargestPicture:
    """The largest picture a stream has carried: what its bandwidth is judged against (a
    path that made the sender shrink its picture must not then pass for good enough)."""

    def __init__(self) -> None:
        self._stream: object = None
        self._pixels = 0

    def see(self, stream: object, size: tuple[int, int] | None) -> int | None:
        if stream is not self._stream:
            self._stream, self._pixels = stream, 0
        if size is not None:
            self._pixels = max(self._pixels, size[0] * size[1])
        return self._pixels or None


@dataclass(frozen=True)
class Quality:
    level: Level
    factor: Factor | None  # None while nothing limits it (or nothing is measured)

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level.label, "factor": self.factor.value if self.factor else None}


GOOD = Quality(Level.GOOD, None)


class QualityMeter:
    def __init__(self, clock: Clock, degrade_s: float = 1.0, improve_s: float = 5.0) -> None:
        self.clock = clock
        self.degrade_s, self.improve_s = degrade_s, improve_s
        self.current = GOOD
        self._pending: Quality | None = None  # a different quality, and since when
        self._pending_since = 0.0

    def raw(self, sample: Sample, strict: bool = False) -> Quality:
        """The quality this one sample says, without hysteresis."""
        worst = GOOD
        for factor, value in _values(sample).items():
            # Judging an improvement, the factor now limiting us must clear the margin.
            margin = MARGIN if strict and factor == self.current.factor else 0.0
            level = grade(factor, value, margin)
            if level > worst.level:
                worst = Quality(level, factor)
        return worst

    def update(self, sample: Sample) -> Quality:
        now = self.clock.now()
        seen = self.raw(sample, strict=True)
        if seen.level == self.current.level:
            self._pending = None
            if seen.factor != self.current.factor and seen.level > Level.GOOD:
                self.current = seen  # same level, another cause: say the true one
            return self.current
        worse = seen.level > self.current.level
        if self._pending is None or (self._pending.level > self.current.level) != worse:
            self._pending, self._pending_since = seen, now
        elif worse:
            self._pending = seen
        elif seen.level > self._pending.level:
            # Better all along, though not equally: the wait goes on, and what shows
            # when it is over is the worst of it (a factor that comes and goes, such
            # as bandwidth, does not restart the wait each time).
            self._pending = seen
        wait = self.degrade_s if worse else self.improve_s
        if now - self._pending_since >= wait:
            self.current, self._pending = self._pending, None
        return self.current

    def reset(self) -> None:
        """A new connection: forget the old one's quality."""
        self.current, self._pending = GOOD, None
