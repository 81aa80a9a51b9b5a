"""CloudStatus: its JSON is exactly the dict the studio built before it was typed (same
keys in the same order, same value types, same rounding), it reads back with
``model_validate`` (as ``tether status`` does), and it passes its published schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from tether.config import Fallback
from tether.protocol import PipelineState
from tether.studio.cloud_status import CloudStatus, StudioSide, build_status, status_schema
from tether.studio.fleet import WorkerInfo, WorkerState
from tether.studio.link import LinkEvent, LinkState, LinkStatus, Recovery
from tether.studio.link.events import EVENT_KINDS
from tether.studio.link.quality import Factor, Level, Quality


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def reference(link: LinkStatus, side: StudioSide, quality: Quality | None) -> dict[str, Any]:
    """The untyped dict the studio answered with before CloudStatus (``cloud_status`` in
    studio.py), reading the studio's own fields from ``side``: the shape to keep."""
    return {
        "state": link.state.value,
        "connected": link.signaling_up,
        "connecting": link.connecting,
        "error": link.error,
        "connect_stage": link.connect_stage,
        "worker_url": link.worker_url,
        "workers": list(link.workers),
        "connection_id": link.connection_id,
        "webrtc_connected": link.webrtc_connected,
        "webrtc_error": link.webrtc_error,
        "webrtc_reconnecting": link.state == LinkState.RECONNECTING,
        "reconnect_attempt": link.attempt if link.state == LinkState.RECONNECTING else 0,
        "reconnect_tries": link.tries,
        "next_retry_in_s": _round(link.next_retry_in_s),
        "failed_probing": link.probing,
        "recovery": link.recovery.value if link.recovery else None,
        "params_version": link.params_version,
        "params_acked_version": link.params_acked_version,
        "params_error": link.params_error,
        "pipeline_error": link.pipeline_error,
        "pipeline_state": None
        if link.pipeline_state is None
        else {
            "state": link.pipeline_state.state,
            "name": link.pipeline_state.pipeline,
            "stage": link.pipeline_state.stage,
            "elapsed_s": _round(link.pipeline_state.elapsed_s, 1),
            "progress": _round(link.pipeline_state.progress, 3),
            "running": link.pipeline_state.running,
            "loading": link.pipeline_state.pipeline
            if link.pipeline_state.state == "loading"
            else None,
            "error": link.pipeline_state.error,
            "note": link.pipeline_state.note,
        },
        "quality": quality.as_dict() if quality else None,
        "last_outage_s": _round(link.last_outage_s),
        "outage_for_s": _round(link.outage_for_s),
        "recent_outages_s": [round(o, 3) for o in link.recent_outages_s],
        "session_id": link.session_id,
        "stream_id": side.stream_id,
        "streaming": side.stream_id is not None,
        "incoming_stream_id": side.incoming_stream_id,
        "fallback": side.fallback.value,
        "debug": side.debug,
        "previous_stream_reason": side.previous_stream_reason,
        "fallback_active": side.fallback_active.value if side.fallback_active else None,
        "stats": {
            "frames_sent": side.frames_sent,
            "frames_received": side.frames_received,
            "fps_in": round(side.fps_in, 1),
            "fps_out": round(side.fps_out, 1),
            "heartbeat_rtt_ms": _round(link.heartbeat_rtt_ms, 2),
            "media_loss": _round(link.media_loss, 4),
            "bandwidth_kbps": _round(link.bandwidth_kbps, 1),
            "bandwidth_limited": link.bandwidth_limited,
            "media_latency_ms": _round(link.media_latency_ms, 1),
            "worker_ms": _round(link.worker_ms, 2),
            "pipeline_fps": _round(link.pipeline_fps, 1),
            "pipeline_ms": _round(link.pipeline_ms, 2),
            "outages": link.outages,
            "reconnects": link.reconnects,
            "upstream_fps": _round(link.upstream_fps, 1),
            "upstream_fps_limit": _round(link.upstream_fps_limit, 1),
        },
        "events": [e.as_dict() for e in link.events],
    }


