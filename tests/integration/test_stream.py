"""Video through studio and worker, end to end, with real peers and processes."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from tests.helpers import Services, get_status, wait_until
from tether.media.frame_id import base_planes
from tether.tools.probe import FrameSink, NumberedSource, StudioClient

pytestmark = pytest.mark.timeout(90)


def expected_rgb(width: int = 512, height: int = 512) -> np.ndarray:
    import av

    planes = base_planes(width, height)
    return av.VideoFrame.from_ndarray(planes, format="yuv420p").to_ndarray(format="rgb24")


async def stream_through(studio_url: str, params: dict, frames: int = 45):
    source = NumberedSource(512, 512, fps=30)
    sink = FrameSink(source=source)
    client = StudioClient(studio_url, source, sink)
    await client.start(params)
    await wait_until(lambda: sink.frames >= frames, 30, f"{frames} processed frames")
    return client, source, sink


async def test_gray_frames_come_back_gray(services: Services) -> None:
    worker = services.worker()
    studio = services.studio(worker)
    client, source, sink = await stream_through(studio.url, {"pipeline": "gray"})
    try:
        rgb = sink.last_rgb.astype(int)
        body = rgb[40:]  # below the frame-number band
        assert np.abs(body[:, :, 0] - body[:, :, 1]).mean() < 4
        assert np.abs(body[:, :, 1] - body[:, :, 2]).mean() < 4
        # ...and the picture is not flat: the gradient survived
        assert body[:, -20:, 0].mean() - body[:, :20, 0].mean() > 60
        assert sink.latencies_ms, "frame numbers were read back"
        status = await get_status(studio)
        assert status["state"] == "connected" and status["webrtc_connected"] is True
        assert status["stats"]["frames_received"] >= 40
    finally:
        await client.close()


async def test_invert_inverts_colours(services: Services) -> None:
    worker = services.worker()
    studio = services.studio(worker)
    client, source, sink = await stream_through(studio.url, {"pipeline": "invert"})
    sink.inverted = True
    try:
        original = expected_rgb()[40:].astype(int)
        got = sink.last_rgb[40:].astype(int)
        assert np.abs((255 - original) - got).mean() < 12
        assert np.abs(original - got).mean() > 60  # really changed
    finally:
        await client.close()


async def test_parameter_update_reaches_worker(services: Services) -> None:
    worker = services.worker()
    studio = services.studio(worker)
    client, source, sink = await stream_through(studio.url, {"pipeline": "passthrough"}, 10)
    try:
        async with httpx.AsyncClient() as http:
            r = await http.post(
                f"{studio.url}/api/v1/parameters",
                json={"pipeline": "tint", "prompt": "deep red", "strength": 0.9},
            )
            assert r.status_code == 200
            version = r.json()["version"]
            assert version >= 2
            await wait_until(lambda: _acked(studio.url, version), 10, f"worker ack of v{version}")

            async def running() -> list[dict]:
                answer = await http.get(
                    f"{worker.url}/api/v1/sessions",
                    headers={"Authorization": f"Bearer {worker.token}"},
                )
                return answer.json()["sessions"]

            # Acked at once; the stream moves to the new pipeline at its next frame
            # (make-before-break: the running one goes on until the next is ready).
            async def moved() -> bool:
                return [s["pipeline"] for s in await running()] == ["tint"]

            await wait_until(moved, 10, "the session running tint")
            sessions = await running()
        [session] = sessions
        assert session["pipeline"] == "tint"
        assert session["parameters"]["prompt"] == "deep red"
        assert session["parameters_version"] == version
        # the picture turns red
        await asyncio.sleep(0)
        await wait_until(
            lambda: (
                sink.last_rgb is not None
                and sink.last_rgb[40:, :, 0].mean() > sink.last_rgb[40:, :, 2].mean() + 40
            ),
            10,
            "red-tinted frames",
        )
    finally:
        await client.close()


async def _acked(studio_url: str, version: int) -> bool:
    async with httpx.AsyncClient() as http:
        status = (await http.get(f"{studio_url}/api/v1/cloud/status")).json()
    return status["params_acked_version"] == version == status["params_version"]


async def test_wrong_token_shows_clear_error(services: Services) -> None:
    worker = services.worker(token="right-token")
    studio = services.studio(worker, token="wrong-token")
    status = await wait_until(
        lambda: _status_if(studio, "failed"), 15, "state failed after a wrong token"
    )
    assert "token" in status["error"]
    assert "rejected" in status["error"]
    assert status["failed_probing"] is False  # permanent: not probed, no retries
    assert [e["kind"] for e in status["events"]] == ["connecting", "failed"]
    assert "wrong-token" not in str(status) and "right-token" not in str(status)
    assert "wrong-token" not in studio.output()


async def _status_if(studio, state: str):
    status = await get_status(studio)
    return status if status["state"] == state else None
