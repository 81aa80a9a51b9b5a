"""`tether run`: a video file through a worker into an output file, every frame once."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tether.cli.console import console, fail
from tether.cli.log_setup import redact, setup_logging
from tether.cli.media_setup import apply_media_settings
from tether.cli.options import LogLevel
from tether.config import StudioSettings

if TYPE_CHECKING:
    from rich.progress import Progress


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
    from tether.client.signaling import SignalingError
    from tether.tools.errors import RunError
    from tether.tools.runner import check_paths, run_file

    setup_logging(log_level, "run")
    redact.add(token)
    try:
        check_paths(input_path, output)
    except RunError as exc:
        raise fail(str(exc)) from None
    apply_media_settings(StudioSettings())
    params = {**_parse_params(param or []), "pipeline": pipeline}
    with _progress_bar() as progress:
        task = progress.add_task(f"{pipeline}", total=None)

        def on_progress(frames_in: int, frames_out: int, total: int | None) -> None:
            progress.update(task, completed=frames_out, total=total)

        try:
            job = run_file(input_path, output, params, worker, token, on_progress)
            result = asyncio.run(_interruptible(job))
        except (RunError, SignalingError) as exc:
            progress.stop()
            raise fail(str(exc), 1 if "pipeline failed" in str(exc) else 2) from None
        if result is None:
            progress.stop()
            raise fail(f"interrupted: nothing written to {output}", 130)
    console.print(
        f"frames in {result.frames_in}, out {result.frames_out}, "
        f"dropped {result.dropped}, duplicated {result.duplicated}; "
        f"duration {result.output_duration_s:.2f}s (input {result.input_duration_s:.2f}s); "
        f"{result.fps:.1f} fps in {result.seconds:.1f}s -> {result.output}"
    )


def _progress_bar() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise fail(f"--param takes key=value, got {pair!r}")
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
