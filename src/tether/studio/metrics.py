"""The studio's status as Prometheus metrics (``GET /metrics``).

Each app has its own registry holding one collector, which reads one CloudStatus per
scrape: nothing is kept between scrapes, and two apps in one process share nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from tether.studio.cloud_status import CloudStatus
from tether.studio.link import LinkState
from tether.studio.link.quality import Factor, Level

# What Prometheus' text format 0.0.4 is served as (unchanged since the first release).
CONTENT_TYPE = "text/plain; version=0.0.4"
_LEVELS = [level.label for level in Level]


class StatusCollector:
    """Every metric, from one status read at each scrape."""

    def __init__(self, read_status: Callable[[], CloudStatus]) -> None:
        self._read_status = read_status

    def collect(self) -> Iterator[Metric]:
        return iter(status_metrics(self._read_status()))


def metrics_registry(read_status: Callable[[], CloudStatus]) -> CollectorRegistry:
    """A registry of the app's own (never prometheus_client's process-wide one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(read_status))
    return registry


def render_metrics(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"tether_{name}", help_text, value=value)


def _counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"tether_{name}", help_text, value=value)


def status_metrics(status: CloudStatus) -> list[Metric]:
    stats = status.stats
    state = GaugeMetricFamily(
        "tether_link_state", "1 for the link's current state.", labels=["state"]
    )
    for s in LinkState:
        state.add_metric([s.value], float(status.state == s))
    metrics: list[Metric] = [
        state,
        _gauge("webrtc_connected", "Worker peer connection up.", float(status.webrtc_connected)),
        _counter("frames_sent_total", "Frames sent towards the worker.", stats.frames_sent),
        _counter("frames_received_total", "Processed frames received.", stats.frames_received),
        _gauge("fps_out", "Processed frames per second.", stats.fps_out),
        _counter("outages_total", "Link outages.", stats.outages),
        _counter("reconnects_total", "Successful reconnects.", stats.reconnects),
        _gauge("params_version", "Latest parameter version.", status.params_version),
        _gauge("params_acked_version", "Version the worker applied.", status.params_acked_version),
    ]
    metrics += _quality_metrics(status)
    if stats.heartbeat_rtt_ms is not None:
        metrics.append(_gauge("heartbeat_rtt_ms", "Heartbeat round trip.", stats.heartbeat_rtt_ms))
    metrics += [
        _gauge(name, text, value) for name, text, value in _factors(status) if value is not None
    ]
    return metrics


def _quality_metrics(status: CloudStatus) -> list[Metric]:
    quality = status.quality
    if quality is None:
        return []
    level = _gauge(
        "link_quality_level",
        "Link quality while connected: 0 good, 1 fair, 2 poor, 3 bad.",
        float(_LEVELS.index(quality.level)),
    )
    limited = GaugeMetricFamily(
        "tether_link_quality_limited_by",
        "1 for the factor that limits the link's quality now.",
        labels=["factor"],
    )
    for f in Factor:
        limited.add_metric([f.value], float(quality.factor == f))
    return [level, limited]


def _factors(status: CloudStatus) -> list[tuple[str, str, float | None]]:
    """Each factor quality weighs, as measured, in base units (absent: not measured)."""
    stats = status.stats

    def scaled(value: float | None, factor: float) -> float | None:
        return None if value is None else round(value * factor, 6)

    fps_in, fps_out = stats.fps_in, stats.fps_out
    return [
        (
            "link_rtt_seconds",
            "Heartbeat round trip to the worker.",
            scaled(stats.heartbeat_rtt_ms, 1e-3),
        ),
        (
            "link_media_loss_ratio",
            "Media packets lost on the worker path, worse direction, last few seconds.",
            scaled(stats.media_loss, 1.0),
        ),
        (
            "link_bandwidth_bytes_per_second",
            "What the worker path can carry now (the lower direction's estimate).",
            scaled(stats.bandwidth_kbps, 1000 / 8),
        ),
        (
            "link_fps_ratio",
            "Processed frames back per frame sent to the worker.",
            round(min(fps_out / fps_in, 1.0), 4) if fps_in >= 1.0 else None,
        ),
        (
            "link_media_latency_seconds",
            "A frame to the worker and its result back, measured from the frames.",
            scaled(stats.media_latency_ms, 1e-3),
        ),
        (
            "worker_frame_seconds",
            "The worker pipeline's time a frame.",
            scaled(stats.worker_ms, 1e-3),
        ),
    ]
