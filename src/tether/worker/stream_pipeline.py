"""The pipeline one stream runs, the one it switches to, and what the studio is told.

A switch to a pipeline that must load is make-before-break: the running pipeline keeps
processing frames while the next loads in the background (tether.worker.models), and
the stream moves over once it is loaded; the status says which runs and which loads.
Where that cannot be (nothing ran yet, the running one is failing, or both declared
memory needs do not fit the worker's), the stream moves at once, its frames wait for
the load (the studio shows its fallback), and the note says why. A switch back during
a load only drops the wish: the load goes on once, for whoever wants it next.

A pipeline with ``session()`` gets one per-stream object from it (a temporal model's
history), made on its first frame in this stream and dropped when the stream moves
off it or ends: a new stream starts afresh."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from typing import Any

import av
from pydantic import BaseModel

from tether import protocol
from tether.pipelines import Pipeline, PipelineParams
from tether.timing import PIPELINE_ERROR_REPORT_S, PIPELINE_LOADING_REPORT_S, PIPELINE_WARMUP_S
from tether.worker.engine import Engine
from tether.worker.meter import PipelineMeter
from tether.worker.models import LoadFailed, ModelLoad
from tether.worker.switching import loading_state, why_not_keep

logger = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]


class StreamPipeline:
    def __init__(
        self,
        engine: Engine,
        send: Callable[[BaseModel], None],
        spawn: Spawn,
        pipeline: Pipeline,
        params: PipelineParams,
    ) -> None:
        self._engine, self._models, self._clock = engine, engine.models, engine.clock
        self._send, self._spawn = send, spawn
        self.current, self.params = pipeline, params
        self._started = False  # the current pipeline has put out a frame in this stream
        self._wanted: tuple[Pipeline, PipelineParams] | None = None  # loading meanwhile
        self._streams: dict[str, Any] = {}  # per-stream objects, by pipeline name
        self.note: str | None = None  # why the previous pipeline was not kept running
        self.errors, self.error = 0, None  # frames failed; the last failure while failing
        self._error_sent_at: float | None = None
        self.meter = PipelineMeter(self._clock)
        self.reported: protocol.PipelineState | None = None
        self._ticker: asyncio.Task[Any] | None = None
        self._closed = False
        self._models.listen(self._changed)

    @property
    def wanted(self) -> Pipeline | None:
        return self._wanted[0] if self._wanted else None

    # --- choosing ---
    def choose(self, pipeline: Pipeline, params: PipelineParams) -> None:
        """The stream wants ``pipeline`` now (a parameter set named it)."""
        if self._wanted is not None and pipeline is self._wanted[0]:
            self._wanted = (pipeline, params)
            return
        self._wanted = None  # whatever loads for an earlier wish goes on loading, unwanted
        if pipeline is self.current:
            self.params = params  # (a switch back during a load)
        elif self._models.ready(pipeline):
            self._switch(pipeline, params, note=None)
        elif (why_not := self._why_not_keep(pipeline)) is not None or not self._started:
            self._switch(pipeline, params, note=why_not)  # (nothing ran yet: nothing to keep)
        else:
            self._wanted, self.note = (pipeline, params), None
        self._tell()

    def _why_not_keep(self, pipeline: Pipeline) -> str | None:
        """Why the current pipeline cannot run on while ``pipeline`` loads (None: it can)."""
        failing = self.error is not None or self._models.failed(self.current) is not None
        return why_not_keep(
            self.current, pipeline, failing, self._models.failed(pipeline), self._engine.memory_mb
        )

    def _switch(self, pipeline: Pipeline, params: PipelineParams, note: str | None) -> None:
        if pipeline is not self.current:
            self._streams.pop(self.current.name, None)  # the old one's history is done
            self.meter.reset()
            self._started = False
            if self.error is not None:  # the old pipeline's failure is not the new one's
                self.error = None
                self._send(protocol.PipelineError(count=self.errors, message=None))
        self.current, self.params, self.note = pipeline, params, note

    def _advance(self) -> None:
        """The wanted pipeline's load ended (or failed): the stream moves over."""
        if self._wanted is None:
            return
        pipeline, params = self._wanted
        if self._models.ready(pipeline) or self._models.failed(pipeline):
            self._wanted = None
            self._switch(pipeline, params, note=None)

    def _changed(self, name: str) -> None:
        if name == self.current.name or (self._wanted and name == self._wanted[0].name):
            self._advance()
            self._tell()

    # --- frames ---
    async def process(self, frame: av.VideoFrame) -> av.VideoFrame:
        """The current pipeline's output for ``frame``; the frame itself, unprocessed,
        when the pipeline fails (told)."""
        self._warm_wanted(frame)
        pipeline, params = self.current, self.params
        started = self._clock.now()
        try:
            if self._models.ready(pipeline):
                out = await self._call(pipeline, params, frame)
            else:
                out = await self._load_and_call(pipeline, params, frame)
        except Exception as exc:  # a pipeline bug must not stop the stream
            self._failed(pipeline, exc)
            return frame
        if pipeline is self.current:
            self._started = True
            self.meter.add(self._clock.now() - started)
            self._recovered()
        return out

    async def _call(
        self,
        pipeline: Pipeline,
        params: PipelineParams,
        frame: av.VideoFrame,
        executor: Executor | None = None,
    ) -> av.VideoFrame:
        if getattr(pipeline, "is_identity", False):
            return frame  # nothing to compute: no thread hop, no RGB round trip
        stream = await self._stream_of(pipeline, executor)
        return await self._engine.runner.run(pipeline, params, frame, stream, executor)

    async def _stream_of(self, pipeline: Pipeline, executor: Executor | None) -> Any:
        make = getattr(pipeline, "session", None)
        if not callable(make):
            return None
        if (stream := self._streams.get(pipeline.name)) is None:
            pool = executor or self._engine.executor
            stream = await asyncio.get_running_loop().run_in_executor(pool, make)
            self._streams[pipeline.name] = stream
        return stream

    async def _load_and_call(
        self, pipeline: Pipeline, params: PipelineParams, frame: av.VideoFrame
    ) -> av.VideoFrame:
        """The frame's output once the pipeline is loaded: this frame is the load's first
        call when this starts the load; else it waits for the load, then runs."""
        load, mine = self._models.start(pipeline, self._first_call(pipeline, params, frame))
        self._watch_load()
        assert load.task is not None
        outcome = await asyncio.shield(load.task)  # a stream that leaves must not stop it
        if mine:
            if outcome.error is not None:
                raise outcome.error
            return outcome.value
        if load.state == "error":
            raise LoadFailed(load.error)
        return await self._call(pipeline, params, frame)

    def _first_call(self, pipeline: Pipeline, params: PipelineParams, frame: av.VideoFrame):
        return lambda executor: self._call(pipeline, params, frame, executor)

    def _warm_wanted(self, frame: av.VideoFrame) -> None:
        """Start the wanted pipeline's load (its first call needs a frame)."""
        if self._wanted is None:
            return
        pipeline, params = self._wanted
        if self._models.get(pipeline.name) is None:
            self._models.start(pipeline, self._first_call(pipeline, params, frame))
        self._watch_load()

    # --- failures ---
    def _failed(self, pipeline: Pipeline, exc: Exception) -> None:
        what = str(exc) if isinstance(exc, LoadFailed) else f"{type(exc).__name__}: {exc}"
        message = f"{pipeline.name}: {what}"
        self.errors += 1
        starting = self.error is None
        self.error = message
        if starting or self.errors % 100 == 0:
            logger.warning("pipeline failed (%d): %s", self.errors, message)
        now = self._clock.now()
        sent = self._error_sent_at
        if starting or sent is None or now - sent >= PIPELINE_ERROR_REPORT_S:
            self._error_sent_at = now
            self.send_error()
        self._tell()

    def _recovered(self) -> None:
        if self.error is not None:
            self.error = None
            logger.info("pipeline %s processes frames again", self.current.name)
            self.send_error()
        self._tell()

    def send_error(self) -> None:
        self._send(protocol.PipelineError(count=self.errors, message=self.error))

    # --- what the studio is told ---
    def _tell(self) -> None:
        state = self.state()
        if state is not None and state != self.reported:
            self.reported = state
            self._send(state)

    def state(self) -> protocol.PipelineState | None:
        """Where the stream's pipeline is (None: nothing to say yet)."""
        now = self._clock.now()
        if self._wanted is not None:
            load = self._models.get(self._wanted[0].name)
            if load is None or not self._shown(load, now):
                return None  # a quick load, or not begun: the running one is the news
            return loading_state(load, now, running=self.current.name, note=None)
        pipeline, load = self.current, self._models.get(self.current.name)
        if (failed := self._models.failed(pipeline)) is not None:
            return protocol.PipelineState(
                state="error", pipeline=pipeline.name, error=failed, note=self.note
            )
        if not self._models.ready(pipeline):
            if load is None or not self._shown(load, now):
                return None
            return loading_state(load, now, running=None, note=self.note)
        if self.error is not None:  # (its name said once: "sd failed: ValueError: ...")
            error = self.error.removeprefix(f"{pipeline.name}: ")
            return protocol.PipelineState(state="error", pipeline=pipeline.name, error=error)
        if not self._started:
            return None  # ready once its frames come
        shown = load is not None and (load.declared or (load.took_s or 0) >= PIPELINE_WARMUP_S)
        took = load.took_s if load is not None and shown else None
        return protocol.PipelineState(
            state="ready", pipeline=pipeline.name, elapsed_s=took, running=pipeline.name
        )

    def _shown(self, load: ModelLoad, now: float) -> bool:
        """A load is said once it is one: a declared load step at once, a first call
        once it takes longer than a frame should (the warm-up)."""
        quick = not load.declared and now - load.started_at < PIPELINE_WARMUP_S
        return load.state != "loading" or not quick

    def _loading_now(self) -> ModelLoad | None:
        pipeline = self.wanted or self.current
        load = self._models.get(pipeline.name)
        return load if load is not None and load.state == "loading" else None

    def _watch_load(self) -> None:
        if self._closed:  # a frame still in flight as the session closes
            return
        if self._ticker is None or self._ticker.done():
            self._ticker = self._spawn(self._tick(), "pipeline-loading")

    async def _tick(self) -> None:
        """Say the load's time so far about once a second while it lasts."""
        while (load := self._loading_now()) is not None:
            since = self._clock.now() - load.started_at
            wait = PIPELINE_LOADING_REPORT_S
            if not load.declared and since < PIPELINE_WARMUP_S:
                wait = PIPELINE_WARMUP_S - since
            await self._clock.sleep(wait)
            self._tell()

    def close(self) -> None:
        self._closed = True
        self._models.unlisten(self._changed)
        self._streams.clear()
