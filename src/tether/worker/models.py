"""The models of one worker process: each pipeline loads once per process, in the
background, whoever asked first, and every stream that needs it shares that load.

A pipeline's load is its optional load step (``load()`` or ``load(progress)``, in the
load thread pool; ``async def load`` on the pipeline loop), then its first call on a
frame (a lazy model loads there; a declared one warms up). The whole has a deadline.
A load step that raises, or a load past its deadline, leaves the pipeline failed for
the life of the process (its error in words); a first call that raises is only that
frame's failure. Listeners hear of each change (a stage, a fraction, the end) on the
event loop."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Literal

from tether.clock import Clock, MonotonicClock
from tether.pipelines.progress import LoadProgress
from tether.tasks import TaskOwner
from tether.worker.pipeline_loop import PipelineLoop

LOAD_STAGE = "load"  # what a load step is doing, when its pipeline does not say
FIRST_FRAME = "first frame"
DEFAULT_LOAD_TIMEOUT_S = 180.0

# The first call of a load, on a frame, given the thread pool to run in.
FirstCall = Callable[[Executor], Awaitable[Any]]


class LoadFailed(Exception):
    """A pipeline that could not load (its load step raised, or took past the deadline)."""


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None


@dataclass
class ModelLoad:
    name: str
    started_at: float
    declared: bool  # it has a load step (else its first call is all its load)
    progress: LoadProgress = field(default_factory=LoadProgress)
    state: Literal["loading", "ready", "error"] = "loading"
    phase: str = LOAD_STAGE  # the load step, then FIRST_FRAME
    took_s: float | None = None
    error: str | None = None
    task: asyncio.Task[Outcome] | None = None
    stage_hint: Callable[[], Any] = lambda: None  # the pipeline's own load_stage

    @property
    def stage(self) -> str:
        if self.phase == FIRST_FRAME:
            return FIRST_FRAME
        hinted = self.stage_hint()
        return self.progress.stage or (hinted if isinstance(hinted, str) and hinted else LOAD_STAGE)


class _FirstCallFailed(Exception):
    def __init__(self, error: Exception) -> None:
        self.error = error


class Models:
    def __init__(
        self,
        executor: Executor,
        clock: Clock | None = None,
        deadline_s: float = DEFAULT_LOAD_TIMEOUT_S,
        pipeline_loop: PipelineLoop | None = None,
    ) -> None:
        self._executor = executor  # the load pool: a load never takes a frame's thread
        self._clock = clock or MonotonicClock()
        self.deadline_s = deadline_s
        self._pipeline_loop = pipeline_loop or PipelineLoop()
        self._loads: dict[str, ModelLoad] = {}
        self._listeners: set[Callable[[str], None]] = set()
        self._tasks = TaskOwner("models")
        self.loads_started: dict[str, int] = {}  # by name: never more than one each

    def listen(self, listener: Callable[[str], None]) -> None:
        self._listeners.add(listener)

    def unlisten(self, listener: Callable[[str], None]) -> None:
        self._listeners.discard(listener)

    def get(self, name: str) -> ModelLoad | None:
        return self._loads.get(name)

    def ready(self, pipeline: Any) -> bool:
        """Loaded in this process (or nothing to load): its frames run at once."""
        if getattr(pipeline, "is_identity", False):
            return True
        load = self._loads.get(pipeline.name)
        return load is not None and load.state == "ready"

    def failed(self, pipeline: Any) -> str | None:
        load = self._loads.get(pipeline.name)
        return load.error if load is not None and load.state == "error" else None

    def start(self, pipeline: Any, first: FirstCall) -> tuple[ModelLoad, bool]:
        """The pipeline's load, started now with ``first`` as its first call unless it
        was started before; and whether this call started it."""
        if (load := self._loads.get(pipeline.name)) is not None:
            return load, False
        load = self._loads[pipeline.name] = ModelLoad(
            pipeline.name,
            self._clock.now(),
            declared=callable(getattr(pipeline, "load", None)),
            stage_hint=lambda: getattr(pipeline, "load_stage", None),
        )
        load.progress.on_change = self._notifier(pipeline.name)
        self.loads_started[pipeline.name] = self.loads_started.get(pipeline.name, 0) + 1
        load.task = self._tasks.spawn(self._load(load, pipeline, first), f"load-{pipeline.name}")
        self._tell(pipeline.name)
        return load, True

    async def _load(self, load: ModelLoad, pipeline: Any, first: FirstCall) -> Outcome:
        try:
            value = await self._within(self._steps(load, pipeline, first))
        except _FirstCallFailed as failed:  # loaded; that frame failed
            self._settle(load, "ready")
            return Outcome(error=failed.error)
        except TimeoutError:
            self._settle(load, "error", f"did not load within {self.deadline_s:g} s")
            return Outcome(error=LoadFailed(load.error))
        except Exception as exc:
            self._settle(load, "error", f"failed to load: {type(exc).__name__}: {exc}")
            return Outcome(error=LoadFailed(load.error))
        self._settle(load, "ready")
        return Outcome(value=value)

    async def _steps(self, load: ModelLoad, pipeline: Any, first: FirstCall) -> Any:
        step = getattr(pipeline, "load", None)
        if callable(step):
            await self._load_step(step, load.progress)
        load.phase = FIRST_FRAME
        self._tell(load.name)
        try:
            return await first(self._executor)
        except Exception as exc:
            raise _FirstCallFailed(exc) from exc

    async def _load_step(self, step: Callable[..., Any], progress: LoadProgress) -> None:
        args = (progress,) if _takes_an_argument(step) else ()
        if inspect.iscoroutinefunction(step):
            await self._pipeline_loop.run(step(*args))
        else:
            await asyncio.get_running_loop().run_in_executor(self._executor, step, *args)

    async def _within(self, work: Coroutine[Any, Any, Any]) -> Any:
        """``work``'s result, or TimeoutError at the deadline (a thread can't be stopped:
        a load step past it runs on, and its result is dropped)."""
        task = asyncio.ensure_future(work)
        timer = asyncio.ensure_future(self._clock.sleep(self.deadline_s))
        try:
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if not task.done():
            task.cancel()
            raise TimeoutError
        return task.result()

    def _settle(self, load: ModelLoad, state: Literal["ready", "error"], error: str | None = None):
        load.state, load.error = state, error
        load.took_s = round(self._clock.now() - load.started_at, 1)
        self._tell(load.name)

    def _notifier(self, name: str) -> Callable[[], None]:
        """Called from the load's thread: tells the listeners on the event loop, once
        for any number of changes made before it gets there."""
        loop = asyncio.get_running_loop()
        pending = [False]

        def flush() -> None:
            pending[0] = False
            self._tell(name)

        def changed() -> None:
            if pending[0]:
                return
            pending[0] = True
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody to tell
                loop.call_soon_threadsafe(flush)

        return changed

    def _tell(self, name: str) -> None:
        for listener in list(self._listeners):
            listener(name)

    def describe(self) -> list[dict[str, Any]]:
        """Each load of this process: what the worker's ``GET /api/v1/models`` says."""
        now = self._clock.now()
        return [
            {
                "name": load.name,
                "state": load.state,
                "stage": load.stage if load.state == "loading" else None,
                "progress": load.progress.fraction,
                "elapsed_s": round(now - load.started_at, 1)
                if load.state == "loading"
                else load.took_s,
                "error": load.error,
            }
            for load in self._loads.values()
        ]

    async def close(self) -> None:
        await self._tasks.close()


def _takes_an_argument(step: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(step).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(
        p.kind == inspect.Parameter.VAR_POSITIONAL
        or (p.kind in positional and p.default is inspect.Parameter.empty)
        for p in parameters
    )
