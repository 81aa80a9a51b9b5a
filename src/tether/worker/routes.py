"""The worker's HTTP and WebSocket routes as module-level routers: the probes (open to
anyone), the API under /api/v1 (behind the worker's token), and the signaling socket.
What a route needs reaches it as a typed dependency (``WorkerDep``: the worker that
``create_worker_app`` put on the app's state), so a reader can follow a request from its
route into ``Worker`` and on to the session's pipeline. ``HTTPConnection`` serves both
HTTP requests and the WebSocket."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, WebSocket
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection

from tether import __version__, protocol
from tether.worker.signaling import SignalingConnection
from tether.worker.worker import Worker


async def worker_of(connection: HTTPConnection) -> Worker:
    worker: Worker = connection.app.state.worker
    return worker


WorkerDep = Annotated[Worker, Depends(worker_of)]


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


async def require_token(
    worker: WorkerDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    if not worker.check_token(bearer(authorization)):
        raise HTTPException(401, "missing or invalid token (Authorization: Bearer <token>)")


# --- probes: liveness and readiness, for a load balancer or Kubernetes ---
probes = APIRouter()


@probes.get("/health")
async def health(worker: WorkerDep) -> dict[str, Any]:
    return {
        "status": "ok",
        "version": __version__,
        "sessions": len(worker.sessions),
        "uptime_s": round(worker.clock.now() - worker.started_at, 1),
    }


@probes.get("/ready")
async def ready(worker: WorkerDep) -> JSONResponse:
    """Readiness for a load balancer or Kubernetes: 503 when full or draining."""
    ok, why = worker.capacity.ready(worker.held())
    return JSONResponse({"ready": ok, "state": why}, status_code=200 if ok else 503)


# --- the API: every route takes the worker's token ---
api = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])


@api.get("/sessions")
async def sessions(worker: WorkerDep) -> dict[str, Any]:
    return {"sessions": [s.describe() for s in worker.sessions.values()]}


@api.get("/load")
async def load(worker: WorkerDep) -> dict[str, Any]:
    return worker.load()


@api.get("/models")
async def models(worker: WorkerDep) -> dict[str, Any]:
    """The pipelines this process has loaded or is loading (each once), and the limits."""
    engine = worker.engine
    return {
        "models": engine.models.describe(),
        "load_timeout_s": engine.models.deadline_s,
        "model_memory_mb": engine.memory_mb,
    }


@api.post("/drain")
async def drain(worker: WorkerDep) -> dict[str, Any]:
    """Start draining (what SIGTERM does); poll /api/v1/load until sessions is 0."""
    worker.begin_drain()
    return worker.load()


@api.get("/pipelines")
async def pipelines(worker: WorkerDep) -> dict[str, Any]:
    return {"pipelines": worker.pipeline_catalog()}


# --- the signaling socket: the token is checked after the handshake, so that a refusal
# is a close frame with a reason the studio can show ---
signaling = APIRouter()


@signaling.websocket("/ws")
async def signaling_socket(websocket: WebSocket, worker: WorkerDep) -> None:
    # The header only: a URL ends up in access logs and proxies' logs.
    token = bearer(websocket.headers.get("authorization"))
    await websocket.accept()
    if "token" in websocket.query_params:
        await websocket.close(
            protocol.AUTH_FAILED_CLOSE_CODE,
            "token in the URL refused: send it as 'Authorization: Bearer <token>'",
        )
        return
    if not worker.check_token(token):
        reason = "invalid token" if token else "missing token"
        await websocket.close(protocol.AUTH_FAILED_CLOSE_CODE, f"{reason}: authentication failed")
        return
    await SignalingConnection(worker, websocket).run()
