"""The studio's HTTP app: the guard in front, the routers (``tether.studio.routes``),
the page, and a lifespan that installs the aiortc adapter, starts the studio, and
closes both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tether import __version__
from tether.config import StudioSettings
from tether.doctor.service import DoctorRuns
from tether.rtc.adapter import MediaAdapter
from tether.rtc.ice import host_of
from tether.studio.fleet import parse_worker_specs
from tether.studio.guard import GuardPolicy, StudioGuard
from tether.studio.metrics import metrics_registry
from tether.studio.routes import cloud, doctor, events, metrics, page, parameters, pipelines, stream
from tether.studio.routes.errors import ERROR_HANDLERS
from tether.studio.routes.events import Shutdown
from tether.studio.studio import Studio
from tether.studio.worker_tokens import WorkerTokens

ROUTERS = (
    page.router,
    cloud.router,
    events.router,
    stream.router,
    parameters.router,
    pipelines.router,
    metrics.router,
    doctor.router,
)


@asynccontextmanager
async def studio_lifespan(app: FastAPI) -> AsyncIterator[None]:
    studio: Studio = app.state.studio
    shutdown: Shutdown = app.state.shutdown
    loop = asyncio.get_running_loop()
    # The server calls this when asked to stop, before it waits for open
    # connections: event streams end then, instead of holding the shutdown.
    app.state.begin_shutdown = lambda: loop.call_soon_threadsafe(shutdown.begin)
    media: MediaAdapter = app.state.media
    with media.installed():
        await studio.start()
        yield
        shutdown.begin()
        await app.state.doctor.close()  # a test session is closed before the link
        await studio.close()


def studio_media(settings: StudioSettings) -> MediaAdapter:
    """The aiortc adapter of a studio with ``settings``: its peers are the browser (on
    its host) and its workers."""
    specs = parse_worker_specs([settings.worker_url] if settings.worker_url else [])
    workers = [host_of(spec.removeprefix("dns+")) for spec in specs]
    return MediaAdapter.from_settings(settings, [settings.host, *workers])


def create_studio_app(settings: StudioSettings) -> FastAPI:
    studio = Studio(settings)
    app = FastAPI(title="Tether studio", version=__version__, lifespan=studio_lifespan)
    app.state.studio = studio
    app.state.media = studio_media(settings)
    app.state.tokens = WorkerTokens.from_settings(settings)
    app.state.shutdown = Shutdown()
    app.state.doctor = DoctorRuns()
    app.state.metrics = metrics_registry(studio.status)
    token = settings.studio_token.get_secret_value() if settings.studio_token else None
    app.add_middleware(
        StudioGuard, policy=GuardPolicy(settings.host, list(settings.allow_hosts), token)
    )
    for error, handler in ERROR_HANDLERS:
        app.add_exception_handler(error, handler)
    for router in ROUTERS:
        app.include_router(router)
    page.mount_page(app)
    return app
