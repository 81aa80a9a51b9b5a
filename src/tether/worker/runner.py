"""Runs one frame through a pipeline, off the worker's event loop, in whichever form
the pipeline has: ``process`` in the thread pool, ``async def process`` on the
pipeline loop (its own thread), or ``process_batch`` with other streams' frames. The
frame goes in as the pipeline takes it (an array, or a torch tensor: tether.worker.frame_io)."""

from __future__ import annotations

import asyncio
import inspect
from concurrent.futures import Executor
from typing import Any

import av

from tether.tasks import TaskOwner
from tether.worker.batching import Batcher
from tether.worker.frame_io import to_frame, to_input
from tether.worker.pipeline_loop import PipelineLoop


class PipelineRunner:
    def __init__(self, executor: Executor, pipeline_loop: PipelineLoop | None = None) -> None:
        self.executor = executor
        self.pipeline_loop = pipeline_loop or PipelineLoop()
        self._batchers: dict[str, Batcher] = {}
        self._tasks = TaskOwner("pipeline-runner")

    async def run(
        self,
        pipeline: Any,
        params: Any,
        frame: av.VideoFrame,
        stream: Any = None,
        executor: Executor | None = None,
    ) -> av.VideoFrame:
        """The pipeline's output for ``frame``: from ``stream``, the per-stream object its
        ``session()`` made, where it has one (never batched), else from the pipeline."""
        pool = executor or self.executor
        loop = asyncio.get_running_loop()
        target = pipeline if stream is None else stream
        if stream is None and is_batched(pipeline):
            rgb, taken = await loop.run_in_executor(pool, to_input, pipeline, frame)
            out = await self._batcher(pipeline).submit(taken, params)
        elif inspect.iscoroutinefunction(target.process):
            rgb, taken = await loop.run_in_executor(pool, to_input, pipeline, frame)
            out = await self.pipeline_loop.run(target.process(taken, params))
        else:
            return await loop.run_in_executor(pool, _run, pipeline, target, params, frame)
        return await loop.run_in_executor(pool, to_frame, out, rgb, frame)

    def _batcher(self, pipeline: Any) -> Batcher:
        batcher = self._batchers.get(pipeline.name)
        if batcher is None:
            batcher = self._batchers[pipeline.name] = Batcher(
                pipeline, self.executor, self._tasks.spawn
            )
        return batcher

    async def close(self) -> None:
        await self._tasks.close()
        self.pipeline_loop.close()


def _run(pipeline: Any, target: Any, params: Any, frame: av.VideoFrame) -> av.VideoFrame:
    rgb, taken = to_input(pipeline, frame)
    return to_frame(target.process(taken, params), rgb, frame)


def is_batched(pipeline: Any) -> bool:
    return callable(getattr(pipeline, "process_batch", None))