floats = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)
some_float = st.none() | floats
counts = st.integers(min_value=0, max_value=10**9)
some_count = st.none() | counts
texts = st.text(max_size=12)
some_text = st.none() | texts
states = st.sampled_from(LinkState)

events = st.builds(
    LinkEvent,
    kind=st.sampled_from(EVENT_KINDS),
    old=states,
    new=states,
    reason=texts,
    at=floats,
    workers=st.none() | st.tuples(texts, texts),
)
# A fleet's rows as the link reports them: surveyed, or the active one not yet surveyed.
surveyed = st.builds(
    WorkerInfo,
    url=texts,
    state=st.sampled_from(WorkerState),
    sessions=some_count,
    max_sessions=some_count,
    error=some_text,
).map(WorkerInfo.as_dict)
unsurveyed = st.builds(
    lambda url: {"url": url, "sessions": None, "max_sessions": None, "state": "active"}, texts
)
links = st.builds(
    LinkStatus,
    state=states,
    error=some_text,
    signaling_up=st.booleans(),
    connect_stage=some_text,
    worker_url=some_text,
    connection_id=some_text,
    webrtc_connected=st.booleans(),
    webrtc_error=some_text,
    attempt=counts,
    tries=counts,
    next_retry_in_s=some_float,
    probing=st.booleans(),
    recovery=st.none() | st.sampled_from(Recovery),
    last_outage_s=some_float,
    outage_for_s=some_float,
    recent_outages_s=st.lists(floats, max_size=4).map(tuple),
    outages=counts,
    reconnects=counts,
    session_id=some_text,
    streaming=st.booleans(),
    media_healthy=st.booleans(),
    output_live=st.booleans(),
    params_version=counts,
    params_acked_version=counts,
    params_error=some_text,
    pipeline_error=some_text,
    heartbeat_rtt_ms=some_float,
    events=st.lists(events, max_size=4).map(tuple),
    workers=st.lists(surveyed | unsurveyed, max_size=3).map(tuple),
    media_loss=some_float,
    bandwidth_kbps=some_float,
    bandwidth_limited=st.booleans(),
    media_latency_ms=some_float,
    worker_ms=some_float,
    upstream_fps=some_float,
    upstream_fps_limit=some_float,
    pipeline_fps=some_float,
    pipeline_ms=some_float,
    pipeline_state=st.none()
    | st.builds(
        PipelineState,
        state=st.sampled_from(["loading", "ready", "error"]),
        pipeline=texts,
        stage=some_text,
        elapsed_s=st.none() | st.floats(min_value=0, max_value=1e6),
        progress=st.none() | st.floats(min_value=0, max_value=1),
        running=some_text,
        error=some_text,
        note=some_text,
    ),
)
sides = st.builds(
    StudioSide,
    stream_id=some_text,
    fallback=st.sampled_from(Fallback),
    fallback_active=st.none() | st.sampled_from(Fallback),
    debug=st.booleans(),
    previous_stream_reason=some_text,
    frames_sent=counts,
    frames_received=counts,
    fps_in=st.floats(min_value=0, max_value=240, allow_nan=False),
    fps_out=st.floats(min_value=0, max_value=240, allow_nan=False),
    incoming_stream_id=some_text,
)
qualities = st.none() | st.builds(
    Quality, st.sampled_from(Level), st.none() | st.sampled_from(Factor)
)

VALIDATOR = Draft202012Validator(status_schema())


@settings(max_examples=200, deadline=None)
@given(link=links, side=sides, quality=qualities)
def test_the_json_is_exactly_the_untyped_status(
    link: LinkStatus, side: StudioSide, quality: Quality | None
) -> None:
    status = build_status(link, side, quality)
    dumped = status.model_dump(mode="json")
    # As text: same keys in the same order, same numbers (5 is not 5.0), same rounding.
    assert json.dumps(dumped) == json.dumps(reference(link, side, quality))
    assert CloudStatus.model_validate(dumped) == status
    assert CloudStatus.model_validate_json(json.dumps(dumped)) == status
    VALIDATOR.validate(dumped)


