"""Pipeline registry: built-ins plus third-party pipelines from the
``tether.pipelines`` entry-point group."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any

from tether.pipelines.base import Pipeline, PipelineParams, describe
from tether.pipelines.builtin import BUILTINS

__all__ = ["Pipeline", "PipelineParams", "UnknownPipeline", "load_pipelines", "describe"]

ENTRY_POINT_GROUP = "tether.pipelines"
DEFAULT_PIPELINE = "passthrough"
logger = logging.getLogger(__name__)


class UnknownPipeline(KeyError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.message = f"unknown pipeline {name!r}; available: {', '.join(sorted(known))}"

    def __str__(self) -> str:
        return self.message


def _instantiate(obj: Any) -> Pipeline:
    pipeline = obj() if isinstance(obj, type) else obj
    forms = ("process", "session", "process_batch")  # any one of them runs frames
    named = isinstance(getattr(pipeline, "name", None), str) and hasattr(pipeline, "params_model")
    if not named or not any(callable(getattr(pipeline, f, None)) for f in forms):
        raise TypeError(
            "not a Pipeline (needs name, params_model and process, session or process_batch)"
        )
    return pipeline


def load_pipelines() -> dict[str, Pipeline]:
    """Every available pipeline by name. A broken plugin is logged and skipped."""
    pipelines: dict[str, Pipeline] = {cls.name: cls() for cls in BUILTINS}
    plugins: list[str] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            pipeline = _instantiate(ep.load())
        except Exception as exc:  # a third-party plugin must not take the worker down
            logger.warning("skipping pipeline plugin %r: %s", ep.name, exc)
            continue
        if pipeline.name in pipelines:
            logger.warning("pipeline plugin %r overrides %r", ep.value, pipeline.name)
        pipelines[pipeline.name] = pipeline
        plugins.append(f"{pipeline.name} ({ep.value})")
    logger.info(
        "pipelines: %s; plugins: %s", ", ".join(pipelines), ", ".join(plugins) or "none installed"
    )
    return pipelines


def resolve(
    pipelines: dict[str, Pipeline], parameters: dict[str, Any]
) -> tuple[Pipeline, PipelineParams]:
    """The pipeline and validated params for one flat parameter object.

    Raises UnknownPipeline or pydantic.ValidationError."""
    name = parameters.get("pipeline", DEFAULT_PIPELINE)
    if not isinstance(name, str) or name not in pipelines:
        raise UnknownPipeline(str(name), list(pipelines))
    pipeline = pipelines[name]
    rest = {k: v for k, v in parameters.items() if k != "pipeline"}
    return pipeline, pipeline.params_model.model_validate(rest)
