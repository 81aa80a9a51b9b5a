"""The status as server-sent events: a ``status`` event whenever it changes, until the
client goes or the app stops."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from tether.media.frames import Signal
from tether.studio.routes.deps import StudioDep
from tether.studio.studio import Studio
from tether.timing import STATUS_EVENTS_WAKE_S

router = APIRouter()


class Shutdown:
    """The app is stopping: open event streams end now instead of holding the server."""

    def __init__(self) -> None:
        self.now = False
        self.signal = Signal()

    def begin(self) -> None:
        self.now = True
        self.signal.fire()


async def shutdown_of(request: Request) -> Shutdown:
    shutdown: Shutdown = request.app.state.shutdown
    return shutdown


@router.get("/api/v1/cloud/events")
async def events(
    request: Request, studio: StudioDep, shutdown: Annotated[Shutdown, Depends(shutdown_of)]
) -> StreamingResponse:
    return StreamingResponse(
        status_events(request, studio, shutdown),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


async def status_events(request: Request, studio: Studio, shutdown: Shutdown) -> AsyncIterator[str]:
    last = None
    while True:
        current = json.dumps(studio.status().model_dump(mode="json"))
        if current != last:
            yield f"event: status\ndata: {current}\n\n"
            last = current
        waits = [studio.link.changed.future(), shutdown.signal.future()]
        await asyncio.wait(waits, timeout=STATUS_EVENTS_WAKE_S, return_when=asyncio.FIRST_COMPLETED)
        if shutdown.now or await request.is_disconnected():
            return
