"""The `tether` command. The only place that configures logging."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import signal
import webbrowser
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console
from rich.logging import RichHandler

from tether import __version__
from tether.cli.redact import RedactSecrets
from tether.client.tls import use_ca_file
from tether.config import StudioSettings, WorkerSettings
from tether.rtc import (
    host_of,
    resolve_ice_mode,
    use_bitrate_floor,
    use_eager_release,
    use_fitted_encoder,
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


# Polled or per-keystroke requests: an access-log line each is noise (kept at debug).
_QUIET_PATHS = ("/api/v1/parameters", "/api/v1/cloud/status", "/health")


class _QuietAccess(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) == 5 and str(args[2]).split("?")[0] in _QUIET_PATHS:
            return int(args[4]) >= 400 or logging.getLogger("uvicorn.access").isEnabledFor(
                logging.DEBUG
            )
        return True


def _setup_logging(level: str, process: str) -> None:
    """Every line says which process wrote it: `tether up` interleaves studio and worker."""
    logging.basicConfig(
        level=level.upper(),
        format=f"{process:<6} %(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)],
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_redact)
    logging.getLogger("uvicorn.access").addFilter(_QuietAccess())
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("aiortc").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _apply_media_settings(settings: StudioSettings | WorkerSettings) -> None:
    use_eager_release(settings.eager_release)
    use_bitrate_floor()
    use_fitted_encoder()
    if isinstance(settings, StudioSettings):
        use_ca_file(settings.ca_file)
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

    _setup_logging(log_level, "worker")
    token = _read_token(token, token_file)
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
    from tether.studio.fleet import parse_worker_specs

    _setup_logging(log_level, "studio")
    token = _read_token(token, token_file)
    try:
        specs = parse_worker_specs(workers or [])
    except ValueError as exc:
        raise _fail(str(exc)) from None
    worker = ",".join(specs) or None
    peers = [host] + [host_of(s.removeprefix("dns+")) for s in specs]
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


def _check_pipeline(worker_url: str, token: str, name: str) -> None:
    """Refuse an unknown --pipeline at start, naming the ones the worker has."""
    import httpx

    from tether.pipelines import UnknownPipeline

    reply = httpx.get(
        f"{worker_url}/api/v1/pipelines", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    known = [p["name"] for p in reply.json()["pipelines"]]
    if name not in known:
        raise _fail(UnknownPipeline(name, known).message)


@app.command()
def up(
    host: Annotated[str, typer.Option(envvar="TETHER_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="TETHER_PORT")] = 8000,
    pipeline: Annotated[
        str | None,
        typer.Option(envvar="TETHER_PIPELINE", metavar="NAME", help="the page's first pipeline"),
    ] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", envvar="TETHER_NO_BROWSER")] = False,
    log_level: LogLevel = "info",
) -> None:
    """Studio plus an embedded worker on loopback (restarted if it dies): the main job."""
    from tether.cli.worker_process import WorkerProcess
    from tether.studio.app import create_studio_app
    from tether.tools.runner import RunError, free_port

    _setup_logging(log_level, "studio")
    use_ice_hosts(resolve_ice_mode("auto", [host]))
    token = secrets.token_urlsafe(24)
    worker = WorkerProcess(free_port(), token, log_level)
    try:
        try:
            worker.start()
        except RunError as exc:
            raise _fail(f"the worker did not start: {exc}", 1) from None
        if pipeline is not None:
            _check_pipeline(worker.url, token, pipeline)
        settings = _studio_settings(
            host=host, port=port, worker_url=worker.url, worker_token=token, pipeline=pipeline
        )
        _apply_media_settings(settings)
        _redact.add(token)
        _studio_token(settings, "http")
        url = f"http://{host}:{port}/"
        console.print(f"[bold green]Tether studio[/bold green] at {url}")
        if not no_browser:
            webbrowser.open(url)
        studio_app = create_studio_app(settings)
        studio_app.state.on_retry = worker.restart_now  # Retry restarts a dead worker at once
        _serve(studio_app, host, port, log_level)
    finally:
        worker.stop()


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


async def _interruptible(job: Any) -> Any:
    """Await ``job``; Ctrl-C cancels it (so it cleans up) and returns None."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    interrupted = []
    loop.add_signal_handler(signal.SIGINT, lambda: (interrupted.append(1), task.cancel()))
    try:
        return await job
    except asyncio.CancelledError:
        if interrupted:
            return None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)


