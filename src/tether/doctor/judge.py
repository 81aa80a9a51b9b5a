"""What the media check's numbers mean: each factor graded against the thresholds the
link's quality uses (``tether.studio.link.quality.THRESHOLDS``), the worst one named,
and one fix for it. Pure logic: unit tests feed it numbers.

- good everywhere: ok; fair or poor somewhere: warn (works, degraded); bad: fail.
- Bandwidth is judged as the link judges it, for the reference picture (512x512): the
  question is whether this path carries a stream, not the doctor's small test picture.
- A path short of bandwidth shows it in other factors too: its queue drops packets
  (loss) and holds them (RTT, frame round trip), and the encoder halves its frame rate
  on purpose. While bandwidth is below good, those factors count at most as bad as
  bandwidth does, and bandwidth is named: more bandwidth is the one fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.doctor.report import Check
from tether.studio.link.quality import THRESHOLDS, Factor, Level, grade

NAME = "media"
# Among equally bad factors, the cause before the symptom.
ORDER = (Factor.BANDWIDTH, Factor.LOSS, Factor.RTT, Factor.LATENCY, Factor.FPS)

SYMPTOMS_OF_A_NARROW_PATH = (Factor.LOSS, Factor.RTT, Factor.LATENCY, Factor.FPS)

FIXES = {
    Factor.BANDWIDTH: (
        "the path is narrow: use a faster uplink (wired rather than Wi-Fi, no other "
        "uploads meanwhile), a worker nearer to you, or a smaller picture"
    ),
    Factor.LOSS: (
        "packets are lost on the way: use a wired connection rather than Wi-Fi, or a "
        "worker nearer to you; a congested or lossy VPN also loses packets"
    ),
    Factor.RTT: "the worker is far away on the network: pick a worker in a region nearer to you",
    Factor.LATENCY: (
        "frames take long to come back: pick a worker nearer to you, or a lighter pipeline"
    ),
    Factor.FPS: (
        "fewer pictures come back than go out: check the worker's load (CPU/GPU) and this "
        "machine's, and the pipeline's time per frame"
    ),
}
UNITS = {
    Factor.BANDWIDTH: "kbit/s",
    Factor.LOSS: "",
    Factor.RTT: "ms",
    Factor.LATENCY: "ms",
    Factor.FPS: "",
}


@dataclass(frozen=True)
class MediaNumbers:
    seconds: float
    fps_sent: float
    fps_distinct: float  # distinct pictures back per second
    width: int | None
    height: int | None
    rtt_p50_ms: float | None  # heartbeat round trip (the network)
    rtt_p95_ms: float | None
    round_trip_p50_ms: float | None  # a frame there, through the pipeline, and back
    round_trip_p95_ms: float | None
    loss_down: float | None  # the worker's video, as we received it
    loss_up: float | None  # ours, as the worker's receiver reports it
    down_kbps: float | None  # our receiver's estimate for the worker's video
    up_kbps: float | None  # the worker's estimate for our video (our encoder follows it)

    def as_numbers(self) -> dict[str, Any]:
        def r(value: float | None, digits: int = 1) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "seconds": r(self.seconds),
            "fps_sent": r(self.fps_sent),
            "fps_distinct": r(self.fps_distinct),
            "resolution": f"{self.width}x{self.height}" if self.width else None,
            "rtt_p50_ms": r(self.rtt_p50_ms),
            "rtt_p95_ms": r(self.rtt_p95_ms),
            "round_trip_p50_ms": r(self.round_trip_p50_ms),
            "round_trip_p95_ms": r(self.round_trip_p95_ms),
            "loss_down": r(self.loss_down, 4),
            "loss_up": r(self.loss_up, 4),
            "down_kbps": r(self.down_kbps, 0),
            "up_kbps": r(self.up_kbps, 0),
        }


def factor_values(m: MediaNumbers) -> dict[Factor, float]:
    values: dict[Factor, float] = {}
    if m.rtt_p95_ms is not None:
        values[Factor.RTT] = m.rtt_p50_ms or m.rtt_p95_ms
    losses = [x for x in (m.loss_down, m.loss_up) if x is not None]
    if losses:
        values[Factor.LOSS] = max(losses)
    if m.round_trip_p50_ms is not None:
        values[Factor.LATENCY] = m.round_trip_p50_ms
    rates = [x for x in (m.down_kbps, m.up_kbps) if x is not None]
    if rates:
        values[Factor.BANDWIDTH] = min(rates)
    if m.fps_sent >= 1.0:
        values[Factor.FPS] = min(m.fps_distinct / m.fps_sent, 1.0)
    return values


def grades(m: MediaNumbers) -> dict[Factor, Level]:
    levels = {f: grade(f, v) for f, v in factor_values(m).items()}
    narrow = levels.get(Factor.BANDWIDTH, Level.GOOD)
    if narrow > Level.GOOD:
        for factor in SYMPTOMS_OF_A_NARROW_PATH:
            if factor in levels:
                levels[factor] = min(levels[factor], narrow)
    return levels


def summary(m: MediaNumbers) -> str:
    parts = [f"{m.fps_distinct:.1f} of {m.fps_sent:.1f} fps back"]
    if m.width:
        parts.append(f"at {m.width}x{m.height}")
    if m.rtt_p50_ms is not None:
        parts.append(f"RTT p50 {m.rtt_p50_ms:.0f} / p95 {m.rtt_p95_ms:.0f} ms")
    if m.round_trip_p50_ms is not None:
        parts.append(
            f"frame round trip p50 {m.round_trip_p50_ms:.0f} / p95 {m.round_trip_p95_ms:.0f} ms"
        )
    losses = [f"{x * 100:.1f}%" if x is not None else "?" for x in (m.loss_down, m.loss_up)]
    parts.append(f"loss {losses[1]} up / {losses[0]} down")
    rates = [f"{x:.0f}" if x is not None else "?" for x in (m.up_kbps, m.down_kbps)]
    parts.append(f"bandwidth {rates[0]} up / {rates[1]} down kbit/s")
    return ", ".join(parts)


def _described(factor: Factor, value: float, level: Level) -> str:
    bounds = THRESHOLDS[factor]
    if factor == Factor.LOSS:
        shown = f"{value * 100:.1f}% loss (good up to {bounds[0] * 100:.0f}%)"
    elif factor == Factor.FPS:
        shown = f"{value * 100:.0f}% of the frames back (good from {bounds[0] * 100:.0f}%)"
    elif factor == Factor.BANDWIDTH:
        shown = f"bandwidth {value:.0f} kbit/s (good from {bounds[0]:.0f})"
    else:
        label = "RTT" if factor == Factor.RTT else "frame round trip"
        shown = f"{label} {value:.0f} ms (good up to {bounds[0]:.0f})"
    return f"{level.label}: {shown}"


def judge_media(m: MediaNumbers) -> Check:
    numbers = m.as_numbers()
    levels = grades(m)
    numbers["levels"] = {f.value: lv.label for f, lv in levels.items()}
    if m.fps_distinct <= 0:
        return Check.fail(
            NAME,
            f"no processed frames came back in {m.seconds:.0f} s ({m.fps_sent:.1f} fps sent)",
            FIXES[Factor.FPS],
            **numbers,
        )
    worst = max(levels.values(), default=Level.GOOD)
    if worst == Level.GOOD:
        return Check.ok(NAME, summary(m), **numbers)
    factor = next(f for f in ORDER if levels.get(f) == worst)
    numbers["limited_by"] = factor.value
    values = factor_values(m)
    detail = f"{_described(factor, values[factor], worst)}; {summary(m)}"
    make = Check.fail if worst == Level.BAD else Check.warn
    return make(NAME, detail, FIXES[factor], **numbers)
