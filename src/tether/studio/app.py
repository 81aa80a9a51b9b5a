"""The studio's HTTP API, SSE stream and static web UI."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from tether import __version__
from tether.client.signaling import signaling_url
from tether.config import StudioSettings
from tether.media.frames import Signal
from tether.media.sdp_check import MAX_SDP_BYTES, BadOffer, check_offer_sdp
from tether.studio.fleet import parse_worker_specs
from tether.studio.guard import GuardPolicy, StudioGuard
from tether.studio.link import NotConnected
from tether.studio.metrics import render_metrics
from tether.studio.param_schema import ParametersRejected, check_update
from tether.studio.studio import Studio

logger = logging.getLogger(__name__)


class ConnectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker_url: str | None = Field(default=None, min_length=1, max_length=2048)
    token: str | None = Field(default=None, max_length=4096)


class OfferBody(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    sdp: str = Field(min_length=1, max_length=MAX_SDP_BYTES)
    type: Literal["offer"]
    initial_parameters: dict[str, Any] | None = Field(default=None, alias="initialParameters")


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


def create_studio_app(settings: StudioSettings) -> FastAPI:
    studio = Studio(settings)
    shutting_down = Signal()
    stopping = {"now": False}

    def begin_shutdown() -> None:
        stopping["now"] = True
        shutting_down.fire()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        # The server calls this when asked to stop, before it waits for open
        # connections: event streams end then, instead of holding the shutdown.
        app.state.begin_shutdown = lambda: loop.call_soon_threadsafe(begin_shutdown)
        await studio.start()
        yield
        begin_shutdown()
        await studio.close()

    app = FastAPI(title="Tether studio", version=__version__, lifespan=lifespan)
    app.state.studio = studio
    token = settings.studio_token.get_secret_value() if settings.studio_token else None
    policy = GuardPolicy(settings.host, list(settings.allow_hosts), token)
    app.add_middleware(StudioGuard, policy=policy)
    # A worker token goes only to the worker URL it was given for.
    # (A fleet's token goes to the workers its address names: the list, or the name's
    # addresses.)
    worker_tokens: dict[str, str] = {}

    def token_key(spec: str) -> str:
        return ",".join(
            s if s.startswith("dns+") else signaling_url(s) for s in parse_worker_specs([spec])
        )

    if settings.worker_url and settings.worker_token is not None:
        worker_tokens[token_key(settings.worker_url)] = settings.worker_token.get_secret_value()

    @app.exception_handler(RequestValidationError)
    async def bad_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        message = _validation_message(exc)
        return JSONResponse(
            status_code=422, content={"message": message, "detail": jsonable(exc.errors())}
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code, content={"message": exc.detail, "detail": exc.detail}
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            status_code=500, content={"message": f"internal error: {type(exc).__name__}"}
        )

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "link": studio.link.state.value}

    # --- link ---
    @app.post("/api/v1/cloud/connect")
    async def connect(body: ConnectBody | None = None) -> dict[str, Any]:
        body = body or ConnectBody()
        url = body.worker_url or studio.link.target or settings.worker_url
        if not url:
            raise HTTPException(422, "no worker URL: give worker_url, or start with --worker")
        try:
            parse_worker_specs([url])
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        if body.token is not None:
            worker_tokens[token_key(url)] = body.token
        await studio.link.connect(url, worker_tokens.get(token_key(url)))
        return studio.status()

    @app.post("/api/v1/cloud/disconnect")
    async def disconnect() -> dict[str, Any]:
        await studio.disconnect()
        return studio.status()

    @app.post("/api/v1/cloud/reconnect")
    async def reconnect() -> dict[str, Any]:
        if (restart := getattr(app.state, "on_retry", None)) is not None:
            restart()  # `tether up`: a dead worker of its own starts again now
        try:
            await studio.link.reconnect()
        except NotConnected as exc:
            raise HTTPException(409, str(exc)) from None
        return studio.status()

    @app.get("/api/v1/cloud/status")
    async def status() -> dict[str, Any]:
        return studio.status()

    @app.get("/api/v1/cloud/events")
    async def events(request: Request) -> StreamingResponse:
        async def stream() -> AsyncIterator[str]:
            last = None
            while True:
                current = json.dumps(studio.status())
                if current != last:
                    yield f"event: status\ndata: {current}\n\n"
                    last = current
                waits = [studio.link.changed.future(), shutting_down.future()]
                await asyncio.wait(waits, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                if stopping["now"] or await request.is_disconnected():
                    return

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    # Fault injection for tests and demos; absent (404) unless TETHER_DEBUG_ENDPOINTS=1.
    drops = {"webrtc": studio.link.debug_drop_media, "signaling": studio.link.debug_drop_signaling}

    @app.post("/api/v1/cloud/debug/disconnect-{what}")
    async def debug_disconnect(what: str) -> dict[str, Any]:
        if not settings.debug_endpoints or what not in drops:
            raise HTTPException(404, "Not Found")
        await drops[what]()
        return studio.status()

    # --- stream ---
    @app.post("/api/v1/webrtc/offer")
    async def offer(body: OfferBody) -> dict[str, Any]:
        # Checked in full before the offer takes over: a rejected one changes nothing.
        if body.initial_parameters:
            check_parameters(body.initial_parameters)
        try:
            check_offer_sdp(body.sdp)
        except BadOffer as exc:
            raise HTTPException(400, f"could not accept the offer: {exc}") from None
        try:
            return await studio.offer(body.sdp, body.type, body.initial_parameters)
        except ValueError as exc:
            raise HTTPException(400, f"could not accept the offer: {exc}") from None
        except Exception as exc:  # aiortc may trip on a hostile offer in its own ways
            logger.warning("offer refused: %s", exc, exc_info=True)
            raise HTTPException(400, f"could not accept the offer ({type(exc).__name__})") from None

    @app.post("/api/v1/webrtc/stop")
    async def stop_stream() -> dict[str, Any]:
        await studio.stop_stream()
        return studio.status()

    # --- parameters ---
    def check_parameters(changes: dict[str, Any]) -> None:
        try:
            check_update(studio.known_pipelines(), studio.params.parameters, changes)
        except ParametersRejected as exc:
            raise HTTPException(422, str(exc)) from None

    @app.get("/api/v1/parameters")
    async def get_parameters() -> dict[str, Any]:
        return studio.params.snapshot()

    @app.post("/api/v1/parameters")
    async def set_parameters(changes: dict[str, Any]) -> dict[str, Any]:
        check_parameters(changes)
        return studio.update_parameters(changes)

    @app.get("/api/v1/pipelines")
    async def pipelines() -> dict[str, Any]:
        return {
            "pipelines": studio.known_pipelines(),
            "worker_url": studio.link.worker_url,
            "default": settings.pipeline or "passthrough",
        }

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(render_metrics(studio), media_type="text/plain; version=0.0.4")

    web = files("tether") / "web"
    app.mount("/", StaticFiles(directory=str(web), html=True), name="web")
    return app


def jsonable(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]
