"""`tether run`: stream a video file through a worker and write the processed video."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import uvicorn

from tether.client.signaling import SignalingClient
from tether.client.worker_peer import WorkerPeer
from tether.config import WorkerSettings
from tether.media import FrameSlot, SlotTrack
from tether.pipelines import UnknownPipeline
from tether.tasks import TaskOwner

logger = logging.getLogger(__name__)

_ENCODERS = {".webm": "libvpx", ".avi": "mpeg4"}


class RunError(Exception):
    """A problem the user can fix (bad path, unknown pipeline, unreachable worker)."""


@dataclass
class RunResult:
    frames_in: int
    frames_out: int
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


@contextlib.asynccontextmanager
async def embedded_worker(tasks: TaskOwner) -> AsyncIterator[tuple[str, str]]:
    """A worker in this process on a free loopback port; yields (url, token)."""
    from tether.worker.app import create_worker_app

    token = secrets.token_urlsafe(16)
    port = free_port()
    settings = WorkerSettings(host="127.0.0.1", port=port, token=token)
    config = uvicorn.Config(
        create_worker_app(settings), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
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


async def _prime(
    source: FrameSlot, processed: FrameSlot, frame: av.VideoFrame, period: float
) -> None:
    deadline = time.monotonic() + 10
    while processed.seq == 0:
        if time.monotonic() > deadline:
            raise RunError("the worker sent no processed frame within 10s")
        source.put(frame)
        await asyncio.sleep(period)
    await asyncio.sleep(3 * period)  # let the priming frames in flight arrive unwritten


class _WritingSlot(FrameSlot):
    def __init__(self, write: Callable[[av.VideoFrame], None]) -> None:
        super().__init__()
        self._write = write

    def put(self, frame: av.VideoFrame) -> None:
        super().put(frame)
        self._write(frame)


async def run_file(
    input_path: Path,
    output_path: Path,
    parameters: dict[str, Any],
    worker_url: str | None = None,
    token: str | None = None,
    on_progress: Callable[[int, int, int | None], None] | None = None,
    drain_s: float = 1.0,
) -> RunResult:
    if not input_path.is_file():  # noqa: ASYNC240 - one stat, before any streaming
        raise RunError(f"input file not found: {input_path}")
    try:
        container = av.open(str(input_path))
    except av.FFmpegError as exc:
        raise RunError(f"cannot read {input_path}: {exc}") from None
    if not container.streams.video:
        container.close()
        raise RunError(f"{input_path} has no video stream")
    tasks = TaskOwner("run")
    try:
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(container.close)
            if worker_url is None:
                worker_url, token = await stack.enter_async_context(embedded_worker(tasks))
            return await _stream(
                container, output_path, parameters, worker_url, token, on_progress, drain_s, tasks
            )
    finally:
        await tasks.close()


async def _stream(
    container: Any,
    output_path: Path,
    parameters: dict[str, Any],
    worker_url: str,
    token: str | None,
    on_progress: Callable[[int, int, int | None], None] | None,
    drain_s: float,
    tasks: TaskOwner,
) -> RunResult:
    in_stream = container.streams.video[0]
    rate = in_stream.average_rate or in_stream.guessed_rate or 30
    total = in_stream.frames or None
    signaling = SignalingClient(worker_url, token)
    await signaling.connect(wait_s=10)
    try:
        known = [p["name"] for p in signaling.ready.get("pipelines", [])]
        name = parameters.get("pipeline", "passthrough")
        if name not in known:
            raise RunError(UnknownPipeline(name, known).message)
        output = av.open(str(output_path), "w")
        out_stream = output.add_stream(
            _ENCODERS.get(output_path.suffix.lower(), "libx264"), rate=rate
        )
        out_stream.pix_fmt = "yuv420p"
        counts = {"in": 0, "out": 0}
        flushing = False

        writing = False

        def write(frame: av.VideoFrame) -> None:
            # Nothing is written while priming, nor past the input's frame count
            # (the tail is flushed by repeating the last frame).
            if not writing or (flushing and counts["out"] >= counts["in"]):
                return
            if counts["out"] == 0:
                out_stream.width, out_stream.height = frame.width, frame.height
            frame = frame.reformat(out_stream.width, out_stream.height, "yuv420p")
            frame.pts = None
            output.mux(out_stream.encode(frame))
            counts["out"] += 1
            if on_progress:
                on_progress(counts["in"], counts["out"], total)

        source = FrameSlot()
        peer = WorkerPeer(SlotTrack(source), _WritingSlot(write))
        started = time.monotonic()
        try:
            await peer.start(signaling, parameters, 1, wait_s=10)
            if not await peer.wait_connected(10):
                raise RunError("could not establish the media connection to the worker")
            period = 1.0 / float(rate)
            frames = container.decode(in_stream)
            first = next(frames, None)
            if first is None:
                raise RunError("the input has no frames")
            # Prime the path (decoders wait for a key frame) so the file's start isn't lost.
            await _prime(source, peer.processed, first, period)
            writing = True
            t0 = time.monotonic()
            last_frame = first
            for index, frame in enumerate(itertools.chain([first], frames)):
                delay = t0 + index * period - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                source.put(frame)
                last_frame = frame
                counts["in"] += 1
                if on_progress:
                    on_progress(counts["in"], counts["out"], total)
            # Each hop releases a frame only when the next one starts: repeat the last
            # frame to push the tail through, while the frames in flight arrive.
            flushing = True
            last, quiet_since = counts["out"], time.monotonic()
            while counts["out"] < counts["in"] and time.monotonic() - quiet_since < drain_s:
                source.put(last_frame)
                await asyncio.sleep(period)
                if counts["out"] != last:
                    last, quiet_since = counts["out"], time.monotonic()
            elapsed = time.monotonic() - started
        finally:
            await peer.close()
            if counts["out"]:
                output.mux(out_stream.encode(None))
            output.close()
        return RunResult(counts["in"], counts["out"], elapsed, output_path)
    finally:
        await signaling.close()