@app.command()
def run(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="video file to process")],
    output: Annotated[
        Path, typer.Option("-o", "--output", metavar="OUTPUT", help="where to write the result")
    ],
    pipeline: Annotated[
        str, typer.Option(envvar="TETHER_PIPELINE", metavar="NAME")
    ] = "passthrough",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", metavar="KEY=VALUE", help="a pipeline parameter, repeatable"),
    ] = None,
    worker: Annotated[
        str | None, typer.Option("--worker", envvar="TETHER_WORKER_URL", metavar="URL")
    ] = None,
    token: Annotated[str | None, typer.Option(envvar="TETHER_WORKER_TOKEN", metavar="T")] = None,
    log_level: LogLevel = "warning",
) -> None:
    """Stream a video file through a worker into OUTPUT, every frame exactly once.

    Frames keep their order and timestamps. The worker is embedded unless --worker."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tether.client.signaling import SignalingError
    from tether.tools.runner import RunError, check_paths, run_file

    _setup_logging(log_level, "run")
    _redact.add(token)
    try:
        check_paths(input_path, output)
    except RunError as exc:
        raise _fail(str(exc)) from None
    use_ice_hosts(resolve_ice_mode("auto", [host_of(worker)] if worker else []))
    _apply_media_settings(StudioSettings())
    params = {**_parse_params(param or []), "pipeline": pipeline}
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        task = progress.add_task(f"{pipeline}", total=None)

        def on_progress(frames_in: int, frames_out: int, total: int | None) -> None:
            progress.update(task, completed=frames_out, total=total)

        try:
            job = run_file(input_path, output, params, worker, token, on_progress)
            result = asyncio.run(_interruptible(job))
        except (RunError, SignalingError) as exc:
            progress.stop()
            raise _fail(str(exc), 1 if "pipeline failed" in str(exc) else 2) from None
        if result is None:
            progress.stop()
            raise _fail(f"interrupted: nothing written to {output}", 130)
    console.print(
        f"frames in {result.frames_in}, out {result.frames_out}, "
        f"dropped {result.dropped}, duplicated {result.duplicated}; "
        f"duration {result.output_duration_s:.2f}s (input {result.input_duration_s:.2f}s); "
        f"{result.fps:.1f} fps in {result.seconds:.1f}s -> {result.output}"
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
    from tether.cli.status_view import show_status

    token = StudioSettings().studio_token  # TETHER_STUDIO_TOKEN, for a studio that needs it
    secret = token.get_secret_value() if token else None
    raise typer.Exit(show_status(studio_url.rstrip("/"), watch, Console(), secret))


@app.command()
def pipelines(
    worker: Annotated[
        str | None, typer.Option("--worker", envvar="TETHER_WORKER_URL", metavar="URL")
    ] = None,
    token: Annotated[str | None, typer.Option(envvar="TETHER_WORKER_TOKEN", metavar="T")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List the pipelines (built-in and plugins) and their parameters."""
    from tether.cli.pipeline_list import fetch_catalog, local_catalog, render_catalog

    _setup_logging("warning", "tether")
    try:
        catalog = fetch_catalog(worker, token) if worker else local_catalog()
    except RuntimeError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        print(json.dumps(catalog, indent=2))
    else:
        Console().print(render_catalog(catalog))


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="print the version")] = False,
) -> None:
    if version:
        print(__version__)
        raise typer.Exit()


def _plain_flags(command: Any) -> Any:
    """Flags take no value, so their help shows none (typer prints `<bool>`)."""
    for sub in getattr(command, "commands", {}).values():
        _plain_flags(sub)
    for param in command.params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    get_help_option = command.get_help_option

    def help_option(ctx: Any) -> Any:
        option = get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    return command


def main() -> None:
    _plain_flags(typer.main.get_command(app))()
