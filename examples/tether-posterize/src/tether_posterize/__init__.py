"""An example Tether pipeline plugin: posterize the picture to a few colour levels.

A pipeline is any object with a ``name``, a pydantic ``params_model`` and a
``process(frame, params)`` method; see docs/PLUGINS.md in the Tether repository.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from tether.pipelines.base import PipelineParams


class PosterizeParams(PipelineParams):
    # Bounds and a step make a slider on the page; the description is its tooltip.
    levels: int = Field(default=4, ge=2, le=16, description="Colour levels per channel")


class Posterize:
    """Reduces every colour channel to a few levels, like a screen print."""

    name = "posterize"
    params_model = PosterizeParams

    def process(self, frame: np.ndarray, params: PosterizeParams) -> np.ndarray:
        # frame: H x W x 3, RGB, uint8. Return the same shape and dtype.
        step = 256 // params.levels
        return ((frame // step) * step + step // 2).clip(0, 255).astype(np.uint8)
