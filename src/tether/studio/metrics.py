"""Prometheus text exposition of the studio's status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.studio.link import LinkState
from tether.studio.link.quality import Factor, Level

if TYPE_CHECKING:
    from tether.studio.studio import Studio


def render_metrics(studio: Studio) -> str:
    status = studio.status()
    stats = status["stats"]
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP tether_{name} {help_text}")
        lines.append(f"# TYPE tether_{name} {kind}")
        for labels, value in samples:
            lines.append(f"tether_{name}{labels} {value}")

    metric(
        "link_state",
        "gauge",
        "1 for the link's current state.",
        [(f'{{state="{s.value}"}}', float(status["state"] == s.value)) for s in LinkState],
    )
    metric(
        "webrtc_connected",
        "gauge",
        "Worker peer connection up.",
        [("", float(status["webrtc_connected"]))],
    )
    metric(
        "frames_sent_total",
        "counter",
        "Frames sent towards the worker.",
        [("", stats["frames_sent"])],
    )
    metric(
        "frames_received_total",
        "counter",
        "Processed frames received.",
        [("", stats["frames_received"])],
    )
    metric("fps_out", "gauge", "Processed frames per second.", [("", stats["fps_out"])])
    metric("outages_total", "counter", "Link outages.", [("", stats["outages"])])
    metric("reconnects_total", "counter", "Successful reconnects.", [("", stats["reconnects"])])
    metric("params_version", "gauge", "Latest parameter version.", [("", status["params_version"])])
    metric(
        "params_acked_version",
        "gauge",
        "Version the worker applied.",
        [("", status["params_acked_version"])],
    )
    quality = status.get("quality")
    if quality is not None:
        levels = [level.label for level in Level]
        metric(
            "link_quality_level",
            "gauge",
            "Link quality while connected: 0 good, 1 fair, 2 poor, 3 bad.",
            [("", float(levels.index(quality["level"])))],
        )
        metric(
            "link_quality_limited_by",
            "gauge",
            "1 for the factor that limits the link's quality now.",
            [(f'{{factor="{f.value}"}}', float(quality["factor"] == f.value)) for f in Factor],
        )
    rtt = stats["heartbeat_rtt_ms"]
    if rtt is not None:
        metric("heartbeat_rtt_ms", "gauge", "Heartbeat round trip.", [("", rtt)])
    for name, help_text, value in _factors(status):
        if value is not None:
            metric(name, "gauge", help_text, [("", value)])
    return "\n".join(lines) + "\n"


def _factors(status: dict[str, Any]) -> list[tuple[str, str, float | None]]:
    """Each factor quality weighs, as measured, in base units (absent: not measured)."""
    stats = status["stats"]

    def scaled(key: str, factor: float) -> float | None:
        value = stats.get(key, status.get(key))  # a measure another part may not have
        return None if value is None else round(value * factor, 6)

    fps_in, fps_out = stats.get("fps_in") or 0.0, stats.get("fps_out") or 0.0
    return [
        (
            "link_rtt_seconds",
            "Heartbeat round trip to the worker.",
            scaled("heartbeat_rtt_ms", 1e-3),
        ),
        (
            "link_media_loss_ratio",
            "Media packets lost on the worker path, worse direction, last few seconds.",
            scaled("media_loss", 1.0),
        ),
        (
            "link_bandwidth_bytes_per_second",
            "What the worker path can carry now (the lower direction's estimate).",
            scaled("bandwidth_kbps", 1000 / 8),
        ),
        (
            "link_fps_ratio",
            "Processed frames back per frame sent to the worker.",
            round(min(fps_out / fps_in, 1.0), 4) if fps_in >= 1.0 else None,
        ),
        (
            "link_media_latency_seconds",
            "A frame to the worker and its result back, measured from the frames.",
            scaled("media_latency_ms", 1e-3),
        ),
        ("worker_frame_seconds", "The worker pipeline's time a frame.", scaled("worker_ms", 1e-3)),
    ]
