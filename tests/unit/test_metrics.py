"""The studio's metrics: prometheus_client output that its own parser reads, with the
names, types, labels and values the studio has always exposed, and no state shared
between two apps in one process."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tether.config import Fallback
from tether.studio.cloud_status import CloudStatus, StudioSide, build_status
from tether.studio.link import LinkState, LinkStatus
from tether.studio.link.quality import Factor, Level, Quality
from tether.studio.metrics import metrics_registry, render_metrics

ALWAYS = {
    # family: type (a counter's sample is the family's name + _total)
    "tether_link_state": "gauge",
    "tether_webrtc_connected": "gauge",
    "tether_frames_sent": "counter",
    "tether_frames_received": "counter",
    "tether_fps_out": "gauge",
    "tether_outages": "counter",
    "tether_reconnects": "counter",
    "tether_params_version": "gauge",
    "tether_params_acked_version": "gauge",
}
MEASURED = {
    "tether_link_quality_level": "gauge",
    "tether_link_quality_limited_by": "gauge",
    "tether_heartbeat_rtt_ms": "gauge",
    "tether_link_rtt_seconds": "gauge",
    "tether_link_media_loss_ratio": "gauge",
    "tether_link_bandwidth_bytes_per_second": "gauge",
    "tether_link_fps_ratio": "gauge",
    "tether_link_media_latency_seconds": "gauge",
    "tether_worker_frame_seconds": "gauge",
}


def _status(
    measured: bool, frames: int = 120, state: LinkState = LinkState.CONNECTED
) -> CloudStatus:
    value = (lambda v: v) if measured else (lambda v: None)
    link = LinkStatus(
        state=state, error=None, signaling_up=True, connect_stage=None,
        worker_url="http://w:8765", connection_id="c", webrtc_connected=measured,
        webrtc_error=None, attempt=0, tries=4, next_retry_in_s=None, probing=False,
        last_outage_s=None, outage_for_s=None, recent_outages_s=(), outages=2, reconnects=1,
        session_id="s", streaming=True, media_healthy=measured, output_live=measured,
        params_version=3, params_acked_version=2, params_error=None, pipeline_error=None,
        heartbeat_rtt_ms=value(42.5), events=(), media_loss=value(0.0125),
        bandwidth_kbps=value(800.0), bandwidth_limited=False, media_latency_ms=value(180.0),
        worker_ms=value(12.5),
    )  # fmt: skip
    side = StudioSide("st", Fallback.HOLD, None, False, None, frames, frames - 5, 30.0, 24.0)
    quality = Quality(Level.POOR, Factor.FPS) if measured else None
    return build_status(link, side, quality)


def _parsed(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def _values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_names_types_and_values_of_a_measured_link() -> None:
    text = render_metrics(metrics_registry(lambda: _status(measured=True)))
    families = _parsed(text)
    assert {name: f.type for name, f in families.items()} == {**ALWAYS, **MEASURED}
    values = _values(text)
    assert values[("tether_link_state", (("state", "connected"),))] == 1.0
    assert [values[("tether_link_state", (("state", s.value),))] for s in LinkState].count(1.0) == 1
    assert values[("tether_frames_sent_total", ())] == 120
    assert values[("tether_frames_received_total", ())] == 115
    assert values[("tether_outages_total", ())] == 2
    assert values[("tether_reconnects_total", ())] == 1
    assert values[("tether_params_version", ())] == 3
    assert values[("tether_params_acked_version", ())] == 2
    assert values[("tether_webrtc_connected", ())] == 1.0
    assert values[("tether_fps_out", ())] == 24.0
    assert values[("tether_link_quality_level", ())] == 2.0  # poor
    limited = {dict(k[1])["factor"]: v for k, v in values.items() if k[0].endswith("limited_by")}
    assert limited == {f.value: float(f == Factor.FPS) for f in Factor}
    assert values[("tether_heartbeat_rtt_ms", ())] == 42.5
    assert values[("tether_link_rtt_seconds", ())] == pytest.approx(0.0425)
    assert values[("tether_link_media_loss_ratio", ())] == 0.0125
    assert values[("tether_link_bandwidth_bytes_per_second", ())] == 100_000.0
    assert values[("tether_link_fps_ratio", ())] == 0.8
    assert values[("tether_link_media_latency_seconds", ())] == pytest.approx(0.18)
    assert values[("tether_worker_frame_seconds", ())] == pytest.approx(0.0125)


def test_what_is_not_measured_is_absent() -> None:
    text = render_metrics(metrics_registry(lambda: _status(measured=False)))
    # fps is measured by the studio itself: the ratio stays.
    assert set(_parsed(text)) == set(ALWAYS) | {"tether_link_fps_ratio"}
    assert 'tether_link_state{state="connected"} 1.0' in text
    assert "# TYPE tether_frames_sent_total counter" in text


def test_each_app_has_its_own_registry_read_at_each_scrape() -> None:
    reads: list[str] = []

    def reader(frames: int, state: LinkState):
        def read() -> CloudStatus:
            reads.append(state.value)
            return _status(measured=False, frames=frames, state=state)

        return read

    one = metrics_registry(reader(10, LinkState.CONNECTED))
    two = metrics_registry(reader(20, LinkState.FAILED))
    assert reads == []  # registering reads nothing
    first, second = render_metrics(one), render_metrics(two)
    assert reads == ["connected", "failed"]  # one status per scrape
    assert _values(first)[("tether_frames_sent_total", ())] == 10
    assert _values(second)[("tether_frames_sent_total", ())] == 20
    assert _values(second)[("tether_link_state", (("state", "failed"),))] == 1.0
    # Nothing went into prometheus_client's process-wide registry.
    assert "tether_link_state" not in {m.name for m in REGISTRY.collect()}
