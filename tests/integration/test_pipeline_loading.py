"""Real models, seen from the link, with real studio and worker processes and the
stand-in models of examples/tether-testmodels (installed, found by entry point): a
switch to a model that loads keeps the running model's frames coming and says what
loads; a load that fails or passes its deadline says so in words and falls back; a
model that takes 150 ms a frame is named as the limit, measured by the worker."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import av
import httpx
import pytest

from tests.helpers import Services, get_status, wait_until
from tests.integration.slow_pipeline import require_testmodels
from tests.integration.test_cli import tether
from tether.timing import MEDIA_STALL_S
from tether.tools.probe import FrameSink, NumberedSource, StudioClient

pytestmark = pytest.mark.timeout(120)

# An 8 s load: longer than the watchdog's stall, so a lie would be a lost link.
LOAD_MS = 8000
assert LOAD_MS / 1000 > MEDIA_STALL_S


@pytest.fixture(autouse=True)
def installed() -> None:
    require_testmodels()


class ShadeSink(FrameSink):
    """Also tells, for each frame, whether it came back inverted (the ``invert``
    pipeline's) or as sent: the source's bottom-left corner is dark (luma ~60)."""

    def __init__(self, source: NumberedSource) -> None:
        super().__init__(source=source, keep_rgb=False)
        self.shades: list[tuple[float, bool]] = []  # (received at, inverted)

    def record(self, frame: av.VideoFrame) -> None:
        super().record(frame)
        corner = frame.to_ndarray(format="gray")[-8:, :8]
        self.shades.append((time.monotonic(), float(corner.mean()) > 128))


# (`tether status` runs in a thread: the stream's client shares this event loop.)


async def set_parameters(studio: Any, parameters: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=studio.url, timeout=10) as http:
        response = await http.post("/api/v1/parameters", json=parameters)
        assert response.status_code == 200, response.text


async def watch(studio: Any, seen: list[dict[str, Any]], want: Any) -> dict[str, Any] | None:
    status = await get_status(studio)
    seen.append(status)
    return status if want(status.get("pipeline_state") or {}) else None


def assert_never_lost(status: dict[str, Any], seen: list[dict[str, Any]]) -> None:
    """The link stayed connected all along: its whole history is the first connect."""
    for s in seen:
        assert s["state"] == "connected", s["error"]
    assert [e["to"] for e in status["events"]] == ["connecting", "connected"], status["events"]
    assert status["stats"]["outages"] == 0 and status["stats"]["reconnects"] == 0


async def streaming(services: Services, **env: str) -> tuple[Any, Any, Any]:
    """A stream through the ``invert`` pipeline, its frames coming back inverted."""
    pipeline = "invert"
    worker = services.worker(**env)
    studio = services.studio(worker, TETHER_FALLBACK="passthrough")
    source = NumberedSource(256, 256, fps=30)
    sink = ShadeSink(source)
    client = StudioClient(studio.url, source, sink)
    await client.start({"pipeline": pipeline})
    # (The studio's fallback may show before the worker's first frames: wait for those.)
    await wait_until(
        lambda: len(sink.shades) >= 10 and all(inv for _, inv in sink.shades[-10:]),
        30,
        "the inverted frames",
    )
    return studio, sink, client


async def test_a_switch_to_a_model_that_loads_keeps_the_old_models_frames_coming(
    services: Services,
) -> None:
    studio, sink, client = await streaming(services)
    try:
        await set_parameters(studio, {"pipeline": "slow_load", "load_ms": LOAD_MS})
        switched, seen = time.monotonic(), []
        status = await wait_until(
            lambda: watch(studio, seen, lambda p: p.get("state") == "loading"),
            5,
            "the status to say loading",
        )
        assert time.monotonic() - switched < 1.0
        state = status["pipeline_state"]
        assert (state["name"], state["loading"], state["running"], state["stage"]) == (
            "slow_load", "slow_load", "invert", "first frame",
        )  # fmt: skip
        shown = await asyncio.to_thread(tether, "status", "--studio", studio.url)
        assert shown.returncode == 0, shown.stderr
        assert "loading slow_load: first frame" in shown.stdout, shown.stdout
        assert "invert runs meanwhile" in shown.stdout, shown.stdout
        ready = await wait_until(
            lambda: watch(studio, seen, lambda p: p.get("state") == "ready"),
            LOAD_MS / 1000 + 10,
            "the model to load",
            every_s=0.1,
        )
        loaded = switched + ready["pipeline_state"]["elapsed_s"]
        assert ready["pipeline_state"]["elapsed_s"] >= LOAD_MS / 1000 * 0.9
        assert ready["pipeline_state"]["running"] == "slow_load"
        # All through the load the old model's frames kept coming, a few a second...
        during = [at for at, inverted in sink.shades if switched <= at < loaded - 0.5 and inverted]
        gaps = [b - a for a, b in zip([switched, *during], during, strict=False)]
        assert during and max(gaps) < 1.0, [
            (round(at - switched, 2), inv) for at, inv in sink.shades if at >= switched
        ]
        # ...and the new model's within a second of the load's end.
        await wait_until(lambda: not sink.shades[-1][1], 5, "the new model's frames")
        first_new = next(at for at, inverted in sink.shades if at >= switched and not inverted)
        assert first_new - loaded < 1.0, first_new - loaded
        for s in seen:
            assert s["fallback_active"] is None or s is seen[0], s["fallback_active"]
        assert_never_lost(await get_status(studio), seen)
    finally:
        await client.close()


async def test_a_load_that_raises_says_its_error_within_a_second_and_falls_back(
    services: Services,
) -> None:
    studio, sink, client = await streaming(services)
    try:
        await set_parameters(studio, {"pipeline": "fail_load"})
        switched, seen = time.monotonic(), []
        status = await wait_until(
            lambda: watch(studio, seen, lambda p: p.get("state") == "error"),
            5,
            "the status to say the load failed",
        )
        said_after = time.monotonic() - switched
        assert said_after < 1.5, said_after  # the load itself takes 0.2 s
        state = status["pipeline_state"]
        assert state["name"] == "fail_load" and state["running"] is None
        assert state["error"] == (
            "failed to load: FileNotFoundError: weights not found: tether-testmodels ships none"
        )
        # The stream falls back to the raw input, and says so.
        await wait_until(lambda: not sink.shades[-1][1], 5, "unprocessed frames")
        status = await wait_until(lambda: watch(studio, seen, lambda p: bool(p)), 5, "a status")
        assert "weights not found" in (status["pipeline_error"] or "")
        shown = await asyncio.to_thread(tether, "status", "--studio", studio.url)
        assert "fail_load failed: failed to load: FileNotFoundError" in shown.stdout, shown.stdout
        count = sink.frames
        await wait_until(lambda: sink.frames >= count + 20, 5, "frames after the failure")
        assert_never_lost(await get_status(studio), seen)
    finally:
        await client.close()


async def test_a_load_past_its_deadline_is_an_error(services: Services) -> None:
    # A load step that takes 6 s under a 2 s deadline, with stages and progress.
    env = {"TETHER_LOAD_TIMEOUT_S": "2", "TETHER_TESTMODELS_LOAD_MS": "6000"}
    studio, sink, client = await streaming(services, **env)
    try:
        await set_parameters(studio, {"pipeline": "staged_load"})
        switched, seen = time.monotonic(), []
        loading = await wait_until(
            lambda: watch(studio, seen, lambda p: p.get("progress")),
            5,
            "the load's progress",
        )
        state = loading["pipeline_state"]
        assert (state["stage"], state["running"]) == ("reading weights", "invert")
        assert 0 < state["progress"] < 1
        status = await wait_until(
            lambda: watch(studio, seen, lambda p: p.get("state") == "error"),
            10,
            "the deadline to pass",
        )
        assert 1.9 < time.monotonic() - switched < 4.0
        assert status["pipeline_state"]["error"] == "did not load within 2 s"
        await wait_until(lambda: not sink.shades[-1][1], 5, "unprocessed frames")
        assert_never_lost(await get_status(studio), seen)
    finally:
        await client.close()


async def test_a_slow_model_is_named_pipeline_and_measured_by_the_worker(
    services: Services,
) -> None:
    worker = services.worker()
    studio = services.studio(worker)
    source = NumberedSource(256, 256, fps=30)
    sink = FrameSink(source=source)
    client = StudioClient(studio.url, source, sink)
    try:
        await client.start({"pipeline": "slow", "delay_ms": 150})
        await wait_until(lambda: sink.frames >= 10, 30, "processed frames")
        streak: list[dict[str, Any]] = []

        async def named() -> bool:
            status = await get_status(studio)
            assert status["state"] == "connected", status["error"]
            quality = status["quality"]
            if quality is not None and quality["factor"] == "pipeline":
                streak.append(status)
            else:
                streak.clear()
            return len(streak) >= 5

        await wait_until(named, 20, "the quality to name the pipeline", every_s=0.3)
        status = streak[-1]
        assert status["quality"] == {"level": "fair", "factor": "pipeline"}
        assert 130 <= status["stats"]["worker_ms"] < 250, status["stats"]
        assert status["stats"]["fps_out"] < 10, status["stats"]
        # The worker's own measure: about 6 frames a second, 150 ms each.
        assert 3 <= status["stats"]["pipeline_fps"] <= 7.5, status["stats"]
        assert 140 <= status["stats"]["pipeline_ms"] < 250, status["stats"]
        shown = await asyncio.to_thread(tether, "status", "--studio", studio.url)
        assert "fps," in shown.stdout and "a frame (median)" in shown.stdout, shown.stdout
        # Ten seconds more at the model's pace: no loss, no reconnect, never bad.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = await get_status(studio)
            assert status["state"] == "connected", status["error"]
            assert status["quality"] == {"level": "fair", "factor": "pipeline"}, status
            await asyncio.sleep(0.3)  # watching an invariant: a fixed pace is the point
        assert status["stats"]["outages"] == 0 and status["stats"]["reconnects"] == 0
        assert [e["to"] for e in status["events"]] == ["connecting", "connected"], status["events"]
    finally:
        await client.close()


async def test_tether_run_waits_for_a_model_that_loads(services: Services, tmp_path: Any) -> None:
    from tests.integration.test_run_exact import make_numbered_clip
    from tether.tools.runner import run_file

    worker = services.worker()
    clip, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    make_numbered_clip(clip, 10)
    # The first frame takes 2.5 s, longer than a frame may: the worker says it loads.
    result = await run_file(
        clip,
        out,
        {"pipeline": "slow_load", "load_ms": 2500},
        worker_url=worker.url,
        token=worker.token,
        frame_timeout_s=1.0,
    )
    assert (result.frames_in, result.frames_out, result.dropped) == (10, 10, 0)
    assert result.seconds >= 2.5


async def test_a_reconnect_does_not_load_the_model_again(services: Services) -> None:
    worker = services.worker(TETHER_TESTMODELS_LOAD_MS="1500")
    studio = services.studio(worker, TETHER_DEBUG_ENDPOINTS="1")
    source = NumberedSource(256, 256, fps=30)
    sink = FrameSink(source=source)
    client = StudioClient(studio.url, source, sink)
    headers = {"Authorization": f"Bearer {worker.token}"}
    try:
        await client.start({"pipeline": "staged_load"})
        await wait_until(
            lambda: watch(studio, [], lambda p: p.get("state") == "ready"), 30, "the load"
        )
        await wait_until(lambda: sink.frames >= 30, 30, "processed frames")
        async with httpx.AsyncClient(base_url=worker.url, headers=headers, timeout=5) as http:
            loaded = (await http.get("/api/v1/models")).json()
            assert [(m["name"], m["state"]) for m in loaded["models"]] == [("staged_load", "ready")]
            assert loaded["models"][0]["elapsed_s"] >= 1.4
            assert loaded["load_timeout_s"] == 180
            async with httpx.AsyncClient(base_url=studio.url, timeout=5) as studio_http:
                dropped = await studio_http.post("/api/v1/cloud/debug/disconnect-webrtc")
                assert dropped.status_code == 200, dropped.text
            seen: list[dict[str, Any]] = []

            async def back() -> bool:
                status = await get_status(studio)
                seen.append(status)
                return status["stats"]["reconnects"] >= 1 and status["state"] == "connected"

            await wait_until(back, 20, "the link to come back")
            count = sink.frames
            await wait_until(lambda: sink.frames >= count + 30, 10, "frames after the reconnect")
            status = await get_status(studio)
            assert status["pipeline_state"]["state"] == "ready"
            assert status["pipeline_state"]["running"] == "staged_load"
            # Never loading again: the model stayed loaded in the worker's process.
            assert not any((s["pipeline_state"] or {}).get("state") == "loading" for s in seen), [
                s["pipeline_state"] for s in seen
            ]
            again = (await http.get("/api/v1/models")).json()["models"]
            assert again == loaded["models"]
    finally:
        await client.close()
