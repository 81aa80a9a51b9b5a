"""Runs pipelines off the event loop: a pipeline's own load step once per worker
process, then each frame, all in the executor.

A pipeline may declare ``load()`` (weights, warm-up) apart from ``process``; while it
runs, it may set ``load_stage`` to say what it is doing ("warming up"). The first
session to need the pipeline starts its load; any other waits on the same one, and a
reconnect or a resume never repeats it. A load that raised stays failed: each frame
then fails with its error, the way a failing ``process`` does."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

import av

from tether.pipelines import Pipeline, PipelineParams

LOAD_STAGE = "load"  # what a load is doing, when its pipeline does not say


class PipelineRunner:
    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._loads: dict[str, asyncio.Future[None]] = {}  # by pipeline name, once each

    async def run(
        self, pipeline: Pipeline, params: PipelineParams, frame: av.VideoFrame
    ) -> av.VideoFrame:
        """The pipeline's output for ``frame``, once its load (if any) is done."""
        loop = asyncio.get_running_loop()
        load = getattr(pipeline, "load", None)
        if callable(load):
            if (future := self._loads.get(pipeline.name)) is None:
                future = self._loads[pipeline.name] = loop.run_in_executor(self._executor, load)
            # Shielded: a session that stops waiting must not cancel a shared load.
            await asyncio.shield(future)
        return await loop.run_in_executor(self._executor, _run, pipeline, params, frame)

    def stage(self, pipeline: Pipeline) -> str | None:
        """What the pipeline's load is doing while it runs; None when it has no load
        step running (then a slow first frame is its lazy load)."""
        future = self._loads.get(pipeline.name)
        if future is None or future.done():
            return None
        stage = getattr(pipeline, "load_stage", None)
        return stage if isinstance(stage, str) and stage else LOAD_STAGE


def _run(pipeline: Pipeline, params: PipelineParams, frame: av.VideoFrame) -> av.VideoFrame:
    rgb = frame.to_ndarray(format="rgb24")
    out = pipeline.process(rgb, params)
    if out is rgb:
        return frame
    return av.VideoFrame.from_ndarray(out, format="rgb24")
