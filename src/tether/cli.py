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
from tether.client.tls import use_ca_file
from tether.config import StudioSettings, WorkerSettings
from tether.redact import RedactSecrets
from tether.rtc import (
    host_of,
    resolve_ice_mode,
    use_bitrate_floor,
    use_eager_release,
    use_ice_hosts,
)

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
SslCertfile = Annotated[
    str | None, typer.Option("--ssl-certfile", envvar="TETHER_SSL_CERTFILE", help="serve TLS")
]
SslKeyfile = Annotated[str | None, typer.Option("--ssl-keyfile", envvar="TETHER_SSL_KEYFILE")]
TokenFile = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        envvar="TETHER_WORKER_TOKEN_FILE",
        help="read the worker token from this file (safer than --token: ps shows arguments)",
    ),
]
# Every secret this process knows is masked in every log line, at every level.
_redact = RedactSecrets()

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
    for handler in logging.getLogger().handlers:
        handler.addFilter(_redact)
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("aiortc").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _apply_media_settings(settings: StudioSettings | WorkerSettings) -> None:
    use_eager_release(settings.eager_release)
    use_bitrate_floor()
    if isinstance(settings, StudioSettings):
        use_ca_file(settings.ca_file)
    if settings.trace_dir:
        from tether import trace

        trace.enable(settings.trace_dir)


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


class _Server(uvicorn.Server):
    def handle_exit(self, sig: int, frame: Any) -> None:
        begin = getattr(self.config.app.state, "begin_shutdown", None)
        if begin is not None:
            begin()
        super().handle_exit(sig, frame)


def _read_token(token: str | None, token_file: Path | None) -> str | None:
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise _fail(f"cannot read the token file {token_file}: {exc.strerror}") from None
        if not token:
            raise _fail(f"the token file {token_file} is empty")
    _redact.add(token)
    return token


def _serve(
    app_: Any,
    host: str,
    port: int,
    level: str,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    **extra: Any,
) -> None:
    if bool(ssl_certfile) != bool(ssl_keyfile):
        raise _fail("TLS needs both --ssl-certfile and --ssl-keyfile")
    config = uvicorn.Config(
        app_,
        host=host,
        port=port,
        log_level=level.lower(),
        log_config=None,
        timeout_graceful_shutdown=2,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        **extra,
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
    parent_pid: Annotated[int | None, typer.Option(envvar="TETHER_PARENT_PID", hidden=True)] = None,
    token_file: TokenFile = None,
    ssl_certfile: SslCertfile = None,
    ssl_keyfile: SslKeyfile = None,
    ice_hosts: IceHosts = "auto",
    log_level: LogLevel = "info",
) -> None:
    """Run an inference worker (WebSocket signaling at /ws)."""
    from tether.protocol import MAX_MESSAGE_BYTES
    from tether.worker.app import create_worker_app
    from tether.worker.guard import BACKLOG, connection_cap, guarded_protocol, raise_fd_limit

    _setup_logging(log_level)
    token = _read_token(token, token_file)
    use_ice_hosts(resolve_ice_mode(ice_hosts, [host]))
    if token is None:
        logging.getLogger("tether").warning("no token set: any client may connect")
    settings = WorkerSettings(
        host=host, port=port, token=token, session_grace_s=session_grace_s, parent_pid=parent_pid
    )
    _apply_media_settings(settings)
    cap = connection_cap(settings.max_connections, raise_fd_limit())
    protocol = guarded_protocol(settings.header_timeout_s, cap)
    _serve(
        create_worker_app(settings),
        host,
        port,
        log_level,
        ssl_certfile,
        ssl_keyfile,
        http=protocol,
        ws="websockets-sansio",
        ws_max_size=MAX_MESSAGE_BYTES,
        backlog=BACKLOG,
    )


def _studio_settings(**overrides: Any) -> StudioSettings:
    return StudioSettings(**{k: v for k, v in overrides.items() if v is not None})


@app.command()
def studio(
    host: Annotated[str, typer.Option(envvar="TETHER_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="TETHER_PORT")] = 8000,
    worker: Annotated[str | None, typer.Option("--worker", envvar="TETHER_WORKER_URL")] = None,
    token: Annotated[str | None, typer.Option(envvar="TETHER_WORKER_TOKEN")] = None,
    token_file: TokenFile = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option("--allow-host", envvar="TETHER_ALLOW_HOST", help="also serve this host name"),
    ] = None,
    ssl_certfile: SslCertfile = None,
    ssl_keyfile: SslKeyfile = None,
    ice_hosts: IceHosts = "auto",
    log_level: LogLevel = "info",
) -> None:
    """Run the studio (HTTP API + web UI); connects at start when --worker is given."""
    from tether.studio.app import create_studio_app

    _setup_logging(log_level)
    token = _read_token(token, token_file)
    peers = [host] + ([host_of(worker)] if worker else [])
    use_ice_hosts(resolve_ice_mode(ice_hosts, peers))
    hosts = [h.strip() for item in allow_host or [] for h in item.split(",") if h.strip()]
    settings = _studio_settings(
        host=host, port=port, worker_url=worker, worker_token=token, allow_hosts=hosts or None
    )
    _apply_media_settings(settings)
    _studio_token(settings, "https" if ssl_certfile else "http")
    _serve(create_studio_app(settings), host, port, log_level, ssl_certfile, ssl_keyfile)


def _studio_token(settings: StudioSettings, scheme: str) -> None:
    """Off loopback the studio needs a token: generate one if none is set, and print the
    link that hands it to the page (as Jupyter does)."""
    from pydantic import SecretStr

    from tether.studio.guard import is_loopback

    if settings.studio_token is None and not is_loopback(settings.host):
        settings.studio_token = SecretStr(secrets.token_urlsafe(24))
        console.print(
            f"[bold]studio token required off loopback[/bold]; open "
            f"{scheme}://{settings.host}:{settings.port}/?token="
            f"{settings.studio_token.get_secret_value()} (set TETHER_STUDIO_TOKEN to choose it)"
        )
    if settings.studio_token is not None:
        _redact.add(settings.studio_token.get_secret_value())


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
        _redact.add(token)
        _studio_token(settings, "http")
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
    _redact.add(token)
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
def status(
    studio_url: Annotated[str, typer.Option("--studio", envvar="TETHER_STUDIO_URL")] = (
        "http://127.0.0.1:8000"
    ),
    watch: Annotated[bool, typer.Option("--watch", help="follow changes live")] = False,
) -> None:
    """Show the link state and stats of a running studio."""
    from tether.status_view import show_status

    token = StudioSettings().studio_token  # TETHER_STUDIO_TOKEN, for a studio that needs it
    secret = token.get_secret_value() if token else None
    raise typer.Exit(show_status(studio_url.rstrip("/"), watch, Console(), secret))


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="print the version")] = False,
) -> None:
    if version:
        print(__version__)
        raise typer.Exit()


def main() -> None:
    app()
