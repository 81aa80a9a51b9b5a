"""The link heals itself: real worker processes, a real client streaming through
the studio, faults injected for real (debug endpoints, SIGSTOP, SIGKILL)."""

from __future__ import annotations

import os
import signal
import time
from contextlib import asynccontextmanager
from typing import Any

import httpx
import numpy as np
import pytest

from tests.helpers import Service, Services, wait_until
from tether.tools.probe import FrameSink, NumberedSource, StudioClient

pytestmark = pytest.mark.timeout(120)

STATUS_FIELDS = {
    "state", "connected", "connecting", "error", "connect_stage", "worker_url",
    "connection_id", "webrtc_connected", "webrtc_error", "webrtc_reconnecting",
    "reconnect_attempt", "next_retry_in_s", "params_version", "params_acked_version",
    "last_outage_s", "stats",
}  # fmt: skip


class Streaming:
    def __init__(self, services: Services, worker: Service, studio: Service) -> None:
        self.services, self.worker, self.studio = services, worker, studio
        self.source = NumberedSource(256, 256, fps=30)
        self.sink = FrameSink(source=self.source)
        self.client = StudioClient(studio.url, self.source, self.sink)
        self.http = httpx.AsyncClient(base_url=studio.url, timeout=10)
        self.seen_states: list[str] = []

    async def status(self) -> dict[str, Any]:
        status = (await self.http.get("/api/v1/cloud/status")).json()
        if not self.seen_states or self.seen_states[-1] != status["state"]:
            self.seen_states.append(status["state"])
        return status

    async def wait_state(self, state: str, deadline_s: float) -> dict[str, Any]:
        async def check():
            status = await self.status()
            return status if status["state"] == state else None

        return await wait_until(check, deadline_s, f"link state {state}", every_s=0.02)

    async def frames_flow(self, deadline_s: float = 10, count: int = 15) -> None:
        """New processed (gray) frames with new frame numbers arrive."""
        start_frames, start_id = self.sink.frames, self.source.count
        await wait_until(
            lambda: (
                self.sink.frames >= start_frames + count
                and self.sink.last_id is not None
                and self.sink.last_id > start_id
            ),
            deadline_s,
            "processed frames flowing",
        )
        body = self.sink.last_rgb[40:].astype(int)
        # Gray: red and blue agree up to codec noise (a few levels, more at a low bitrate
        # on a busy machine); the unprocessed picture differs by about a hundred.
        assert np.abs(body[:, :, 0] - body[:, :, 2]).mean() < 12, "frames are not processed"

    async def set_params(self, **changes: Any) -> int:
        r = await self.http.post("/api/v1/parameters", json=changes)
        assert r.status_code == 200, r.text
        return r.json()["version"]

    async def worker_session(self) -> dict[str, Any]:
        r = await self.http.get(
            f"{self.worker.url}/api/v1/sessions",
            headers={"Authorization": f"Bearer {self.worker.token}"},
        )
        sessions = [s for s in r.json()["sessions"] if s["state"] == "active"]
        assert len(sessions) == 1, r.json()
        return sessions[0]


@asynccontextmanager
async def streaming(services: Services, **env: str):
    worker = services.worker()
    env = {"TETHER_DEBUG_ENDPOINTS": "1", **env}
    studio = services.studio(worker, **env)
    s = Streaming(services, worker, studio)
    await s.wait_state("connected", 15)
    await s.client.start({"pipeline": "gray"})
    try:
        await s.frames_flow(15)
        yield s
    finally:
        await s.client.close()
        await s.http.aclose()


async def test_debug_disconnect_reconnects_and_frames_flow_again(services: Services) -> None:
    async with streaming(services) as s:
        before = await s.status()
        r = await s.http.post("/api/v1/cloud/debug/disconnect-webrtc")
        assert r.status_code == 200
        await wait_until(lambda: _has_event(s, "reconnecting"), 5, "a reconnecting event")
        status = await s.wait_state("connected", 10)
        await s.frames_flow()
        kinds = [e["kind"] for e in status["events"]]
        assert kinds[-2:] == ["reconnecting", "reconnected"]
        assert status["stats"]["outages"] == 1 and status["stats"]["reconnects"] == 1
        assert 0 < status["last_outage_s"] < 5
        assert status["error"] is None and status["webrtc_error"] is None
        # the worker resumed the same session
        assert status["session_id"] == before["session_id"]
        assert (await s.worker_session())["resumes"] == 1
        assert set(status) >= STATUS_FIELDS


async def _has_event(s: Streaming, kind: str) -> bool:
    status = await s.status()
    return kind in [e["kind"] for e in status["events"]]


