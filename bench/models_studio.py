"""The through-the-studio cases of bench.models: real studio and worker processes, a
measuring client, and the studio's status sampled while it streams."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import BENCH_CLIENT
from bench.models import diffusion_env, model_dir, quantiles
from bench.relay import cpu_seconds, start
from bench.waiting import wait_for
from tether.tools.probe import FrameSink, NumberedSource, PictureSource, StudioClient
from tether.tools.processes import free_port

READY_DEADLINE_S = 300.0


@dataclass
class Stack:
    worker: subprocess.Popen[bytes]
    studio: subprocess.Popen[bytes]
    url: str

    def close(self) -> None:
        for proc in (self.studio, self.worker):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)


def launch(worker_env: dict[str, str] | None = None, studio_env: dict[str, str] | None = None):
    token = "bench-models"
    wport, sport = free_port(), free_port()
    worker_url, url = f"http://127.0.0.1:{wport}", f"http://127.0.0.1:{sport}"
    env = {"TETHER_WORKER_TOKEN": token, "TETHER_SESSION_GRACE_S": "0"}
    worker = start(["worker", "--port", str(wport)], {**env, **(worker_env or {})}, worker_url)
    studio_args = ["studio", "--port", str(sport), "--worker", worker_url]
    studio = start(studio_args, {"TETHER_WORKER_TOKEN": token, **(studio_env or {})}, url)
    return Stack(worker, studio, url)


@dataclass
class Samples:
    """The studio's status, sampled: what the studio said while the stream ran."""

    http: httpx.AsyncClient
    taken: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    async def take(self) -> dict[str, Any]:
        status = (await self.http.get("/api/v1/cloud/status", timeout=5)).json()
        self.taken.append((time.monotonic(), status))
        return status

    async def run_for(self, seconds: float, every_s: float = 0.25) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await self.take()
            await asyncio.sleep(every_s)  # a fixed sampling pace is the point here

    def summary(self, since: float, since_epoch: float) -> dict[str, Any]:
        window = [(t, s) for t, s in self.taken if t >= since]
        if len(window) < 2:
            return {"error": "too few status samples"}
        (t0, first), (t1, last) = window[0], window[-1]
        stats = [s["stats"] for _, s in window]
        upstream = (last["stats"]["frames_sent"] - first["stats"]["frames_sent"]) / (t1 - t0)
        field_rate = [v for k, v in last["stats"].items() if "upstream" in k]
        return {
            "states": dict(Counter(s["state"] for _, s in window)),
            "transitions_out_of_connected": leaving_connected(last, since_epoch),
            "pipeline_states": dict(Counter(_pipeline_state(s) for _, s in window)),
            "quality": dict(Counter(_quality(s) for _, s in window)),
            "upstream_fps": round(upstream, 1),
            "upstream_field": field_rate[0] if field_rate else None,
            "fps_out": round(statistics_median([s["fps_out"] for s in stats]), 1),
            "worker_ms": quantiles([s["worker_ms"] for s in stats if s["worker_ms"] is not None]),
            "media_round_trip_ms": quantiles(
                [s["media_latency_ms"] for s in stats if s["media_latency_ms"] is not None]
            ),
            "outages": last["stats"]["outages"] - first["stats"]["outages"],
            "reconnects": last["stats"]["reconnects"] - first["stats"]["reconnects"],
        }


def statistics_median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def leaving_connected(status: dict[str, Any], since_epoch: float) -> int:
    return sum(
        1
        for e in status["events"]
        if e.get("from") == "connected" and e.get("at", 0) >= since_epoch and "to" in e
    )


def _pipeline_state(status: dict[str, Any]) -> str:
    state = status["pipeline_state"]
    return f"{state['name']}:{state['state']}" if state else "none"


def _quality(status: dict[str, Any]) -> str:
    quality = status["quality"]
    return f"{quality['level']}/{quality['factor']}" if quality else "none"


