"""`tether run`'s stream: one frame in flight, the next sent only once the worker's
result for the previous one is back (see `tether.tools.runner`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tether import protocol
from tether.client.signaling import SignalingClient
from tether.client.worker_peer import WorkerPeer
from tether.media.frames import FrameSlot, SlotTrack
from tether.timing import RUN_CONNECT_S
from tether.tools.errors import RunError
from tether.tools.video_writer import VideoWriter

Progress = Callable[[int, int, int | None], None]


async def stream_lockstep(
    container: Any,
    partial: Path,
    parameters: dict[str, Any],
    signaling: SignalingClient,
    on_progress: Progress | None,
    frame_timeout_s: float,
) -> tuple[dict[str, int], float]:
    """Send every frame of ``container`` through the worker into ``partial``; returns
    the counts (in, out, unique) and the seconds it took."""
    in_stream = container.streams.video[0]
    total = in_stream.frames or None
    source, processed = FrameSlot(), FrameSlot()
    peer = WorkerPeer(SlotTrack(source), processed)
    writer = VideoWriter(partial, in_stream)
    counts = {"in": 0, "out": 0, "unique": 0}
    started = time.monotonic()
    try:
        await peer.start(signaling, parameters, 1, wait_s=RUN_CONNECT_S)
        if not await peer.wait_connected(RUN_CONNECT_S):
            raise RunError("could not establish the media connection to the worker")
        seq = processed.seq
        for index, frame in enumerate(container.decode(in_stream)):
            in_pts = frame.pts  # before the sending track restamps the frame
            source.put(frame)
            counts["in"] += 1
            seq, result = await _next_output(peer, processed, seq, frame_timeout_s, index)
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


async def _next_output(
    peer: WorkerPeer, processed: FrameSlot, seq: int, timeout_s: float, index: int
) -> tuple[int, Any]:
    """The worker's output for frame ``index``: within ``timeout_s``, or for as long as
    the worker says its pipeline is loading (a model's load is not a stuck worker)."""
    while True:
        try:
            async with asyncio.timeout(timeout_s):
                return await processed.newer_than(seq)
        except TimeoutError:
            if not peer.pipeline_loading:
                raise RunError(
                    f"the worker returned nothing for frame {index} within {timeout_s:g}s"
                ) from None


def _check_pipeline(peer: WorkerPeer, index: int) -> None:
    if peer.pipeline_error is not None:
        raise RunError(f"the pipeline failed (by frame {index}): {peer.pipeline_error}")


async def _round_trip(peer: WorkerPeer, wait_s: float = 5.0) -> None:
    before = peer.last_pong_at
    peer.send(protocol.encode(protocol.HeartbeatPing(seq=0, t=time.monotonic())))
    deadline = time.monotonic() + wait_s
    while peer.last_pong_at == before and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
