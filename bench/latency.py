"""Latency benchmark: where each millisecond goes, per hop, for the studio path
(client -> studio -> worker -> studio -> client) and the direct path
(client -> worker -> client), at 15, 30 and 60 fps, 512x512, with aiortc's stock
frame release and with Tether's eager release side by side in one run.
One JSON line per case, then one with the codec's own cost.

    python -m bench.latency [--seconds 10] [--fps 15,30,60] [--size 512]
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import av
import httpx

from bench import BENCH_CLIENT
from bench.relay import cpu_seconds, machine, start
from tether.media.frame_id import base_planes
from tether.tools.probe import FrameSink, NumberedSource, StudioClient, WorkerClient
from tether.tools.processes import free_port

RELAY_STAGES = [
    "client.captured", "studio.in", "studio.to_worker", "worker.in", "worker.out",
    "studio.back", "studio.to_client", "client.in",
]  # fmt: skip
DIRECT_STAGES = ["client.captured", "worker.in", "worker.out", "client.in"]
WARMUP_S = 2.0


def q(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p * len(values)))], 2)


def read_traces(directory: Path, since: float, until: float) -> dict[int, dict[str, float]]:
    """frame number -> stage -> first time seen, within a window."""
    frames: dict[int, dict[str, float]] = defaultdict(dict)
    for path in directory.glob("trace-*.txt"):
        for line in path.read_text().splitlines():
            stage, frame_id, t = line.split()
            when = float(t)
            if since <= when <= until:
                frames[int(frame_id)].setdefault(stage, when)
    return frames


def breakdown(frames: dict[int, dict[str, float]], stages: list[str]) -> dict:
    parts: dict[str, list[float]] = defaultdict(list)
    totals = []
    # A studio that forwards encoded frames cannot read their numbers: no studio marks.
    stages = [s for s in stages if 2 * sum(s in m for m in frames.values()) > len(frames)]
    for marks in frames.values():
        if not all(s in marks for s in stages):
            continue
        for a, b in zip(stages, stages[1:], strict=False):
            parts[f"{a} -> {b}"].append((marks[b] - marks[a]) * 1000)
        totals.append((marks[stages[-1]] - marks[stages[0]]) * 1000)
    return {
        "frames_traced": len(totals),
        "p50_ms": q(totals, 0.5),
        "p95_ms": q(totals, 0.95),
        "hops_p50_ms": {k: q(v, 0.5) for k, v in parts.items()},
    }


async def run_path(kind, opts, fps, urls, token, pids, trace_dir) -> dict:
    source = NumberedSource(opts.size, opts.size, fps)
    sink = FrameSink(source=source, keep_rgb=False)
    if kind == "direct":
        client = WorkerClient(urls["worker"], token, source, sink)
    else:
        client = StudioClient(urls["studio"], source, sink)
    await client.start({"pipeline": "passthrough"})
    stop = client.close
    await asyncio.sleep(WARMUP_S)
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    frames_before, since = sink.frames, time.monotonic()
    await asyncio.sleep(opts.seconds)
    until = time.monotonic()
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    reported = await studio_reports(urls["studio"]) if kind == "relay" else None
    frames = sink.frames - frames_before
    await stop()
    traced = read_traces(trace_dir, since - 1.0, until + 1.0)
    # the client's own marks: capture and receive times by frame number
    for frame_id, t in source.sent_at.items():
        if since - 1.0 <= t <= until:
            traced[frame_id]["client.captured"] = t
    for t, frame_id in sink.history:
        if since <= t <= until:
            traced[frame_id].setdefault("client.in", t)
    stages = DIRECT_STAGES if kind == "direct" else RELAY_STAGES
    result = breakdown({k: v for k, v in traced.items() if "client.captured" in v}, stages)
    result["fps"] = round(frames / (until - since), 2)
    result["cpu_ms_per_frame"] = round(1000 * sum(cpu.values()) / max(frames, 1), 2)
    if reported is not None:
        result["studio_reports"] = reported
    return result


async def studio_reports(studio_url: str) -> dict:
    """What the studio itself measured from the frames (its last 2 s), to set beside
    the traced times: studio -> worker -> studio, and the worker's pipeline time."""
    async with httpx.AsyncClient() as http:
        status = (await http.get(f"{studio_url}/api/v1/cloud/status", timeout=5)).json()
    stats = status["stats"]
    return {"media_latency_ms": stats.get("media_latency_ms"), "worker_ms": stats.get("worker_ms")}


def codec_cost(size: int, frames: int = 120) -> dict:
    """VP8 encode and decode time per frame at this size, through aiortc's codecs."""
    from aiortc.codecs import get_decoder, get_encoder
    from aiortc.codecs.vpx import vp8_depayload
    from aiortc.jitterbuffer import JitterFrame
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    encoder, decoder = get_encoder(codec), get_decoder(codec)
    planes = base_planes(size, size)
    enc_ms, dec_ms = [], []
    for i in range(frames):
        planes[:32, :] = (i * 7) % 256
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        t = time.perf_counter()
        payloads, timestamp = encoder.encode(frame, force_keyframe=i == 0)
        enc_ms.append((time.perf_counter() - t) * 1000)
        data = b"".join(vp8_depayload(p) for p in payloads)
        t = time.perf_counter()
        decoder.decode(JitterFrame(data=data, timestamp=timestamp))
        dec_ms.append((time.perf_counter() - t) * 1000)
    return {"encode_ms_p50": q(enc_ms[10:], 0.5), "decode_ms_p50": q(dec_ms[10:], 0.5)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--fps", default="15,30,60")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--modes", default="stock,eager")
    opts = parser.parse_args()
    token = "bench-token"
    for mode in opts.modes.split(","):
        eager = mode == "eager"
        client = replace(BENCH_CLIENT, eager_release=eager)
        client.install()  # this client releases frames as the mode says
        trace_dir = Path(tempfile.mkdtemp(prefix=f"tether-trace-{mode}-"))
        env = {
            "TETHER_WORKER_TOKEN": token,
            "TETHER_EAGER_RELEASE": "1" if eager else "0",
            "TETHER_TRACE_DIR": str(trace_dir),
        }
        wport, sport = free_port(), free_port()
        urls = {"worker": f"http://127.0.0.1:{wport}", "studio": f"http://127.0.0.1:{sport}"}
        worker = start(["worker", "--port", str(wport)], env, urls["worker"])
        studio = start(
            ["studio", "--port", str(sport), "--worker", urls["worker"]], env, urls["studio"]
        )
        try:
            for fps in [float(f) for f in opts.fps.split(",")]:
                line = {"bench": "latency", "mode": mode, "fps": fps, "size": opts.size}
                line["direct"] = await run_path(
                    "direct", opts, fps, urls, token,
                    {"client": None, "worker": worker.pid}, trace_dir,
                )  # fmt: skip
                line["relay"] = await run_path(
                    "relay", opts, fps, urls, token,
                    {"client": None, "studio": studio.pid, "worker": worker.pid}, trace_dir,
                )  # fmt: skip
                print(json.dumps(line), flush=True)
        finally:
            for proc in (studio, worker):
                proc.terminate()
                proc.wait(10)
            client.uninstall()
    print(json.dumps({"bench": "codec", "size": opts.size, "machine": machine(),
                      **codec_cost(opts.size)}), flush=True)  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
