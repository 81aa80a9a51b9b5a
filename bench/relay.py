"""Relay benchmark: what a viewer sees through the studio, on loopback. One JSON line per
case; each case selectable by name (``--case``, comma separated; default: all).

    python -m bench.relay [--case compare,fps60,hd30] [--seconds S] [--still]
        [--fps 30] [--size 512] [--no-transcode]

Cases:
- ``compare``: client -> studio -> worker -> studio -> client, side by side with client
  -> worker directly, and through a studio that decodes and re-encodes
  (TETHER_FORWARD_VIDEO=0, as before forwarding); ``--size``/``--fps``, 20 s each.
- ``fps60``: 512x512 at 60 fps through the studio for 60 s: a first stream, then a next
  one on the same studio and worker (``first``, ``next``).
- ``hd30``: 1280x720 at 30 fps through the studio for 30 s.
``--seconds S`` sets every case's length (a smoke run). The source is camera-like
(tools.scene) unless ``--still``.

Each stream measured carries ``fps``, ``frames``, ``p50_ms``/``p95_ms`` (round trip of
each distinct frame after a 2 s warm-up), CPU per process, and what a viewer saw from
the stream's start (tether.tools.viewing): ``windows`` (per 5 s) and ``view`` (in all,
with ``late``: after the first 10 s): ``distinct_fps``, ``fps``, ``full_size`` (share
of frames at the size sent), ``sizes``, ``rtt_p50_ms``/``rtt_p95_ms``, ``freezes``
(> 200 ms without a new picture), ``longest_gap_ms``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import BENCH_CLIENT
from tether.tools.errors import RunError
from tether.tools.probe import FrameSink, NumberedSource, StudioClient, WorkerClient
from tether.tools.processes import free_port, wait_healthy

WARMUP_S = 2.0


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def cpu_seconds(pid: int | None = None) -> float:
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(args: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether", *args, "--log-level", "warning"],
        env={**os.environ, "TETHER_ICE_HOSTS": "loopback", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(url, proc)
    except RunError as exc:
        proc.kill()
        raise SystemExit(f"{args[0]} did not start: {exc}") from None
    return proc


def summarize(sink: FrameSink, since: float, cpu: dict[str, float], seconds: float) -> dict:
    lat = sorted(sink.latencies_ms[-int(seconds * 80) :])
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    return {
        "fps": round(sink.fps_since(since), 2),
        "frames": sum(1 for t in sink.received_at if t >= since),
        "p50_ms": round(statistics.median(lat), 1) if lat else None,
        "p95_ms": round(q[94], 1),
        "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
        "cpu_ms_per_frame": round(
            1000 * sum(cpu.values()) / max(sum(1 for t in sink.received_at if t >= since), 1), 2
        ),
    }


async def measure(run, pids: dict[str, int | None], seconds: float) -> dict:
    started = time.monotonic()
    sink, stop = await run()
    await asyncio.sleep(WARMUP_S)
    sink.latencies_ms.clear()
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    since = time.monotonic()
    await asyncio.sleep(seconds)
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    result = summarize(sink, since, cpu, seconds)
    view = sink.windows(started, time.monotonic())
    await stop()
    return {**result, "windows": view["windows"], "view": view["summary"]}


class Bench:
    """One worker for the whole run; studios and client streams as the cases need."""

    def __init__(self, opts: argparse.Namespace) -> None:
        self.opts = opts
        self.token = secrets.token_urlsafe(12)
        port = free_port()
        self.worker_url = f"http://127.0.0.1:{port}"
        # No warm sessions left behind between cases: each studio starts afresh.
        env = {"TETHER_WORKER_TOKEN": self.token, "TETHER_SESSION_GRACE_S": "0"}
        self.worker = start(["worker", "--port", str(port)], env, self.worker_url)
        self.procs = [self.worker]

    def studio(self, forward: bool = True) -> tuple[str, subprocess.Popen[bytes]]:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {"TETHER_WORKER_TOKEN": self.token, "TETHER_FORWARD_VIDEO": "1" if forward else "0"}
        proc = start(["studio", "--port", str(port), "--worker", self.worker_url], env, url)
        self.procs.append(proc)
        return url, proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)

    def close(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)

    def source(self, width: int, height: int, fps: float) -> NumberedSource:
        return NumberedSource(width, height, fps, scene=self.opts.scene)

    def direct(self, width: int, height: int, fps: float):
        async def run():
            source = self.source(width, height, fps)
            sink = FrameSink(source=source, keep_rgb=False)
            client = WorkerClient(self.worker_url, self.token, source, sink)
            await client.start({"pipeline": "passthrough"})
            return sink, client.close

        return run

    def through(self, url: str, width: int, height: int, fps: float):
        async def run():
            source = self.source(width, height, fps)
            sink = FrameSink(source=source, keep_rgb=False)
            client = StudioClient(url, source, sink)
            await client.start({"pipeline": "passthrough"})
            return sink, client.close

        return run


async def compare(bench: Bench) -> dict:
    """Direct, through the studio, and through a transcoding studio."""
    opts = bench.opts
    size, fps, seconds = opts.size, opts.fps, opts.seconds or 20.0
    results: dict[str, dict] = {}
    pids = {"client": None, "worker": bench.worker.pid}
    results["direct"] = await measure(bench.direct(size, size, fps), pids, seconds)
    cases = [("relay", True)] + ([] if opts.no_transcode else [("relay_transcode", False)])
    for name, forward in cases:
        url, proc = bench.studio(forward)
        pids = {"client": None, "studio": proc.pid, "worker": bench.worker.pid}
        results[name] = await measure(bench.through(url, size, size, fps), pids, seconds)
        bench.stop(proc)
    direct_result, relay_result = results["direct"], results["relay"]
    d50, r50 = direct_result["p50_ms"], relay_result["p50_ms"]
    cpu = relay_result["cpu_s"]
    studio_per_worker = round(cpu["studio"] / cpu["worker"], 2) if cpu["worker"] else None
    line = {
        "size": f"{size}x{size}",
        "target_fps": fps,
        "seconds": seconds,
        **results,
        "added_p50_ms": round(r50 - d50, 1) if d50 and r50 else None,
        "ratio_p50": round(r50 / d50, 2) if d50 and r50 else None,
        "studio_cpu_per_worker_cpu": studio_per_worker,
    }
    if "relay_transcode" in results:
        before = results["relay_transcode"]["cpu_s"]
        line["transcode_studio_cpu_per_worker_cpu"] = round(before["studio"] / before["worker"], 2)
    line["targets"] = {
        "relay_fps_at_least_95pct": relay_result["fps"] >= 0.95 * fps,
        "relay_p50_at_most_direct_plus_5ms": bool(d50 and r50 and r50 <= d50 + 5),
        "studio_cpu_at_most_half_worker": bool(studio_per_worker is not None)
        and studio_per_worker <= 0.5,
    }
    return line


async def streams(bench: Bench, size: tuple[int, int], fps: float, seconds: float, names):
    """One stream after another through one studio: each one's own figures."""
    url, proc = bench.studio(True)
    pids = {"client": None, "studio": proc.pid, "worker": bench.worker.pid}
    line: dict = {"size": f"{size[0]}x{size[1]}", "target_fps": fps, "seconds": seconds}
    try:
        for name in names:
            line[name] = await measure(bench.through(url, *size, fps), pids, seconds)
    finally:
        bench.stop(proc)
    # Issue 19: full size, and (at 60 fps) at least 58 fps, for every stream.
    line["targets"] = {
        f"{name}_full_size_90pct": (line[name]["view"]["full_size"] or 0) >= 0.9 for name in names
    } | {f"{name}_fps_at_least_97pct": line[name]["fps"] >= 0.97 * fps for name in names}
    return line


