"""Every error answers JSON with a ``message`` a person can read: a bad body (422)
names the field, an HTTP error says why, and an unexpected one names only its type."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

logger = logging.getLogger(__name__)


def validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


def jsonable(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]


async def bad_body(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    content = {"message": validation_message(exc), "detail": jsonable(exc.errors())}
    return JSONResponse(status_code=422, content=content)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        status_code=exc.status_code, content={"message": exc.detail, "detail": exc.detail}
    )


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(
        status_code=500, content={"message": f"internal error: {type(exc).__name__}"}
    )


ERROR_HANDLERS = (
    (RequestValidationError, bad_body),
    (HTTPException, http_error),
    (Exception, unexpected),
)
