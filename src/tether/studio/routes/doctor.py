"""The page's "Test connection": run ``tether doctor``'s checks against the worker the
studio is set to, with the studio's token for it; poll for progress and the report.
A POST is state-changing (the guard's Origin check applies); one run at a time (409)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from tether.doctor import DoctorOptions
from tether.doctor.service import DoctorRuns
from tether.studio.routes.deps import StudioDep, TokensDep

router = APIRouter()


async def runs_of(request: Request) -> DoctorRuns:
    runs: DoctorRuns = request.app.state.doctor
    return runs


RunsDep = Annotated[DoctorRuns, Depends(runs_of)]


class DoctorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pipeline: str | None = Field(default=None, min_length=1, max_length=200)
    seconds: float = Field(default=6.0, ge=1, le=30)


@router.post("/api/v1/doctor", status_code=202)
async def start(
    studio: StudioDep, tokens: TokensDep, runs: RunsDep, body: DoctorBody | None = None
) -> dict[str, Any]:
    body = body or DoctorBody()
    status = studio.status()
    spec = studio.link.target or studio.settings.worker_url
    url = status.worker_url or spec
    if not url:
        raise HTTPException(422, "no worker to test: connect to a worker first")
    token = (tokens.token_for(spec) if spec else None) or tokens.token_for(url)
    pipeline = body.pipeline or str(studio.params.parameters.get("pipeline") or "passthrough")
    options = DoctorOptions(
        url,
        token,
        pipeline=pipeline,
        media_s=body.seconds,
        own_sessions=1 if status.webrtc_connected else 0,
    )
    if not runs.start(options):
        raise HTTPException(409, "a connection test is already running")
    return runs.snapshot()


@router.get("/api/v1/doctor")
async def progress(runs: RunsDep) -> dict[str, Any]:
    return runs.snapshot()
