"""Whether a session's pipeline is loading, ready, or failing: the pipeline's side of
the truth the studio tells.

Many pipelines load their model lazily, inside their first ``process`` call. Such a
call that has not returned after ``PIPELINE_WARMUP_S`` is a load, not a stuck worker:
the session says ``loading`` (stage ``first frame``, and the time so far) at once and
about once a second until it returns (``ready``) or raises (``error``; the failure
itself goes the pipeline-error way). The call runs in the executor meanwhile, so the
event loop, and with it the heartbeat, keeps answering."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tether import protocol
from tether.clock import Clock, MonotonicClock
from tether.timing import PIPELINE_LOADING_REPORT_S, PIPELINE_WARMUP_S

T = TypeVar("T")

FIRST_FRAME = "first frame"


class PipelineLoading:
    """Watches a session's pipeline calls; tells ``report`` each change of state."""

    def __init__(
        self,
        report: Callable[[protocol.PipelineState], None],
        clock: Clock | None = None,
        warmup_s: float = PIPELINE_WARMUP_S,
        every_s: float = PIPELINE_LOADING_REPORT_S,
    ) -> None:
        self._report = report
        self._clock = clock or MonotonicClock()
        self._warmup_s, self._every_s = warmup_s, every_s
        # Pipelines whose first call has returned in this session: loaded.
        self._loaded: set[str] = set()
        self.current: protocol.PipelineState | None = None  # the last state reported

    @property
    def loading(self) -> bool:
        return self.current is not None and self.current.state == "loading"

    async def call(
        self, name: str, work: Awaitable[T], stage: Callable[[], str | None] | None = None
    ) -> T:
        """The result of ``work``, a call of pipeline ``name``; a first call that takes
        long is reported as loading (at ``stage()``, else its first frame), an exception
        as an error (and raised on)."""
        if name in self._loaded:  # every frame after the first: no task, no watch
            return await self._settled(name, work)
        task = asyncio.ensure_future(work)
        try:
            took = await self._watch(name, task, stage)
            result = await self._settled(name, task)
        finally:
            task.cancel()  # when we were cancelled: the result is no longer wanted
        self._loaded.add(name)
        self.ready(name, took)
        return result

    async def _settled(self, name: str, work: Awaitable[T]) -> T:
        """``work``'s result; a raise is the pipeline's error (told, and raised on)."""
        try:
            result = await work
        except Exception:
            self._set(protocol.PipelineState(state="error", pipeline=name))
            raise
        if name in self._loaded:
            self.ready(name)
        return result

    def ready(self, name: str, took_s: float | None = None) -> None:
        """Pipeline ``name`` put out a frame (told only when that is news)."""
        current = self.current
        if current is None or current.state != "ready" or current.pipeline != name:
            self._set(protocol.PipelineState(state="ready", pipeline=name, elapsed_s=took_s))

    async def _watch(
        self, name: str, task: asyncio.Future[T], stage: Callable[[], str | None] | None
    ) -> float | None:
        """Wait for ``task``, saying ``loading`` while it takes long; how long it took,
        if it loaded (None: it was quick)."""
        started = self._clock.now()
        wait, loaded = self._warmup_s, False
        while not await self._done_within(task, wait):
            loaded, wait = True, self._every_s
            elapsed = round(self._clock.now() - started, 1)
            doing = (stage() if stage is not None else None) or FIRST_FRAME
            self._set(
                protocol.PipelineState(
                    state="loading", pipeline=name, stage=doing, elapsed_s=elapsed
                )
            )
        return round(self._clock.now() - started, 1) if loaded else None

    async def _done_within(self, task: asyncio.Future[T], seconds: float) -> bool:
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        try:
            await asyncio.wait({task, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
        return task.done()

    def _set(self, state: protocol.PipelineState) -> None:
        if state != self.current:  # a pipeline failing on every frame: told once
            self.current = state
            self._report(state)