def test_a_move_and_a_worker_not_yet_surveyed_keep_their_own_keys() -> None:
    link = LinkStatus(
        state=LinkState.CONNECTED, error=None, signaling_up=True, connect_stage=None,
        worker_url="http://b:8765", connection_id="c1", webrtc_connected=True,
        webrtc_error=None, attempt=0, tries=4, next_retry_in_s=None, probing=False,
        last_outage_s=0.12345, outage_for_s=None, recent_outages_s=(0.12345,), outages=1,
        reconnects=1, session_id="s1", streaming=True, media_healthy=True, output_live=True,
        params_version=2, params_acked_version=2, params_error=None, pipeline_error=None,
        heartbeat_rtt_ms=12.3456,
        events=(
            LinkEvent("connected", LinkState.CONNECTING, LinkState.CONNECTED, "up", at=1.5),
            LinkEvent("moved", LinkState.CONNECTED, LinkState.CONNECTED, "drain", 2.5,
                      ("http://a:8765", "http://b:8765")),
        ),
        workers=({"url": "http://b:8765", "sessions": None, "max_sessions": None,
                  "state": "active"},),
    )  # fmt: skip
    side = StudioSide("st1", Fallback.HOLD, None, False, None, 10, 9, 29.96, 30.04)
    status = build_status(link, side, Quality(Level.FAIR, Factor.RTT)).model_dump(mode="json")
    assert status["events"][1] == {
        "kind": "moved", "from": "http://a:8765", "to": "http://b:8765", "reason": "drain",
        "state": "connected", "at": 2.5,
    }  # fmt: skip
    assert "state" not in status["events"][0] and status["events"][0]["from"] == "connecting"
    assert status["workers"] == [
        {"url": "http://b:8765", "sessions": None, "max_sessions": None, "state": "active"}
    ]
    assert status["quality"] == {"level": "fair", "factor": "rtt"}
    assert status["stats"]["heartbeat_rtt_ms"] == 12.35 and status["last_outage_s"] == 0.123
    assert status["stats"]["fps_in"] == 30.0 and status["streaming"] is True


def test_the_status_is_frozen_and_refuses_unknown_keys() -> None:
    status = CloudStatus.model_validate(_idle())
    with pytest.raises(ValidationError):
        status.state = LinkState.FAILED  # type: ignore[misc]
    with pytest.raises(ValidationError):
        CloudStatus.model_validate({**_idle(), "surprise": 1})


def _idle() -> dict[str, Any]:
    link = LinkStatus(
        state=LinkState.IDLE, error=None, signaling_up=False, connect_stage=None,
        worker_url=None, connection_id=None, webrtc_connected=False, webrtc_error=None,
        attempt=0, tries=4, next_retry_in_s=None, probing=False, last_outage_s=None,
        outage_for_s=None, recent_outages_s=(), outages=0, reconnects=0, session_id=None,
        streaming=False, media_healthy=False, output_live=False, params_version=0,
        params_acked_version=0, params_error=None, pipeline_error=None,
        heartbeat_rtt_ms=None, events=(),
    )  # fmt: skip
    side = StudioSide(None, Fallback.BLACK, None, False, None, 0, 0, 0.0, 0.0)
    return build_status(link, side, None).model_dump(mode="json")


def test_tether_status_reads_the_same_model_and_refuses_another_shape() -> None:
    from tether.cli.status import StatusUnreadable, one_line, parse_status, render

    status = parse_status(json.dumps(_idle()))
    assert status == CloudStatus.model_validate(_idle())
    assert one_line(status) == "state=idle worker=- media=down params=v0/v0"
    assert render(status).title == "Tether link: [dim]idle[/]"
    with pytest.raises(StatusUnreadable, match="another version"):
        parse_status(json.dumps({**_idle(), "state": "sleeping"}))


