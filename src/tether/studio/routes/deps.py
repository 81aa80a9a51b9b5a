"""What a route needs from its app, as typed dependencies. Handlers are plain
module-level functions that name what they need; FastAPI hands it over from the app's
state (set once by ``create_studio_app``). They are coroutines: a plain function would
run on a worker thread for each request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tether.studio.studio import Studio
from tether.studio.worker_tokens import WorkerTokens


async def studio_of(request: Request) -> Studio:
    studio: Studio = request.app.state.studio
    return studio


async def tokens_of(request: Request) -> WorkerTokens:
    tokens: WorkerTokens = request.app.state.tokens
    return tokens


StudioDep = Annotated[Studio, Depends(studio_of)]
TokensDep = Annotated[WorkerTokens, Depends(tokens_of)]
