"""The worker's app: its routers (``tether.worker.routes``) around one ``Worker``, and
the lifespan that starts and stops it."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tether import __version__
from tether.clock import Clock
from tether.config import WorkerSettings
from tether.rtc.adapter import MediaAdapter
from tether.timing import PARENT_WATCH_S
from tether.worker import routes
from tether.worker.worker import Worker

logger = logging.getLogger(__name__)


@asynccontextmanager
async def worker_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Watch the parent (under `tether up`), offer the server a drain for SIGTERM, and
    close the worker (its sessions, tasks and thread pool) at shutdown."""
    worker: Worker = app.state.worker
    settings = worker.settings
    if settings.parent_pid:
        worker.tasks.spawn(_exit_with_parent(settings.parent_pid, worker.clock), "parent-watch")
    loop = asyncio.get_running_loop()

    async def drain_then(exit_now: Callable[[], None]) -> None:
        worker.begin_drain()
        await worker.drained()
        exit_now()

    # The server calls this on SIGTERM, from its signal handler: drain, then exit.
    app.state.request_drain = lambda exit_now: loop.call_soon_threadsafe(
        lambda: worker.tasks.spawn(drain_then(exit_now), "drain")
    )
    yield
    await worker.close()


def create_worker_app(settings: WorkerSettings) -> FastAPI:
    media = MediaAdapter.from_settings(settings, [settings.host])  # for as long as the app runs
    app = FastAPI(
        title="Tether worker", version=__version__, lifespan=media.around(worker_lifespan)
    )
    app.state.worker = Worker(settings)
    for router in (routes.probes, routes.api, routes.signaling):
        app.include_router(router)
    return app


async def _exit_with_parent(parent_pid: int, clock: Clock) -> None:
    """`tether up` starts us; if it dies without stopping us, stop ourselves."""
    while os.getppid() == parent_pid:  # nothing to wait on but a poll
        await clock.sleep(PARENT_WATCH_S)
    logger.warning("parent process %d is gone; shutting down", parent_pid)
    os.kill(os.getpid(), signal.SIGTERM)
