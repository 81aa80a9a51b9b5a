"""The diffusion img2img example (examples/tether-diffusion), installed as a user would
(`make test` installs it with torch, diffusers and transformers), on a tiny model built
from a config with random weights and saved with save_pretrained: a real worker process
loads it from that directory with no network (CI runs loopback-only) in its load step,
and streams through it."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers import Services, get_status, wait_until
from tether.tools.probe import FrameSink, NumberedSource, StudioClient

pytestmark = pytest.mark.timeout(240)

SIZE = 64  # the tiny model's picture size; the stream's frames are resized to it and back


@pytest.fixture(autouse=True)
def installed() -> None:
    try:
        version("tether-diffusion")
    except PackageNotFoundError:
        pytest.fail(
            "the diffusion example is not installed: pip install -e examples/tether-diffusion"
        )


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tiny-sd")
    # In its own process: the test process never imports torch.
    done = subprocess.run(
        [sys.executable, "-m", "tether_diffusion.build", str(directory), "--shape", "tiny"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (directory / "model_index.json").is_file() and (directory / "unet").is_dir()
    return directory


def test_listing_the_example_does_not_import_torch() -> None:
    code = (
        "import sys, tether_diffusion\n"
        "from tether.pipelines import load_pipelines\n"
        "assert 'diffusion' in load_pipelines()\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]


async def test_a_worker_loads_the_tiny_model_from_its_directory_and_streams(
    services: Services, tiny_model: Path
) -> None:
    worker = services.worker(
        TETHER_DIFFUSION_MODEL=str(tiny_model),
        TETHER_DIFFUSION_DEVICE="cpu",
        TETHER_DIFFUSION_SIZE=str(SIZE),
        TETHER_DIFFUSION_WARMUP="1",
        HF_HUB_OFFLINE="1",
    )
    studio = services.studio(worker, TETHER_FALLBACK="passthrough")
    source = NumberedSource(128, 128, fps=5)
    sink = FrameSink(source=source)
    client = StudioClient(studio.url, source, sink)
    seen: list[dict[str, Any]] = []
    try:
        await client.start({"pipeline": "diffusion", "prompt": "a cat", "steps": 2})

        async def ready() -> dict[str, Any] | None:
            status = await get_status(studio)
            seen.append(status)
            state = status["pipeline_state"]
            assert status["pipeline_error"] is None, status["pipeline_error"]
            return status if state and state["state"] == "ready" else None

        status = await wait_until(ready, 150, "the tiny model to load", every_s=0.2)
        assert status["pipeline_state"]["name"] == "diffusion"
        # Its load was shown as one, with a stage (torch's import alone takes seconds).
        stages = {s["pipeline_state"]["stage"] for s in seen if _loading(s)}
        assert stages and all(stages), [s["pipeline_state"] for s in seen]
        # Frames come back redrawn: the model's output, not the camera's picture.
        count = sink.frames
        await wait_until(lambda: sink.frames >= count + 5, 60, "frames through the model")
        assert sink.last_rgb is not None
        sent = source.planes(0)[: source.height].astype(float)  # the source's luma
        got = sink.last_rgb.astype(float).mean(axis=2)
        assert np.abs(got - sent).mean() > 10, "the frames came back unprocessed"
        status = await get_status(studio)
        assert status["state"] == "connected" and status["pipeline_error"] is None, status
    finally:
        await client.close()


async def test_a_missing_model_directory_is_an_error_in_words(services: Services) -> None:
    worker = services.worker(TETHER_DIFFUSION_MODEL="/nonexistent/model", HF_HUB_OFFLINE="1")
    studio = services.studio(worker, TETHER_FALLBACK="passthrough")
    source = NumberedSource(128, 128, fps=10)
    client = StudioClient(studio.url, source, FrameSink(source=source))
    try:
        await client.start({"pipeline": "diffusion"})

        async def failed() -> dict[str, Any] | None:
            status = await get_status(studio)
            return status if status["pipeline_error"] else None

        status = await wait_until(failed, 60, "the load's error in the status")
        assert "TETHER_DIFFUSION_MODEL" in status["pipeline_error"], status["pipeline_error"]
        assert status["state"] == "connected", status["error"]
    finally:
        await client.close()


def _loading(status: dict[str, Any]) -> bool:
    state = status["pipeline_state"]
    return state is not None and state["state"] == "loading"
