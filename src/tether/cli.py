"""The `tether` command. The only place that configures logging."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import webbrowser
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console
from rich.logging import RichHandler

from tether import __version__
from tether.config import StudioSettings, WorkerSettings
from tether.rtc import host_of, resolve_ice_mode, use_eager_release, use_ice_hosts

app = typer.Typer(
    help="Tether: keep a live video stream tethered to a remote GPU worker.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

LogLevel = Annotated[
    str, typer.Option("--log-level", envvar="TETHER_LOG_LEVEL", help="debug, info, warning, error")
]
IceHosts = Annotated[
    str,
    typer.Option(
        "--ice-hosts", envvar="TETHER_ICE_HOSTS", help="ICE host candidates: auto, loopback or all"
    ),
]


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)],
    )
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("aiortc").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _apply_media_settings(settings: StudioSettings | WorkerSettings) -> None:
    use_eager_release(settings.eager_release)
    if settings.trace_dir:
        from tether import trace

        trace.enable(settings.trace_dir)


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


class _Server(uvicorn.Server):
    _draining = False

    def handle_exit(self, sig: int, frame: Any) -> None:
        # A worker drains on its first SIGTERM (its studios move first); a second
        # signal, or Ctrl-C, stops at once.
        drain = getattr(self.config.app.state, "request_drain", None)
        if drain is not None and sig == signal.SIGTERM and not self._draining:
            self._draining = True
            drain(lambda: uvicorn.Server.handle_exit(self, sig, frame))
            return
        begin = getattr(self.config.app.state, "begin_shutdown", None)
        if begin is not None:
            begin()
        super().handle_exit(sig, frame)


def _serve(app_: Any, host: str, port: int, level: str) -> None:
    config = uvicorn.Config(
        app_,
        host=host,
        port=port,
        log_level=level.lower(),
        log_config=None,
        timeout_graceful_shutdown=2,
    )
    # uvicorn re-raises Ctrl-C after its graceful shutdown; that is a clean stop.
    with contextlib.suppress(KeyboardInterrupt):
        _Server(config).run()


@app.command()
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
    parent_pid: Annotated[int | None, typer.Option(envvar="TETHER_PARENT_PID", hidden=True)] = None,
    ice_hosts: IceHosts = "auto",
    log_level: LogLevel = "info",
) -> None:
    """Run an inference worker (WebSocket signaling at /ws)."""
    from tether.worker.app import create_worker_app

    _setup_logging(log_level)
    use_ice_hosts(resolve_ice_mode(ice_hosts, [host]))
    if token is None:
        logging.getLogger("tether").warning("no token set: any client may connect")
    settings = WorkerSettings(
        host=host,
        port=port,
        token=token,
        session_grace_s=session_grace_s,
        max_sessions=max_sessions,
        drain_s=drain_s,
        parent_pid=parent_pid,
    )
    _apply_media_settings(settings)
    _serve(create_worker_app(settings), host, port, log_level)


def _studio_settings(**overrides: Any) -> StudioSettings:
    return StudioSettings(**{k: v for k, v in overrides.items() if v is not None})


@app.command()
def studio(
    host: Annotated[str, typer.Option(envvar="TETHER_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="TETHER_PORT")] = 8000,
    workers: Annotated[
        list[str] | None,
        typer.Option(
            "--worker",
            envvar="TETHER_WORKER_URL",
            help="a worker URL; repeat, or comma-separate, for a fleet; dns+http://NAME:PORT "
            "for every address NAME resolves to",
        ),
    ] = None,
    token: Annotated[str | None, typer.Option(envvar="TETHER_WORKER_TOKEN")] = None,
    ice_hosts: IceHosts = "auto",
    log_level: LogLevel = "info",
) -> None:
    """Run the studio (HTTP API + web UI); connects at start when --worker is given."""
    from tether.studio.app import create_studio_app
    from tether.studio.fleet import parse_worker_specs

    _setup_logging(log_level)
    try:
        specs = parse_worker_specs(workers or [])
    except ValueError as exc:
        raise _fail(str(exc)) from None
    worker = ",".join(specs) or None
    peers = [host] + [host_of(s.removeprefix("dns+")) for s in specs]
    use_ice_hosts(resolve_ice_mode(ice_hosts, peers))
    settings = _studio_settings(host=host, port=port, worker_url=worker, worker_token=token)
    _apply_media_settings(settings)
    _serve(create_studio_app(settings), host, port, log_level)


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@app.command()
def up(
    host: Annotated[str, typer.Option(envvar="TETHER_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="TETHER_PORT")] = 8000,
    pipeline: Annotated[
        str | None, typer.Option(envvar="TETHER_PIPELINE", help="pipeline for new streams")
    ] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", envvar="TETHER_NO_BROWSER")] = False,
    log_level: LogLevel = "info",
) -> None:
    """Studio plus an embedded worker on loopback: the default main job."""
    from tether.runner import RunError, free_port, wait_healthy
    from tether.studio.app import create_studio_app

    _setup_logging(log_level)
    use_ice_hosts(resolve_ice_mode("auto", [host]))
    worker_port = free_port()
    token = secrets.token_urlsafe(24)
    worker_url = f"http://127.0.0.1:{worker_port}"
    env = {**os.environ, "TETHER_WORKER_TOKEN": token}  # not on the command line: ps shows that
    cmd = [sys.executable, "-m", "tether", "worker", "--host", "127.0.0.1"]
    cmd += ["--port", str(worker_port), "--parent-pid", str(os.getpid()), "--log-level", log_level]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        try:
            wait_healthy(worker_url, proc, deadline_s=30)
        except RunError as exc:
            raise _fail(f"the worker did not start: {exc}", 1) from None
        settings = _studio_settings(
            host=host, port=port, worker_url=worker_url, worker_token=token, pipeline=pipeline
        )
        _apply_media_settings(settings)
        url = f"http://{host}:{port}/"
        console.print(
            f"[bold green]Tether studio[/bold green] at {url} (worker on port {worker_port})"
        )
        if not no_browser:
            webbrowser.open(url)
        _serve(create_studio_app(settings), host, port, log_level)
    finally:
        _stop_process(proc)


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _fail(f"--param takes key=value, got {pair!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


@app.command()
def run(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="video file to process")],
    output: Annotated[Path, typer.Option("-o", "--output", help="where to write the result")],
    pipeline: Annotated[str, typer.Option(envvar="TETHER_PIPELINE")] = "passthrough",
    param: Annotated[
        list[str] | None, typer.Option("--param", help="key=value, repeatable")
    ] = None,
    worker: Annotated[str | None, typer.Option("--worker", envvar="TETHER_WORKER_URL")] = None,
    token: Annotated[str | None, typer.Option(envvar="TETHER_WORKER_TOKEN")] = None,
    log_level: LogLevel = "warning",
) -> None:
    """Stream a video file through a worker (embedded unless --worker) into OUTPUT."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tether.client.signaling import SignalingError
    from tether.runner import RunError, run_file

    _setup_logging(log_level)
    use_ice_hosts(resolve_ice_mode("auto", [host_of(worker)] if worker else []))
    _apply_media_settings(StudioSettings())
    params = {**_parse_params(param or []), "pipeline": pipeline}
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("in {task.fields[frames_in]}"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task(f"{pipeline}", total=None, frames_in=0)

        def on_progress(frames_in: int, frames_out: int, total: int | None) -> None:
            progress.update(task, completed=frames_out, total=total, frames_in=frames_in)

        try:
            result = asyncio.run(run_file(input_path, output, params, worker, token, on_progress))
        except (RunError, SignalingError) as exc:
            progress.stop()
            raise _fail(str(exc)) from None
    console.print(
        f"frames in {result.frames_in}, out {result.frames_out}, "
        f"{result.fps:.1f} fps, {result.seconds:.1f}s -> {result.output}"
    )


@app.command()
def drain(
    worker_url: Annotated[
        str, typer.Option("--worker", envvar="TETHER_DRAIN_WORKER_URL", help="the worker to drain")
    ] = "http://127.0.0.1:8765",
    token: Annotated[str | None, typer.Option(envvar="TETHER_WORKER_TOKEN")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="return once its studios have left")] = False,
    deadline_s: Annotated[float, typer.Option(envvar="TETHER_DRAIN_S", min=0)] = 30.0,
) -> None:
    """Tell a worker to drain: it takes no new sessions and its studios move away.

    For a Kubernetes preStop hook: `tether drain --wait` returns once no session is
    left or at the deadline."""
    import time

    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = worker_url.rstrip("/")
    try:
        answer = httpx.post(f"{base}/api/v1/drain", headers=headers, timeout=5)
        if answer.status_code != 200:
            raise _fail(f"the worker refused to drain ({answer.status_code}): {answer.text[:200]}")
        sessions = answer.json()["sessions"]
        deadline = time.monotonic() + deadline_s
        while wait and sessions and time.monotonic() < deadline:
            time.sleep(0.25)
            sessions = httpx.get(f"{base}/api/v1/load", headers=headers, timeout=5).json()[
                "sessions"
            ]
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach the worker at {base}: {exc}", 1) from None
    console.print(f"draining: {sessions} session(s) left")


@app.command()
def status(
    studio_url: Annotated[str, typer.Option("--studio", envvar="TETHER_STUDIO_URL")] = (
        "http://127.0.0.1:8000"
    ),
    watch: Annotated[bool, typer.Option("--watch", help="follow changes live")] = False,
) -> None:
    """Show the link state and stats of a running studio."""
    from tether.status_view import show_status

    raise typer.Exit(show_status(studio_url.rstrip("/"), watch, Console()))


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="print the version")] = False,
) -> None:
    if version:
        print(__version__)
        raise typer.Exit()


def main() -> None:
    app()
