"""The switching cases of bench.models: mid-stream to a model that loads for seconds
(the test models' ``slow_load``), and to one whose load raises (``fail_load``)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np

from bench.models_studio import Samples, launch, leaving_connected, wait_for
from tether.tools.probe import FrameSink, NumberedSource, StudioClient

# The model running before the switch: its frames are told by their colour, on the
# probe's still picture (a moving camera scene would blur the three apart).
OLD = "invert"
FALLBACK = "black"  # what the studio shows while no model's frames arrive
REGION = (slice(64, None), slice(0, 96))  # below the frame-number band, the ramp's dark end


class ClassifyingSink(FrameSink):
    """Tells which model made each frame: the new one (slow_load returns the frame as
    is), the old one (inverted), or the fallback (black)."""

    def __init__(self, source: NumberedSource) -> None:
        super().__init__(source=source, keep_rgb=True)
        rgb = av.VideoFrame.from_ndarray(source.planes(0), format="yuv420p").to_ndarray(
            format="rgb24"
        )
        self.expected = {
            "new": rgb[REGION].reshape(-1, 3).mean(axis=0),
            "old": 255 - rgb[REGION].reshape(-1, 3).mean(axis=0),
            "fallback": np.zeros(3),
        }
        self.kinds: list[tuple[float, str]] = []

    def record(self, frame: av.VideoFrame) -> None:
        super().record(frame)
        assert self.last_rgb is not None
        seen = self.last_rgb[REGION].reshape(-1, 3).mean(axis=0)
        kind = min(self.expected, key=lambda k: float(np.abs(self.expected[k] - seen).sum()))
        self.kinds.append((self.received_at[-1], kind))

    def first(self, kind: str, after: float) -> float | None:
        return next((t for t, k in self.kinds if k == kind and t >= after), None)

    def count(self, kind: str, start: float, end: float) -> int:
        return sum(1 for t, k in self.kinds if k == kind and start <= t < end)


async def switch_once(opts: argparse.Namespace, load_s: float) -> dict[str, Any]:
    stack = launch(studio_env={"TETHER_FALLBACK": FALLBACK})
    source = NumberedSource(opts.size, opts.size, opts.fps)
    sink = ClassifyingSink(source)
    client = StudioClient(stack.url, source, sink)
    try:
        async with httpx.AsyncClient(base_url=stack.url) as http:
            samples = Samples(http)
            await client.start({"pipeline": OLD})
            if not await wait_for(lambda: sink.count("old", 0, float("inf")) >= 30, 30):
                return {"load_s": load_s, "error": "no frames from the first model"}
            epoch = time.time()
            params = {"pipeline": "slow_load", "load_ms": int(load_s * 1000)}
            switched = time.monotonic()
            (await http.post("/api/v1/parameters", json=params, timeout=10)).raise_for_status()

            async def state(name: str) -> float | None:
                status = await samples.take()
                pipeline = status["pipeline_state"]
                named = pipeline and pipeline["name"] == "slow_load"
                return time.monotonic() if named and pipeline["state"] == name else None

            loading_at = await wait_for(lambda: state("loading"), load_s + 10)
            ready_at = await wait_for(lambda: state("ready"), load_s + 60, every_s=0.1)
            await wait_for(lambda: sink.first("new", switched), 10)
            await samples.run_for(3.0)
            last = samples.taken[-1][1]
        return switch_result(sink, samples, load_s, switched, epoch, loading_at, ready_at, last)
    finally:
        await client.close()
        stack.close()


def switch_result(
    sink: ClassifyingSink,
    samples: Samples,
    load_s: float,
    switched: float,
    epoch: float,
    loading_at: float | None,
    ready_at: float | None,
    last: dict[str, Any],
) -> dict[str, Any]:
    new_at = sink.first("new", switched)
    load_end = switched + load_s  # slow_load's first call ends this long after it starts
    during = [(t, s) for t, s in samples.taken if switched <= t < (ready_at or load_end)]
    return {
        "load_s": load_s,
        "transitions_out_of_connected": leaving_connected(last, epoch),
        "reconnects": last["stats"]["reconnects"],
        "to_loading_s": _after(loading_at, switched),
        "ready_after_switch_s": _after(ready_at, switched),
        "first_new_frame_after_switch_s": _after(new_at, switched),
        "new_frame_after_load_end_s": _after(new_at, load_end),
        "new_frame_after_ready_s": _after(new_at, ready_at),
        "old_model_frames_during_load": sink.count("old", switched, ready_at or load_end),
        "fallback_frames_during_load": sink.count("fallback", switched, ready_at or load_end),
        "stages": sorted({s["pipeline_state"]["stage"] or "" for _, s in during if _loading(s)}),
        "quality_during_load": sorted({str(s["quality"]) for _, s in during}),
    }


def _after(at: float | None, since: float | None) -> float | None:
    return round(at - since, 2) if at is not None and since is not None else None


def _loading(status: dict[str, Any]) -> bool:
    state = status["pipeline_state"]
    return bool(state) and state["state"] == "loading"


async def switch_case(opts: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    # Each load in a fresh worker: a model loads once per worker process.
    return {"switches": [await switch_once(opts, load_s) for load_s in opts.load_s]}


async def fail_case(opts: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    stack = launch(studio_env={"TETHER_FALLBACK": "passthrough"})
    source = NumberedSource(opts.size, opts.size, opts.fps)
    sink = FrameSink(source=source, keep_rgb=False)
    client = StudioClient(stack.url, source, sink)
    try:
        async with httpx.AsyncClient(base_url=stack.url) as http:
            samples = Samples(http)
            await client.start({"pipeline": "passthrough"})
            if not await wait_for(lambda: sink.frames >= 30, 30):
                return {"error": "no frames before the switch"}
            epoch, switched = time.time(), time.monotonic()
            params = {"pipeline": "fail_load"}
            (await http.post("/api/v1/parameters", json=params, timeout=10)).raise_for_status()

            async def failed() -> dict[str, Any] | None:
                status = await samples.take()
                return status if status["pipeline_error"] else None

            status = await wait_for(failed, 30)
            error_at = samples.taken[-1][0] if status else None
            count = sink.frames
            await samples.run_for(3.0)
            last = samples.taken[-1][1]
        return {
            "to_error_s": _after(error_at, switched),
            "error": status["pipeline_error"] if status else "no error within 30 s",
            "fallback_active": status["fallback_active"] if status else None,
            "frames_after_error": sink.frames - count,
            "state": last["state"],
            "transitions_out_of_connected": leaving_connected(last, epoch),
        }
    finally:
        await client.close()
        stack.close()
