"""The pipeline protocol: a named frame transform with a pydantic parameter model."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict


class PipelineParams(BaseModel):
    """Base for parameter models. Unknown keys are ignored, since one flat parameter
    object serves every pipeline and keys of the previous pipeline may linger."""

    model_config = ConfigDict(extra="ignore")


@runtime_checkable
class Pipeline(Protocol):
    """A named frame transform. Beside ``process``, a pipeline may declare (all read by
    the worker; docs/PLUGINS.md says how each runs): ``load(progress)`` or ``load()``
    (once per worker process, in the load thread pool; ``progress`` is a
    tether.pipelines.progress.LoadProgress), ``session()`` (a per-stream object with
    its own ``process``), ``async def process``, ``process_batch(frames, params)`` with
    ``max_batch``, ``io = "torch"`` with ``device``, ``memory_mb`` and ``is_identity``."""

    name: ClassVar[str]
    params_model: ClassVar[type[BaseModel]]

    def process(self, frame: np.ndarray, params: Any) -> np.ndarray:
        """Transform one RGB frame (H x W x 3, uint8) and return a frame of the same shape."""
        ...


def describe(pipeline: Pipeline) -> dict[str, Any]:
    """What the worker tells the studio about a pipeline: name, summary, parameter schema."""
    doc = (type(pipeline).__doc__ or "").strip().splitlines()
    return {
        "name": pipeline.name,
        "description": doc[0] if doc else "",
        "parameters": pipeline.params_model.model_json_schema(),
    }
