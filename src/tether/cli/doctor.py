"""`tether doctor`: check the path to a worker stage by stage and say what to fix
(docs/DOCTOR.md). Exit code 0: it works; 1: it works, degraded; 2: it fails."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import httpx
import typer

from tether.cli.console import console, fail
from tether.cli.log_setup import redact, setup_logging
from tether.cli.media_setup import apply_media_settings
from tether.cli.options import TokenFile
from tether.cli.serving import read_token
from tether.config import StudioSettings
from tether.doctor import Check, DoctorOptions, Progress, run_doctor
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

    Exit code 0: the path works; 1: it works, degraded (a warning); 2: it fails."""
    setup_logging("error", "doctor")
    token = read_token(token, token_file)
    settings = StudioSettings()
    apply_media_settings(settings)
    url = worker or studio_worker(studio_url.rstrip("/"), settings)
    options = DoctorOptions(url, token, pipeline=pipeline, media_s=seconds)
    progress = None if as_json else Progress(_started, _finished)
    media = MediaAdapter.from_settings(settings, [host_of(url)])
    try:
        with media.installed():
            report = asyncio.run(run_doctor(options, progress))
    except KeyboardInterrupt:
        raise fail("interrupted: no verdict", 130) from None
    if as_json:
        print(redact.redact(json.dumps(report.as_dict())), flush=True)
    else:
        print(redact.redact(report.verdict()), flush=True)
    raise typer.Exit(report.exit_code)


def studio_worker(studio_url: str, settings: StudioSettings) -> str:
    """The worker a running studio is set to (what `tether status` reads)."""
    token = settings.studio_token.get_secret_value() if settings.studio_token else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        reply = httpx.get(f"{studio_url}/api/v1/cloud/status", headers=headers, timeout=3)
        reply.raise_for_status()
        found = reply.json().get("worker_url")
    except (httpx.HTTPError, ValueError) as exc:
        raise fail(
            f"no --worker given, and no running studio at {studio_url} to ask ({exc}): "
            "give --worker URL (or TETHER_WORKER_URL)"
        ) from None
    if not found:
        raise fail(f"the studio at {studio_url} is set to no worker: give --worker URL")
    return str(found)


def _started(name: str) -> None:
    console.print(f"[dim]... {name}[/dim]")


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
