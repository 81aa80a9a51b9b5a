"""``GET /metrics``: the status in Prometheus' text format, from the app's own registry."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CollectorRegistry

from tether.studio.metrics import CONTENT_TYPE, render_metrics

router = APIRouter()


@router.get("/metrics")
async def metrics(request: Request) -> PlainTextResponse:
    registry: CollectorRegistry = request.app.state.metrics
    return PlainTextResponse(render_metrics(registry), media_type=CONTENT_TYPE)
