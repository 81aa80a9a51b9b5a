"""What runs pipelines in one worker process, shared by its sessions: the frame thread
pool, the load thread pool, the pipeline loop (for async pipelines), the runner and
the models (each loaded once per process)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tether.clock import Clock, MonotonicClock
from tether.worker.models import DEFAULT_LOAD_TIMEOUT_S, Models
from tether.worker.pipeline_loop import PipelineLoop
from tether.worker.runner import PipelineRunner

FRAME_THREADS = 2
LOAD_THREADS = 2  # two loads at once; a load never takes a frame's thread


class Engine:
    def __init__(
        self,
        executor: ThreadPoolExecutor | None = None,
        clock: Clock | None = None,
        load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S,
        memory_mb: int | None = None,
    ) -> None:
        self.clock = clock or MonotonicClock()
        self.executor = executor or ThreadPoolExecutor(FRAME_THREADS, "pipeline")
        self.load_executor = ThreadPoolExecutor(LOAD_THREADS, "pipeline-load")
        self.pipeline_loop = PipelineLoop()
        self.runner = PipelineRunner(self.executor, self.pipeline_loop)
        self.models = Models(self.load_executor, self.clock, load_timeout_s, self.pipeline_loop)
        self.memory_mb = memory_mb  # None: not limited

    async def close(self) -> None:
        await self.models.close()
        await self.runner.close()
        # A load past its deadline may still run: it is not waited for.
        self.load_executor.shutdown(wait=False, cancel_futures=True)