async def test_sigstop_detected_fast_and_parameters_survive(services: Services) -> None:
    async with streaming(services) as s:
        v_before = await s.set_params(pipeline="tint", prompt="red", strength=1.0)
        await wait_until(lambda: _acked(s, v_before), 5, "ack before the outage")
        os.kill(s.worker.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            status = await s.wait_state("reconnecting", 5)
            detected = time.monotonic() - stopped
            assert detected < 2.5, f"silent worker noticed after {detected:.2f}s"
            assert "heartbeat" in status["error"]
            assert status["webrtc_error"] == status["error"]
            assert status["webrtc_reconnecting"] is True and status["reconnect_attempt"] >= 1
            v_during = await s.set_params(prompt="green")  # made while the link is down
            assert v_during == v_before + 1
            status = await s.status()
            assert status["params_acked_version"] < status["params_version"]
            assert status["fallback_active"] == "hold"
        finally:
            os.kill(s.worker.pid, signal.SIGCONT)
        status = await s.wait_state("connected", 15)
        assert status["params_acked_version"] == status["params_version"] == v_during
        session = await s.worker_session()
        assert session["parameters"] == {"pipeline": "tint", "prompt": "green", "strength": 1.0}
        assert session["parameters_version"] == v_during
        await wait_until(
            lambda: (
                s.sink.last_rgb is not None
                and s.sink.last_rgb[40:, :, 1].mean() > s.sink.last_rgb[40:, :, 0].mean() + 20
            ),
            10,
            "green frames after recovery",
        )


async def _fallback_is(s: Streaming, mode: str) -> bool:
    return (await s.status())["fallback_active"] == mode


async def _acked(s: Streaming, version: int) -> bool:
    status = await s.status()
    return status["params_acked_version"] == version


async def test_sigkill_and_restart_on_same_port_recovers(services: Services) -> None:
    async with streaming(services) as s:
        before = await s.status()
        v = await s.set_params(pipeline="tint", prompt="green", strength=1.0)
        s.worker.proc.send_signal(signal.SIGKILL)
        s.worker.proc.wait()
        await s.wait_state("reconnecting", 5)
        services.restart(s.worker)
        status = await s.wait_state("connected", 15)
        await s.frames_flow()
        assert status["connection_id"] != before["connection_id"]  # a new signaling socket
        session = await s.worker_session()
        assert session["parameters_version"] == v and session["parameters"]["prompt"] == "green"


async def test_worker_gone_for_good_fails_then_retry_recovers(services: Services) -> None:
    async with streaming(services, TETHER_RECONNECT_DELAYS="0,0.3,0.3") as s:
        s.worker.stop(signal.SIGKILL)
        status = await s.wait_state("failed", 20)
        assert "cannot reach the worker" in status["error"]
        assert "Gave up after 3 tries" in status["error"] and "Retry" in status["error"]
        assert status["next_retry_in_s"] is None
        # The output switches to the fallback with its next frame (a busy machine may be
        # a moment late reading it).
        await wait_until(lambda: _fallback_is(s, "hold"), 3, "the fallback shown while failed")
        await s.set_params(pipeline="tint", prompt="green kept while failed", strength=1.0)
        services.restart(s.worker)
        r = await s.http.post("/api/v1/cloud/reconnect")
        assert r.status_code == 200
        status = await s.wait_state("connected", 15)
        await s.frames_flow()
        session = await s.worker_session()
        assert session["parameters"]["prompt"] == "green kept while failed"
        assert status["params_acked_version"] == status["params_version"]


async def test_failed_link_recovers_by_itself_when_the_worker_returns(services: Services) -> None:
    env = {"TETHER_RECONNECT_DELAYS": "0,0.3,0.3", "TETHER_FAILED_PROBE_S": "1"}
    async with streaming(services, **env) as s:
        v = await s.set_params(pipeline="tint", prompt="green before", strength=1.0)
        s.worker.stop(signal.SIGKILL)
        status = await s.wait_state("failed", 20)
        assert "will keep trying" in status["error"] and status["failed_probing"] is True
        v = await s.set_params(prompt="green while failed")
        services.restart(s.worker)  # and nobody presses Retry
        status = await s.wait_state("connected", 15)
        await s.frames_flow()
        session = await s.worker_session()
        assert session["parameters"]["prompt"] == "green while failed"
        assert session["parameters_version"] == v
        assert status["stats"]["reconnects"] >= 1


async def test_signaling_drop_alone_keeps_media_without_a_gap(services: Services) -> None:
    async with streaming(services) as s:
        before = await s.status()
        mark = time.monotonic()
        await s.http.post("/api/v1/cloud/debug/disconnect-signaling")
        status = await s.wait_state("connected", 10)
        await wait_until(lambda: _has_event(s, "reconnected"), 5, "reconnected")
        await s.frames_flow()
        after = await s.status()
        assert after["connection_id"] != before["connection_id"]
        assert after["session_id"] == before["session_id"]  # same peer connection
        times = [t for t in s.sink.received_at if t >= mark - 0.5]
        gaps = np.diff(times)
        assert gaps.max() < 0.25, f"media gap of {gaps.max():.3f}s"
        assert status["fallback_active"] is None


async def test_user_disconnect_is_clean(services: Services) -> None:
    async with streaming(services) as s:
        v = await s.set_params(pipeline="tint", prompt="x")
        r = await s.http.post("/api/v1/cloud/disconnect")
        status = r.json()
        assert status["state"] == "idle" and status["error"] is None
        assert status["webrtc_connected"] is False and status["connected"] is False
        # cleared, at a new version: versions never repeat
        assert status["params_version"] == v + 1 and status["connect_stage"] is None
        assert (await s.http.get("/api/v1/parameters")).json()["parameters"] == {}
        assert [e["kind"] for e in status["events"]][-2:] == ["closing", "disconnected"]
        assert all(e["kind"] != "failed" for e in status["events"])
        assert "reconnecting" not in s.seen_states
        # the studio's fallback keeps the client's picture going
        frames = s.sink.frames
        await wait_until(lambda: s.sink.frames > frames + 10, 5, "fallback frames")
        assert (await s.status())["fallback_active"] == "hold"
