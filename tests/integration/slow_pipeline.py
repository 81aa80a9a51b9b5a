"""Test-only pipeline plugins, installed into a worker process the way a user's plugin
is (an entry point), without pip: ``slow`` takes a known time per frame; ``slow_load``
loads lazily, as many real models do: its first call takes ``load_ms``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from pydantic import Field

from tether.pipelines import PipelineParams

ROOT = Path(__file__).resolve().parents[2]


class SlowParams(PipelineParams):
    delay_ms: int = Field(default=0, ge=0, le=1000, description="Time taken per frame")


class Slow:
    """Returns the frame unchanged after ``delay_ms``."""

    name = "slow"
    params_model = SlowParams

    def process(self, frame: np.ndarray, params: SlowParams) -> np.ndarray:
        time.sleep(params.delay_ms / 1000.0)
        return frame


class SlowLoadParams(SlowParams):
    load_ms: int = Field(default=3000, ge=0, le=120_000, description="Its first frame's time")


class SlowLoad:
    """Its first call "loads a model" for ``load_ms`` (once per worker process, as a
    lazily loaded model does), then takes ``delay_ms`` per frame."""

    name = "slow_load"
    params_model = SlowLoadParams

    def __init__(self) -> None:
        self.loaded = False

    def process(self, frame: np.ndarray, params: SlowLoadParams) -> np.ndarray:
        if not self.loaded:
            time.sleep(params.load_ms / 1000.0)
            self.loaded = True
        time.sleep(params.delay_ms / 1000.0)
        return frame


def plugin_env(directory: Path) -> dict[str, str]:
    """Environment for a worker process that finds the ``slow`` pipeline plugin."""
    info = directory / "tether_test_slow-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tether-test-slow\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        f"[tether.pipelines]\nslow = {__name__}:Slow\nslow_load = {__name__}:SlowLoad\n"
    )
    # Kept: a PYTHONPATH that points at the source under test (else the worker would
    # import whichever tether is installed).
    paths = [str(directory), str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}
