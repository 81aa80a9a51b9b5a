"""Built-in pipelines. Cheap numpy transforms that stand in for real inference."""

from __future__ import annotations

import colorsys
import hashlib

import numpy as np
from pydantic import Field

from tether.pipelines.base import PipelineParams


class NoParams(PipelineParams):
    pass


class Passthrough:
    """Returns every frame unchanged."""

    name = "passthrough"
    params_model = NoParams
    is_identity = True  # the worker may skip the frame conversions

    def process(self, frame: np.ndarray, params: NoParams) -> np.ndarray:
        return frame


class Gray:
    """Converts to grayscale (ITU-R BT.601 luma)."""

    name = "gray"
    params_model = NoParams

    def process(self, frame: np.ndarray, params: NoParams) -> np.ndarray:
        luma = (frame @ np.array([77, 150, 29], dtype=np.uint16)) >> 8
        return np.repeat(luma.astype(np.uint8)[:, :, None], 3, axis=2)


class Invert:
    """Inverts every colour."""

    name = "invert"
    params_model = NoParams

    def process(self, frame: np.ndarray, params: NoParams) -> np.ndarray:
        return 255 - frame


class EdgesParams(PipelineParams):
    gain: float = Field(
        default=2.0, ge=0.1, le=10.0, multiple_of=0.1, description="Edge brightness multiplier"
    )


class Edges:
    """Highlights edges (gradient magnitude of the luma)."""

    name = "edges"
    params_model = EdgesParams

    def process(self, frame: np.ndarray, params: EdgesParams) -> np.ndarray:
        luma = frame.mean(axis=2, dtype=np.float32)
        gx = np.zeros_like(luma)
        gy = np.zeros_like(luma)
        gx[:, 1:-1] = luma[:, 2:] - luma[:, :-2]
        gy[1:-1, :] = luma[2:, :] - luma[:-2, :]
        magnitude = np.clip(np.hypot(gx, gy) * params.gain, 0, 255).astype(np.uint8)
        return np.repeat(magnitude[:, :, None], 3, axis=2)


_NAMED_HUES = {
    "red": 0.0,
    "orange": 30.0,
    "amber": 45.0,
    "gold": 50.0,
    "yellow": 60.0,
    "lime": 90.0,
    "green": 120.0,
    "forest": 130.0,
    "teal": 170.0,
    "cyan": 180.0,
    "ocean": 200.0,
    "sky": 200.0,
    "blue": 230.0,
    "indigo": 260.0,
    "violet": 280.0,
    "purple": 285.0,
    "magenta": 300.0,
    "pink": 330.0,
    "sunset": 20.0,
    "fire": 10.0,
}


def hue_for_prompt(prompt: str) -> float:
    """A hue in degrees: the first colour word in the prompt, else a stable hash of it."""
    for word in prompt.lower().replace(",", " ").split():
        if word in _NAMED_HUES:
            return _NAMED_HUES[word]
    digest = hashlib.sha256(prompt.strip().lower().encode()).digest()
    return float(int.from_bytes(digest[:2], "big") % 360)


class TintParams(PipelineParams):
    prompt: str = Field(default="ocean blue", max_length=500, description="Words naming a colour")
    strength: float = Field(
        default=0.5, ge=0.0, le=1.0, multiple_of=0.05, description="0 = original, 1 = full tint"
    )


class Tint:
    """Tints the picture with a colour named by the prompt."""

    name = "tint"
    params_model = TintParams

    def process(self, frame: np.ndarray, params: TintParams) -> np.ndarray:
        r, g, b = colorsys.hsv_to_rgb(hue_for_prompt(params.prompt) / 360.0, 0.8, 1.0)
        luma = frame.mean(axis=2, dtype=np.float32)[:, :, None]
        tinted = luma * np.array([r, g, b], dtype=np.float32)
        s = params.strength
        out = frame.astype(np.float32) * (1.0 - s) + tinted * s
        return np.clip(out, 0, 255).astype(np.uint8)


BUILTINS = (Passthrough, Gray, Invert, Edges, Tint)