async def stream_case(
    opts: argparse.Namespace, stack: Stack, source: Any, params: dict, ids_survive: bool
) -> dict[str, Any]:
    """Streams through ``params``' pipeline: load, then --seconds measured."""
    sink = FrameSink(source=source, keep_rgb=False)
    client = StudioClient(stack.url, source, sink)
    async with httpx.AsyncClient(base_url=stack.url) as http:
        samples = Samples(http)
        started = time.monotonic()
        await client.start(params)
        try:

            async def ready() -> dict[str, Any] | None:
                status = await samples.take()
                if status["pipeline_error"]:
                    raise RuntimeError(status["pipeline_error"])
                state = status["pipeline_state"]
                return status if state and state["state"] == "ready" and sink.frames else None

            status = await wait_for(ready, READY_DEADLINE_S, every_s=0.1)
            if status is None:
                return {"error": f"not ready within {READY_DEADLINE_S:g} s"}
            result: dict[str, Any] = {
                "load_s": status["pipeline_state"]["elapsed_s"],
                "first_frame_s": round(sink.received_at[0] - started, 2),
            }
            await asyncio.sleep(2.0)  # settle: the encoder's rate, the link's quality
            sink.latencies_ms.clear()
            cpu0, since, epoch = cpu_seconds(stack.worker.pid), time.monotonic(), time.time()
            await samples.run_for(opts.seconds)
            took = time.monotonic() - since
            result["fps"] = round(sink.fps_since(since), 2)
            if ids_survive:
                result["client_round_trip_ms"] = quantiles(sink.latencies_ms)
            result["worker_cpu_cores"] = round((cpu_seconds(stack.worker.pid) - cpu0) / took, 2)
            result["studio"] = samples.summary(since, epoch)
            return result
        finally:
            await client.close()


async def segment_case(opts: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from tether_segment import portrait

    picture = portrait(opts.size, opts.size)
    stack = launch()
    try:
        # The same stream through passthrough first: what this machine's media path
        # gives on its own right now, so the model's share can be told apart.
        source = PictureSource(picture, fps=opts.fps)
        base = await stream_case(opts, stack, source, {"pipeline": "passthrough"}, True)
        source = PictureSource(picture, fps=opts.fps)
        result = await stream_case(opts, stack, source, {"pipeline": "segment"}, False)
    finally:
        stack.close()
    baseline = {k: base.get(k) for k in ("fps", "client_round_trip_ms", "worker_cpu_cores")}
    baseline["media_round_trip_ms"] = base.get("studio", {}).get("media_round_trip_ms")
    return {
        "size": f"{opts.size}x{opts.size}",
        "offered_fps": opts.fps,
        **result,
        "passthrough_same_run": baseline,
    }


async def slow_case(opts: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    stack = launch()
    try:
        source = NumberedSource(opts.size, opts.size, opts.fps, scene="camera")
        params = {"pipeline": "slow", "delay_ms": 150}
        result = await stream_case(opts, stack, source, params, True)
    finally:
        stack.close()
    studio = result.get("studio", {})
    if "upstream_fps" in studio and result.get("fps"):
        result["upstream_per_pipeline_fps"] = round(studio["upstream_fps"] / result["fps"], 2)
    return {"delay_ms": 150, "offered_fps": opts.fps, **result}


async def diffusion_case(opts: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    directory = model_dir(opts, workdir)
    if not (directory / "model_index.json").is_file():
        build = [sys.executable, "-m", "tether_diffusion.build", str(directory)]
        command = [*build, "--shape", opts.shape]
        await asyncio.to_thread(subprocess.run, command, check=True, capture_output=True)
    stack = launch(worker_env=diffusion_env(opts, directory))
    try:
        source = NumberedSource(opts.size, opts.size, opts.fps, scene="camera")
        params = {"pipeline": "diffusion", "steps": opts.steps}
        result = await stream_case(opts, stack, source, params, False)
    finally:
        stack.close()
    return {"size": f"{opts.size}x{opts.size}", "offered_fps": opts.fps, **result}


def run_case(opts: argparse.Namespace, case: str, workdir: Path) -> dict[str, Any]:
    from bench.models_switch import fail_case, switch_case

    BENCH_CLIENT.install()
    cases = {
        "segment": segment_case,
        "slow": slow_case,
        "switch": switch_case,
        "fail": fail_case,
        "diffusion": diffusion_case,
    }
    try:
        return {"case": case, **asyncio.run(cases[case](opts, workdir))}
    except (RuntimeError, subprocess.CalledProcessError, httpx.HTTPError) as exc:
        return {"case": case, "error": str(exc)}
