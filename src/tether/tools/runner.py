"""`tether run`: stream a video file through a worker and write the processed video.

A file is not a camera: every frame matters, and there is no deadline. So the run goes
in lockstep (one frame in flight): the next frame is sent only once the worker's result
for the previous one is back. Every hop on the way keeps only its newest frame, so a
frame sent early would replace one not yet processed; lockstep is the backpressure that
makes the run exact. Each result is written with its input frame's timestamp.

This module checks and opens what the run needs and owns its outcome; the stream itself
is `tether.tools.lockstep`, the output `tether.tools.video_writer`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from tether.client.signaling import SignalingClient
from tether.config import StudioSettings
from tether.pipelines import UnknownPipeline
from tether.rtc.adapter import MediaAdapter
from tether.rtc.ice import host_of
from tether.tasks import TaskOwner
from tether.timing import RUN_CONNECT_S, RUN_FRAME_TIMEOUT_S
from tether.tools.errors import RunError
from tether.tools.lockstep import Progress, stream_lockstep
from tether.tools.processes import embedded_worker
from tether.tools.video_writer import ENCODERS


@dataclass
class RunResult:
    frames_in: int
    frames_out: int
    dropped: int
    duplicated: int
    input_duration_s: float
    output_duration_s: float
    seconds: float
    output: Path

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0


def check_paths(input_path: Path, output_path: Path) -> None:
    """Refuse, with one clear sentence, what would fail late or destroy the input."""
    if not input_path.is_file():
        raise RunError(f"input file not found: {input_path}")
    if output_path.suffix.lower() not in ENCODERS:
        known = ", ".join(ENCODERS)
        raise RunError(
            f"unknown output type {output_path.suffix or '(none)'!r}; use one of {known}"
        )
    if not output_path.parent.is_dir():
        raise RunError(f"output directory does not exist: {output_path.parent}")
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise RunError("the output is the input file; choose another output path")


def check_parameters(catalog: list[dict[str, Any]], parameters: dict[str, Any]) -> None:
    """Unknown pipeline or parameter names are refused before anything streams."""
    by_name = {p["name"]: p for p in catalog}
    name = parameters.get("pipeline", "passthrough")
    if name not in by_name:
        raise RunError(UnknownPipeline(name, list(by_name)).message)
    known = set((by_name[name].get("parameters") or {}).get("properties") or {})
    for key in parameters:
        if key != "pipeline" and key not in known:
            takes = ", ".join(sorted(known)) or "no parameters"
            raise RunError(f"unknown parameter {key!r} for pipeline {name!r} (it takes: {takes})")


def partial_path(output_path: Path) -> Path:
    """Where the output is written until it is complete (then renamed)."""
    return output_path.with_name(f".{output_path.stem}.tether-partial{output_path.suffix}")


def duration_of(path: Path) -> float:
    """A video file's duration in seconds (its first video stream's)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        return (container.duration or 0) / av.time_base


async def run_file(
    input_path: Path,
    output_path: Path,
    parameters: dict[str, Any],
    worker_url: str | None = None,
    token: str | None = None,
    on_progress: Progress | None = None,
    frame_timeout_s: float = RUN_FRAME_TIMEOUT_S,
    media: MediaAdapter | None = None,
) -> RunResult:
    """Stream ``input_path`` through the worker at ``worker_url`` (else one embedded in
    this process) into ``output_path``. ``media``: the aiortc adapter the run installs
    for its length (by default from the environment's settings, as the studio's)."""
    check_paths(input_path, output_path)
    media = media or run_media(worker_url)
    container = _open_input(input_path)
    tasks = TaskOwner("run")
    partial = partial_path(output_path)
    try:
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(container.close)
            stack.enter_context(media.installed())
            if worker_url is None:
                worker_url, token = await stack.enter_async_context(embedded_worker(tasks))
            signaling = SignalingClient(worker_url, token)
            await signaling.connect(wait_s=RUN_CONNECT_S)
            stack.push_async_callback(signaling.close)
            check_parameters(signaling.ready.pipelines, parameters)
            counts, seconds = await stream_lockstep(
                container, partial, parameters, signaling, on_progress, frame_timeout_s
            )
        partial.replace(output_path)
    finally:
        partial.unlink(missing_ok=True)  # a failed or interrupted run leaves no file behind
        await tasks.close()
    return RunResult(
        frames_in=counts["in"],
        frames_out=counts["out"],
        dropped=counts["in"] - counts["out"],
        duplicated=counts["out"] - counts["unique"],
        input_duration_s=duration_of(input_path),
        output_duration_s=duration_of(output_path),
        seconds=seconds,
        output=output_path,
    )


def run_media(worker_url: str | None) -> MediaAdapter:
    """The aiortc adapter of a run: the settings' (the environment's), with ICE on
    loopback when the worker is here (or embedded)."""
    peers = [host_of(worker_url)] if worker_url else []
    return MediaAdapter.from_settings(StudioSettings(), peers)


def _open_input(input_path: Path) -> Any:
    try:
        container = av.open(str(input_path))
    except av.FFmpegError as exc:
        raise RunError(f"cannot read {input_path}: {exc}") from None
    if not container.streams.video:
        container.close()
        raise RunError(f"{input_path} has no video stream")
    return container
