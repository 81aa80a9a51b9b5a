"""`tether up`: the studio plus a worker of its own on loopback, restarted if it dies."""

from __future__ import annotations

import secrets
import webbrowser
from typing import Annotated

import typer

from tether.cli.console import console, fail
from tether.cli.log_setup import redact, setup_logging
from tether.cli.media_setup import apply_media_settings
from tether.cli.options import LogLevel, Serving
from tether.cli.serving import serve
from tether.cli.studio import studio_settings, studio_token
from tether.cli.worker import LoadTimeout, ModelMemory


def up(
    host: Annotated[str, typer.Option(envvar="TETHER_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="TETHER_PORT")] = 8000,
    pipeline: Annotated[
        str | None,
        typer.Option(envvar="TETHER_PIPELINE", metavar="NAME", help="the page's first pipeline"),
    ] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", envvar="TETHER_NO_BROWSER")] = False,
    load_timeout_s: LoadTimeout = 180.0,
    model_memory_mb: ModelMemory = None,
    log_level: LogLevel = "info",
) -> None:
    """Studio plus an embedded worker on loopback (restarted if it dies): the main job."""
    from tether.cli.worker_process import WorkerProcess
    from tether.studio.app import create_studio_app
    from tether.tools.errors import RunError
    from tether.tools.processes import free_port

    setup_logging(log_level, "studio")
    token = secrets.token_urlsafe(24)
    models = ["--load-timeout-s", f"{load_timeout_s:.15g}"]  # (exact, and 45 not 45.0)
    if model_memory_mb is not None:
        models += ["--model-memory-mb", str(model_memory_mb)]
    worker = WorkerProcess(free_port(), token, log_level, models)
    try:
        try:
            worker.start()
        except RunError as exc:
            raise fail(f"the worker did not start: {exc}", 1) from None
        if pipeline is not None:
            _check_pipeline(worker.url, token, pipeline)
        settings = studio_settings(
            host=host, port=port, worker_url=worker.url, worker_token=token, pipeline=pipeline
        )
        apply_media_settings(settings)
        redact.add(token)
        studio_token(settings, "http")
        url = f"http://{host}:{port}/"
        console.print(f"[bold green]Tether studio[/bold green] at {url}")
        if not no_browser:
            webbrowser.open(url)
        studio_app = create_studio_app(settings)
        studio_app.state.on_retry = worker.restart_now  # Retry restarts a dead worker at once
        serve(studio_app, host, port, Serving(log_level=log_level))
    finally:
        worker.stop()


def _check_pipeline(worker_url: str, token: str, name: str) -> None:
    """Refuse an unknown --pipeline at start, naming the ones the worker has."""
    import httpx

    from tether.pipelines import UnknownPipeline

    reply = httpx.get(
        f"{worker_url}/api/v1/pipelines", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    known = [p["name"] for p in reply.json()["pipelines"]]
    if name not in known:
        raise fail(UnknownPipeline(name, known).message)