def test_the_pipeline_state_in_words_and_in_tether_status() -> None:
    from tether.cli.status import one_line, render

    loading = PipelineState(state="loading", pipeline="sd", stage="first frame", elapsed_s=3.04)
    link = LinkStatus(**{**_LINK_FIELDS, "pipeline_state": loading})
    side = StudioSide("st1", Fallback.PASSTHROUGH, Fallback.PASSTHROUGH, False, None, 9, 0, 30, 0)
    status = build_status(link, side, Quality(Level.FAIR, Factor.PIPELINE))
    assert status.model_dump(mode="json")["pipeline_state"] == {
        "state": "loading", "name": "sd", "stage": "first frame", "elapsed_s": 3.0,
        "progress": None, "running": None, "loading": "sd", "error": None, "note": None,
    }  # fmt: skip
    assert status.quality is not None and status.quality.factor == "pipeline"
    assert status.pipeline_state is not None
    assert status.pipeline_state.words() == "loading sd: first frame, 3 s"
    rows = dict(zip(*(c._cells for c in render(status).columns), strict=True))
    assert rows["pipeline"] == "loading sd: first frame, 3 s"
    assert "pipeline='loading sd: first frame, 3 s'" in one_line(status)
    ready = PipelineState(state="ready", pipeline="sd", elapsed_s=8.0)
    status = build_status(LinkStatus(**{**_LINK_FIELDS, "pipeline_state": ready}), side, None)
    assert status.pipeline_state is not None
    assert status.pipeline_state.words() == "sd ready (loaded in 8.0 s)"
    assert "pipeline=" not in one_line(status)  # a ready pipeline is no news for a log


def test_make_before_break_progress_errors_and_the_pace_in_words() -> None:
    from tether.cli.status import render

    loading = PipelineState(
        state="loading", pipeline="sd", stage="warming up", elapsed_s=12.2, progress=0.4,
        running="gray",
    )  # fmt: skip
    link = LinkStatus(
        **{**_LINK_FIELDS, "pipeline_state": loading, "pipeline_fps": 6.04, "pipeline_ms": 151.2}
    )
    side = StudioSide("st1", Fallback.PASSTHROUGH, None, False, None, 9, 0, 30, 6)
    status = build_status(link, side, None)
    assert status.pipeline_state is not None
    assert (status.pipeline_state.running, status.pipeline_state.loading) == ("gray", "sd")
    assert (
        status.pipeline_state.words() == "loading sd: warming up, 40 %, 12 s (gray runs meanwhile)"
    )
    assert (status.stats.pipeline_fps, status.stats.pipeline_ms) == (6.0, 151.2)
    rows = dict(zip(*(c._cells for c in render(status).columns), strict=True))
    assert rows["pipeline pace"] == "6.0 fps, 151.2 ms a frame (median)"
    failed = PipelineState(
        state="error", pipeline="sd", error="failed to load: OSError: no weights"
    )
    status = build_status(LinkStatus(**{**_LINK_FIELDS, "pipeline_state": failed}), side, None)
    assert status.pipeline_state is not None and status.pipeline_state.running is None
    assert status.pipeline_state.words() == "sd failed: failed to load: OSError: no weights"


_LINK_FIELDS: dict[str, Any] = dict(
    state=LinkState.CONNECTED, error=None, signaling_up=True, connect_stage=None,
    worker_url="http://w:8765", connection_id="c1", webrtc_connected=True, webrtc_error=None,
    attempt=0, tries=4, next_retry_in_s=None, probing=False, last_outage_s=None,
    outage_for_s=None, recent_outages_s=(), outages=0, reconnects=0, session_id="s1",
    streaming=True, media_healthy=True, output_live=False, params_version=1,
    params_acked_version=1, params_error=None, pipeline_error=None, heartbeat_rtt_ms=1.0,
    events=(),
)  # fmt: skip
