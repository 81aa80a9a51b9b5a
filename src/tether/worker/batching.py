"""The batched form: a pipeline with ``process_batch(frames, params)`` gets the frames
that wait for it together, at most ``max_batch`` at once, in one call in the thread
pool. Frames arriving while a batch runs wait for the next one: one stream alone
makes batches of one; several streams on one worker fill them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from typing import Any

DEFAULT_MAX_BATCH = 4

Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]


class Batcher:
    def __init__(self, pipeline: Any, executor: Executor, spawn: Spawn) -> None:
        self._pipeline = pipeline
        self.max_batch = max(1, int(getattr(pipeline, "max_batch", DEFAULT_MAX_BATCH)))
        self._executor = executor
        self._spawn = spawn
        self._waiting: list[tuple[Any, Any, asyncio.Future[Any]]] = []
        self._task: asyncio.Task[Any] | None = None
        self.batches: list[int] = []  # the size of each batch run (the last few)

    async def submit(self, frame: Any, params: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((frame, params, future))
        if self._task is None or self._task.done():
            self._task = self._spawn(self._drain(), f"batch-{self._pipeline.name}")
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch = [w for w in self._waiting[: self.max_batch] if not w[2].done()]
                del self._waiting[: self.max_batch]
                if not batch:
                    continue
                self.batches = [*self.batches[-31:], len(batch)]
                frames, params = [w[0] for w in batch], [w[1] for w in batch]
                try:
                    outs = await loop.run_in_executor(
                        self._executor, _call_batch, self._pipeline, frames, params
                    )
                except Exception as exc:
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (*_, future), out in zip(batch, outs, strict=True):
                    if not future.done():
                        future.set_result(out)
        finally:  # closed: nobody is left to run what waits
            for *_, future in self._waiting:
                future.cancel()
            self._waiting.clear()


def _call_batch(pipeline: Any, frames: list[Any], params: list[Any]) -> list[Any]:
    outs = list(pipeline.process_batch(frames, params))
    if len(outs) != len(frames):
        raise ValueError(f"process_batch returned {len(outs)} frames for {len(frames)}")
    return outs
