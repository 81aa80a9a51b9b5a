"""What a browser or a probe loads outside the API: the page's files (with the status's
JSON Schema beside them) and ``/health``."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from tether import __version__
from tether.studio.routes.deps import StudioDep

router = APIRouter()


@router.get("/health")
async def health(studio: StudioDep) -> dict[str, Any]:
    return {"status": "ok", "version": __version__, "link": studio.link.state.value}


def mount_page(app: FastAPI) -> None:
    """The page, at /: mounted last, so every route above is matched first."""
    web = files("tether") / "web"
    app.mount("/", StaticFiles(directory=str(web), html=True), name="web")
