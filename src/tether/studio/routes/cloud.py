"""The worker link: connect, disconnect, retry, its status and the status's schema, and
(for tests and demos) dropping it on purpose."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from tether.studio.cloud_status import CloudStatus, status_schema
from tether.studio.fleet import parse_worker_specs
from tether.studio.link import NotConnected
from tether.studio.routes.deps import StudioDep, TokensDep

router = APIRouter()


class ConnectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker_url: str | None = Field(default=None, min_length=1, max_length=2048)
    token: str | None = Field(default=None, max_length=4096)


@router.post("/api/v1/cloud/connect")
async def connect(
    studio: StudioDep, tokens: TokensDep, body: ConnectBody | None = None
) -> CloudStatus:
    body = body or ConnectBody()
    url = body.worker_url or studio.link.target or studio.settings.worker_url
    if not url:
        raise HTTPException(422, "no worker URL: give worker_url, or start with --worker")
    try:
        if not parse_worker_specs([url]):
            raise ValueError("no worker URL in it")
    except ValueError as exc:
        raise HTTPException(422, f"worker_url: {exc}") from None
    if body.token is not None:
        tokens.give(url, body.token)
    await studio.link.connect(url, tokens.token_for(url))
    return studio.status()


@router.post("/api/v1/cloud/disconnect")
async def disconnect(studio: StudioDep) -> CloudStatus:
    await studio.disconnect()
    return studio.status()


@router.post("/api/v1/cloud/reconnect")
async def reconnect(request: Request, studio: StudioDep) -> CloudStatus:
    if (restart := getattr(request.app.state, "on_retry", None)) is not None:
        restart()  # `tether up`: a dead worker of its own starts again now
    try:
        await studio.link.reconnect()
    except NotConnected as exc:
        raise HTTPException(409, str(exc)) from None
    return studio.status()


@router.get("/api/v1/cloud/status")
async def status(studio: StudioDep) -> CloudStatus:
    return studio.status()


@router.get("/api/v1/cloud/status/schema")
async def schema() -> dict[str, Any]:
    return _schema()


@cache
def _schema() -> dict[str, Any]:
    return status_schema()


# Fault injection for tests and demos; absent (404) unless TETHER_DEBUG_ENDPOINTS=1.
@router.post("/api/v1/cloud/debug/disconnect-{what}")
async def debug_disconnect(what: str, studio: StudioDep) -> CloudStatus:
    drops = {"webrtc": studio.link.debug_drop_media, "signaling": studio.link.debug_drop_signaling}
    if not studio.settings.debug_endpoints or what not in drops:
        raise HTTPException(404, "Not Found")
    await drops[what]()
    return studio.status()
