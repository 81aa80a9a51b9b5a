"""The session's parameters: read them, or change some. A change is checked against the
chosen pipeline's schema first (a rejected one changes nothing), then stored at a new
version, and the link sends it to the worker (``Studio.update_parameters``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from tether.studio.param_schema import ParametersRejected, check_update
from tether.studio.routes.deps import StudioDep
from tether.studio.studio import Studio

router = APIRouter()


def check_parameters(studio: Studio, changes: dict[str, Any]) -> None:
    """HTTP 422 naming the field, for a change the chosen pipeline would refuse."""
    try:
        check_update(studio.known_pipelines(), studio.params.parameters, changes)
    except ParametersRejected as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/api/v1/parameters")
async def get_parameters(studio: StudioDep) -> dict[str, Any]:
    return studio.params.snapshot()


@router.post("/api/v1/parameters")
async def set_parameters(changes: dict[str, Any], studio: StudioDep) -> dict[str, Any]:
    check_parameters(studio, changes)
    return studio.update_parameters(changes)
