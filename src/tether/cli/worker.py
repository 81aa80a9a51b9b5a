"""`tether worker`: run an inference worker."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from tether.cli.log_setup import setup_logging
from tether.cli.media_setup import apply_media_settings
from tether.cli.options import Serving, TokenFile, with_serving_options
from tether.cli.serving import read_token, serve
from tether.config import WorkerSettings

LoadTimeout = Annotated[
    float,
    typer.Option(
        envvar="TETHER_LOAD_TIMEOUT_S",
        min=0.001,
        help="a pipeline's load (load step and first frame) that takes longer is an error",
    ),
]
ModelMemory = Annotated[
    int | None,
    typer.Option(
        envvar="TETHER_MODEL_MEMORY_MB",
        min=0,
        help="memory for models (MB): a switch keeps the running one only where both fit",
    ),
]


@with_serving_options
def worker(
    host: Annotated[str, typer.Option(envvar="TETHER_WORKER_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="TETHER_WORKER_PORT")] = 8765,
    token: Annotated[
        str | None, typer.Option(envvar="TETHER_WORKER_TOKEN", help="required from clients")
    ] = None,
    session_grace_s: Annotated[float, typer.Option(envvar="TETHER_SESSION_GRACE_S")] = 30.0,
    max_sessions: Annotated[
        int,
        typer.Option(
            envvar="TETHER_MAX_SESSIONS", min=1, help="sessions at once; more are refused as busy"
        ),
    ] = 1,
    drain_s: Annotated[
        float,
        typer.Option(
            envvar="TETHER_DRAIN_S", min=0, help="on SIGTERM, wait this long for studios to move"
        ),
    ] = 30.0,
    load_timeout_s: LoadTimeout = 180.0,
    model_memory_mb: ModelMemory = None,
    parent_pid: Annotated[int | None, typer.Option(envvar="TETHER_PARENT_PID", hidden=True)] = None,
    token_file: TokenFile = None,
    serving: Serving = Serving(),
) -> None:
    """Run an inference worker (WebSocket signaling at /ws)."""
    from tether.protocol import MAX_MESSAGE_BYTES
    from tether.worker.app import create_worker_app
    from tether.worker.guard import BACKLOG, connection_cap, guarded_protocol, raise_fd_limit

    setup_logging(serving.log_level, "worker")
    token = read_token(token, token_file)
    if token is None:
        logging.getLogger("tether").warning("no token set: any client may connect")
    settings = WorkerSettings(
        host=host,
        port=port,
        token=token,
        session_grace_s=session_grace_s,
        max_sessions=max_sessions,
        drain_s=drain_s,
        load_timeout_s=load_timeout_s,
        model_memory_mb=model_memory_mb,
        parent_pid=parent_pid,
        ice_hosts=serving.ice_hosts,
    )
    apply_media_settings(settings)
    cap = connection_cap(settings.max_connections, raise_fd_limit())
    protocol = guarded_protocol(settings.header_timeout_s, cap)
    serve(
        create_worker_app(settings),
        host,
        port,
        serving,
        http=protocol,
        ws="websockets-sansio",
        ws_max_size=MAX_MESSAGE_BYTES,
        backlog=BACKLOG,
    )
