"""Prometheus text exposition of the studio's status."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    return "\n".join(lines) + "\n"
