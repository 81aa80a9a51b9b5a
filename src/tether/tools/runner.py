"""`tether run`: stream a video file through a worker and write the processed video.

A file is not a camera: every frame matters, and there is no deadline. So the run goes
in lockstep (one frame in flight): the next frame is sent only once the worker's result
for the previous one is back. Every hop on the way keeps only its newest frame, so a
frame sent early would replace one not yet processed; lockstep is the backpressure that
makes the run exact. Each result is written with its input frame's timestamp.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import uvicorn

from tether import protocol
from tether.client.signaling import SignalingClient
from tether.client.worker_peer import WorkerPeer
from tether.config import WorkerSettings
from tether.media.frames import FrameSlot, SlotTrack
from tether.pipelines import UnknownPipeline
from tether.tasks import TaskOwner

logger = logging.getLogger(__name__)

# Output extension -> encoder. The container follows from the extension.
ENCODERS = {
    ".mp4": "libx264",
    ".m4v": "libx264",
    ".mov": "libx264",
    ".mkv": "libx264",
    ".webm": "libvpx",
    ".avi": "mpeg4",
}
# A frame that takes longer than this on the worker means the worker is stuck.
FRAME_TIMEOUT_S = 15.0


class RunError(Exception):
    """A problem the user can fix (bad path, unknown pipeline, unreachable worker)."""


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


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], deadline_s: float = 30) -> None:
    """Block until the tether process at ``url`` answers /health; RunError if it exits
    or stays silent past the deadline."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RunError(f"the process for {url} exited during start-up (code {proc.returncode})")
        try:
            if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RunError(f"nothing answered at {url} within {deadline_s:g}s")


class _EmbeddedServer(uvicorn.Server):
    """Leaves signals to the host program: its Ctrl-C handling cleans up first."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def embedded_worker(tasks: TaskOwner) -> AsyncIterator[tuple[str, str]]:
    """A worker in this process on a free loopback port; yields (url, token)."""
    from tether.worker.app import create_worker_app

    token = secrets.token_urlsafe(16)
    port = free_port()
    settings = WorkerSettings(host="127.0.0.1", port=port, token=token)
    app = create_worker_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        log_config=None,  # the library leaves logging to the CLI
        lifespan="off",  # we close the worker ourselves, also when interrupted
        timeout_graceful_shutdown=1,
    )
    server = _EmbeddedServer(config)
    task = tasks.spawn(server.serve(), "embedded-worker")
    try:
        while not server.started:
            if task.done():
                raise RunError("the embedded worker did not start")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        await asyncio.wait([task], timeout=5)
        await tasks.cancel(task)
        await app.state.worker.close()


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
    on_progress: Callable[[int, int, int | None], None] | None = None,
    frame_timeout_s: float = FRAME_TIMEOUT_S,
) -> RunResult:
    check_paths(input_path, output_path)
    try:
        container = av.open(str(input_path))
    except av.FFmpegError as exc:
        raise RunError(f"cannot read {input_path}: {exc}") from None
    if not container.streams.video:
        container.close()
        raise RunError(f"{input_path} has no video stream")
    tasks = TaskOwner("run")
    partial = partial_path(output_path)
    try:
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(container.close)
            if worker_url is None:
                worker_url, token = await stack.enter_async_context(embedded_worker(tasks))
            signaling = SignalingClient(worker_url, token)
            await signaling.connect(wait_s=10)
            stack.push_async_callback(signaling.close)
            check_parameters(signaling.ready.get("pipelines", []), parameters)
            counts, seconds = await _stream(
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


class _Writer:
    """Encodes results with their input frames' timestamps."""

    def __init__(self, path: Path, in_stream: Any) -> None:
        self.rate = in_stream.average_rate or in_stream.guessed_rate or Fraction(30)
        self.in_tb = in_stream.time_base or 1 / self.rate
        codec = ENCODERS[path.suffix.lower()]
        # MPEG-4 part 2 allows no time base finer than 1/65535: use the frame rate's.
        self.tb = 1 / self.rate if codec == "mpeg4" else self.in_tb
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream(codec, rate=self.rate)
        self.stream.pix_fmt = "yuv420p"
        if codec == "libvpx":
            self.stream.options = {"deadline": "good", "cpu-used": "4"}
        self.stream.codec_context.time_base = self.tb
        self.frame_ticks = max(1, round(1 / (self.rate * self.tb)))
        self.written: set[int] = set()

    def write(self, result: av.VideoFrame, size: tuple[int, int], in_pts: int | None) -> None:
        if not self.written:
            self.stream.width, self.stream.height = size
        frame = result.reformat(self.stream.width, self.stream.height, "yuv420p")
        if in_pts is None:
            pts = len(self.written) * self.frame_ticks
        else:
            pts = round(in_pts * self.in_tb / self.tb)
        frame.pts, frame.time_base = pts, self.tb
        self.written.add(pts)
        self._mux(self.stream.encode(frame))

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            # Each frame lasts one frame period: the last one too, so the output's
            # duration is the input's.
            packet.duration = round(self.frame_ticks * self.tb / packet.time_base)
        self.container.mux(packets)

    def close(self) -> None:
        if self.written:
            self._mux(self.stream.encode(None))
        self.container.close()


async def _stream(
    container: Any,
    partial: Path,
    parameters: dict[str, Any],
    signaling: SignalingClient,
    on_progress: Callable[[int, int, int | None], None] | None,
    frame_timeout_s: float,
) -> tuple[dict[str, int], float]:
    in_stream = container.streams.video[0]
    total = in_stream.frames or None
    source, processed = FrameSlot(), FrameSlot()
    peer = WorkerPeer(SlotTrack(source), processed)
    writer = _Writer(partial, in_stream)
    counts = {"in": 0, "out": 0, "unique": 0}
    started = time.monotonic()
    try:
        await peer.start(signaling, parameters, 1, wait_s=10)
        if not await peer.wait_connected(10):
            raise RunError("could not establish the media connection to the worker")
        seq = processed.seq
        for index, frame in enumerate(container.decode(in_stream)):
            in_pts = frame.pts  # before the sending track restamps the frame
            source.put(frame)
            counts["in"] += 1
            try:
                async with asyncio.timeout(frame_timeout_s):
                    seq, result = await processed.newer_than(seq)
            except TimeoutError:
                raise RunError(
                    f"the worker returned nothing for frame {index} within {frame_timeout_s:g}s"
                ) from None
            _check_pipeline(peer, index)
            writer.write(result, (frame.width, frame.height), in_pts)
            counts["out"] += 1
            if on_progress:
                on_progress(counts["in"], counts["out"], total)
        if counts["in"] == 0:
            raise RunError("the input has no frames")
        # The data channel is ordered: a pong means every earlier worker message is in.
        await _round_trip(peer)
        _check_pipeline(peer, counts["in"] - 1)
        counts["unique"] = len(writer.written)
        return counts, time.monotonic() - started
    finally:
        await peer.close()
        writer.close()


def _check_pipeline(peer: WorkerPeer, index: int) -> None:
    if peer.pipeline_error is not None:
        raise RunError(f"the pipeline failed (by frame {index}): {peer.pipeline_error}")


async def _round_trip(peer: WorkerPeer, wait_s: float = 5.0) -> None:
    before = peer.last_pong_at
    peer.send(protocol.encode(protocol.HeartbeatPing(seq=0, t=time.monotonic())))
    deadline = time.monotonic() + wait_s
    while peer.last_pong_at == before and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
