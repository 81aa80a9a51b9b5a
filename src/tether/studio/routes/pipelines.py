"""The pipelines the worker offers (with their parameter schemas), and the default."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tether.studio.routes.deps import StudioDep

router = APIRouter()


@router.get("/api/v1/pipelines")
async def pipelines(studio: StudioDep) -> dict[str, Any]:
    return {
        "pipelines": studio.known_pipelines(),
        "worker_url": studio.link.worker_url,
        "default": studio.settings.pipeline or "passthrough",
    }
