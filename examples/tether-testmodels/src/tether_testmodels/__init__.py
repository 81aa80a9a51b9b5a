"""Stand-in models for Tether's tests: they take time, load, fail and remember the way
real models do, with no model inside. See README.md."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from pydantic import Field

from tether.pipelines import PipelineParams

LOAD_MS_ENV = "TETHER_TESTMODELS_LOAD_MS"
MEMORY_MB_ENV = "TETHER_TESTMODELS_MEMORY_MB"


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
    """Loads lazily: its first call takes ``load_ms`` (once per worker process), then
    returns each frame unchanged after ``delay_ms``."""

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


class NoParams(PipelineParams):
    pass


def _load_s() -> float:
    return int(os.environ.get(LOAD_MS_ENV, "2000")) / 1000.0


class StagedLoad:
    """Loads in a load step that says its stages and progress; returns frames unchanged."""

    name = "staged_load"
    params_model = NoParams

    def __init__(self) -> None:
        if MEMORY_MB_ENV in os.environ:
            self.memory_mb = int(os.environ[MEMORY_MB_ENV])

    def load(self, progress: Any) -> None:
        steps = 10
        for step in range(steps):  # "reading weights" for 60 %, then "warming up"
            progress("reading weights" if step < 6 else "warming up", step / steps)
            time.sleep(_load_s() / steps)
        progress("warming up", 1.0)

    def process(self, frame: np.ndarray, params: NoParams) -> np.ndarray:
        return frame


class FailLoad:
    """Its load step fails: the weights it needs are missing."""

    name = "fail_load"
    params_model = NoParams

    def load(self, progress: Any) -> None:
        progress("reading weights", 0.1)
        time.sleep(0.2)
        raise FileNotFoundError("weights not found: tether-testmodels ships none")

    def process(self, frame: np.ndarray, params: NoParams) -> np.ndarray:
        raise AssertionError("never called: its load failed")


class TrailParams(PipelineParams):
    keep: float = Field(
        default=0.5, ge=0.0, le=0.95, multiple_of=0.05, description="How much of the past stays"
    )


class Trail:
    """Leaves a motion trail: each output blends the frame with the previous output."""

    name = "trail"
    params_model = TrailParams

    def session(self) -> TrailStream:
        return TrailStream()  # a new stream starts with no past


class TrailStream:
    """One stream's history: its previous output."""

    def __init__(self) -> None:
        self.previous: np.ndarray | None = None
        self.frames = 0

    def process(self, frame: np.ndarray, params: TrailParams) -> np.ndarray:
        self.frames += 1
        if self.previous is None or self.previous.shape != frame.shape:
            out = frame
        else:
            out = (frame * (1 - params.keep) + self.previous * params.keep).astype(np.uint8)
        self.previous = out
        return out
