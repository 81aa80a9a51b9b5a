"""`tether doctor`: check the path to a worker stage by stage and say what to fix
(docs/DOCTOR.md). Exit code 0: it works; 1: it works, degraded; 2: it fails."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import httpx
import typer

from tether.cli.console import console, fail
from tether.cli.log_setup import redact, setup_logging
from tether.cli.media_setup import apply_media_settings
from tether.cli.options import TokenFile
from tether.cli.serving import TokenError, load_token
from tether.config import StudioSettings
from tether.doctor import STAGES, Check, Doctor, DoctorOptions, Progress, Report
from tether.doctor.target import shown_url
from tether.rtc.adapter import MediaAdapter
from tether.rtc.ice import host_of


def doctor(
    worker: Annotated[
        str | None,
        typer.Option(
            "--worker",
            envvar="TETHER_WORKER_URL",
            metavar="URL",
            help="the worker to check (default: the one the running studio is set to)",
        ),
    ] = None,
    token: Annotated[str | None, typer.Option(envvar="TETHER_WORKER_TOKEN", metavar="T")] = None,
    token_file: TokenFile = None,
    studio_url: Annotated[
        str,
        typer.Option("--studio", envvar="TETHER_STUDIO_URL", help="where to ask for the worker"),
    ] = "http://127.0.0.1:8000",
    pipeline: Annotated[
        str, typer.Option(envvar="TETHER_PIPELINE", metavar="NAME", help="the pipeline to test")
    ] = "passthrough",
    seconds: Annotated[
        float,
        typer.Option(envvar="TETHER_DOCTOR_MEDIA_S", min=1, max=30, help="media test length"),
    ] = 6.0,
    as_json: Annotated[
        bool, typer.Option("--json", envvar="TETHER_DOCTOR_JSON", help="one JSON object")
    ] = False,
) -> None:
    """Check the path to a worker: reach, TLS, signaling, ICE, media, pipeline.

    Exit code 0: the path works; 1: it works, degraded (a warning); 2: it fails;
    130: interrupted (Ctrl-C). With --json, stdout is one JSON object in every case."""
    setup_logging("error", "doctor")
    settings = StudioSettings()
    apply_media_settings(settings)
    try:
        token = load_token(token, token_file)
        url = worker or studio_worker(studio_url.rstrip("/"), settings)
    except (TokenError, NoWorkerError) as exc:
        raise _no_run(str(exc), worker, as_json) from None
    options = DoctorOptions(url, token, pipeline=pipeline, media_s=seconds)
    checks = Doctor(options, None if as_json else Progress(_started, _finished))
    media = MediaAdapter.from_settings(settings, _hosts_of(url))
    report, code = checks.report, None
    try:
        with media.installed():
            report = asyncio.run(checks.run())
    except KeyboardInterrupt:
        code = INTERRUPTED  # the run was cancelled and its test session closed
    _say(report, as_json, code)
    raise typer.Exit(report.exit_code if code is None else code)


def _say(report: Report, as_json: bool, interrupted: int | None) -> None:
    """The verdict on stdout: one line, or with --json one object."""
    out = report.as_dict()
    if interrupted is not None:
        done = {c.name for c in report.checks}
        running = next((s for s in STAGES if s not in done), "the end")
        verdict = f"INTERRUPTED: no verdict (stopped during {running})"
        out |= {"ok": False, "status": "interrupted", "exit_code": interrupted, "verdict": verdict}
    print(_masked(out) if as_json else redact.redact(out["verdict"]), flush=True)


def _masked(out: dict[str, Any]) -> str:
    """The object as JSON with every secret masked in its string values, never in its
    keys or its syntax: a short token ("x") must not turn "exit_code" into "e***it_code"."""

    def mask(value: Any) -> Any:
        if isinstance(value, str):
            return redact.redact(value)
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        return value

    return json.dumps(mask(out))


def _no_run(message: str, worker: str | None, as_json: bool) -> typer.Exit:
    """Nothing to check (no token, no worker): said on stderr, and as JSON when asked."""
    exit_ = fail(message)
    if as_json:
        out = {"ok": False, "status": "fail", "exit_code": 2, "verdict": f"FAIL: {message}",
               "failed_check": None, "worker_url": shown_url(worker) if worker else None,
               "took_s": 0.0, "checks": []}  # fmt: skip
        print(_masked(out), flush=True)
    return exit_


def json_usage_errors(command: Any) -> None:
    """With --json, a usage error (an unknown flag, a value out of range) is one JSON
    object on stdout too, like every other outcome, not the usage box."""
    parse_args = command.parse_args

    def parse(ctx: Any, args: list[str]) -> list[str]:
        given = list(args)  # (parsing consumes the list)
        try:
            return parse_args(ctx, args)
        except Exception as exc:
            # (Typer's click or its vendored copy: the class is known by its name.)
            usage = any(kind.__name__ == "UsageError" for kind in type(exc).__mro__)
            if not usage or ("--json" not in given and not _json_from_env(command, ctx)):
                raise
            raise _no_run(f"usage: {exc.format_message()}", None, True) from None

    command.parse_args = parse


def _json_from_env(command: Any, ctx: Any) -> bool:
    """TETHER_DOCTOR_JSON, as the --json option finds it (truthy as click reads a flag)."""
    option = next(p for p in command.params if p.name == "as_json")
    raw = option.value_from_envvar(ctx)
    return str(raw).strip().lower() in ("1", "true", "t", "yes", "y", "on")


class NoWorkerError(Exception):
    """No --worker, and no running studio to ask which."""


def studio_worker(studio_url: str, settings: StudioSettings) -> str:
    """The worker a running studio is set to (what `tether status` reads)."""
    token = settings.studio_token.get_secret_value() if settings.studio_token else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    shown = shown_url(studio_url)
    try:
        reply = httpx.get(f"{studio_url}/api/v1/cloud/status", headers=headers, timeout=3)
        reply.raise_for_status()
        found = reply.json().get("worker_url")
    except (httpx.HTTPError, ValueError) as exc:
        why = str(exc).replace(studio_url, shown)
        raise NoWorkerError(
            f"no --worker given, and no running studio at {shown} to ask ({why}): "
            "give --worker URL (or TETHER_WORKER_URL)"
        ) from None
    if not found:
        raise NoWorkerError(f"the studio at {shown} is set to no worker: give --worker URL")
    return str(found)


def _hosts_of(url: str) -> list[str]:
    """The worker's host for ICE; none for a URL the reach check will name as unusable."""
    try:
        return [host_of(url)]
    except ValueError:
        return []


def _started(name: str) -> None:
    console.print(f"[dim]... {name}[/dim]")


INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
_STYLE = {"ok": "green", "warn": "yellow", "fail": "red", "skipped": "dim"}


def _finished(check: Check) -> None:
    style = _STYLE[check.status.value]
    console.print(
        f"[{style}]{check.status.value:>7}[/{style}] [bold]{check.name}[/bold]: "
        f"{redact.redact(check.detail)}",
        highlight=False,
    )
    if check.fix:
        console.print(f"        [bold]fix:[/bold] {redact.redact(check.fix)}", highlight=False)