CASES = {
    "compare": compare,
    "fps60": lambda b: streams(b, (512, 512), 60.0, b.opts.seconds or 60.0, ("first", "next")),
    "hd30": lambda b: streams(b, (1280, 720), 30.0, b.opts.seconds or 30.0, ("first",)),
}


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", default=",".join(CASES))
    parser.add_argument("--seconds", type=float, default=None, help="each case's length")
    parser.add_argument("--fps", type=float, default=30, help="compare's frame rate")
    parser.add_argument("--size", type=int, default=512, help="compare's picture size")
    parser.add_argument(
        "--no-transcode",
        action="store_true",
        help="compare: skip the studio that decodes and re-encodes (forwarding off)",
    )
    parser.add_argument(
        "--still",
        dest="scene",
        action="store_const",
        const="still",
        default="camera",
        help="a still test picture (default: camera-like)",
    )
    opts = parser.parse_args()
    names = [n for n in opts.case.split(",") if n]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise SystemExit(f"unknown case {unknown[0]!r}; cases: {', '.join(CASES)}")
    BENCH_CLIENT.install()
    bench = Bench(opts)
    try:
        for name in names:
            result = await CASES[name](bench)
            line = {"bench": "relay", "case": name, "scene": opts.scene, "machine": machine()}
            print(json.dumps({**line, **result}), flush=True)
    finally:
        bench.close()


if __name__ == "__main__":
    asyncio.run(main())
