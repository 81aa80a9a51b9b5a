"""Relay benchmark: client -> studio -> worker -> studio -> client, side by side with
client -> worker directly, in one run; and the same through a studio that decodes and
re-encodes (TETHER_FORWARD_VIDEO=0, as before forwarding) for comparison. Prints one
JSON line.

    python -m bench.relay [--seconds 20] [--fps 30] [--size 512] [--no-transcode]
"""

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
    lat = sorted(sink.latencies_ms[-int(seconds * 40) :])
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
    sink, stop = await run()
    await asyncio.sleep(WARMUP_S)
    sink.latencies_ms.clear()
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    since = time.monotonic()
    await asyncio.sleep(seconds)
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    result = summarize(sink, since, cpu, seconds)
    await stop()
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument(
        "--no-transcode",
        action="store_true",
        help="skip the studio that decodes and re-encodes (forwarding off)",
    )
    opts = parser.parse_args()
    BENCH_CLIENT.install()
    token = secrets.token_urlsafe(12)
    wport = free_port()
    worker_url = f"http://127.0.0.1:{wport}"
    # No warm sessions left behind between cases: each studio starts afresh.
    worker_env = {"TETHER_WORKER_TOKEN": token, "TETHER_SESSION_GRACE_S": "0"}
    worker = start(["worker", "--port", str(wport)], worker_env, worker_url)
    procs = [worker]

    def studio(forward: bool) -> tuple[str, subprocess.Popen[bytes]]:
        sport = free_port()
        url = f"http://127.0.0.1:{sport}"
        env = {"TETHER_WORKER_TOKEN": token, "TETHER_FORWARD_VIDEO": "1" if forward else "0"}
        proc = start(["studio", "--port", str(sport), "--worker", worker_url], env, url)
        procs.append(proc)
        return url, proc

    results: dict[str, dict] = {}
    try:

        async def direct():
            source = NumberedSource(opts.size, opts.size, opts.fps)
            sink = FrameSink(source=source, keep_rgb=False)
            client = WorkerClient(worker_url, token, source, sink)
            await client.start({"pipeline": "passthrough"})
            return sink, client.close

        def through(url: str):
            async def run():
                source = NumberedSource(opts.size, opts.size, opts.fps)
                sink = FrameSink(source=source, keep_rgb=False)
                client = StudioClient(url, source, sink)
                await client.start({"pipeline": "passthrough"})
                return sink, client.close

            return run

        results["direct"] = await measure(
            direct, {"client": None, "worker": worker.pid}, opts.seconds
        )
        cases = [("relay", True)] + ([] if opts.no_transcode else [("relay_transcode", False)])
        for name, forward in cases:
            url, proc = studio(forward)
            pids = {"client": None, "studio": proc.pid, "worker": worker.pid}
            results[name] = await measure(through(url), pids, opts.seconds)
            proc.terminate()
            proc.wait(10)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
    direct_result, relay_result = results["direct"], results["relay"]
    d50, r50 = direct_result["p50_ms"], relay_result["p50_ms"]
    cpu = relay_result["cpu_s"]
    studio_per_worker = round(cpu["studio"] / cpu["worker"], 2) if cpu["worker"] else None
    line = {
        "bench": "relay",
        "size": f"{opts.size}x{opts.size}",
        "target_fps": opts.fps,
        "seconds": opts.seconds,
        "machine": machine(),
        **results,
        "added_p50_ms": round(r50 - d50, 1) if d50 and r50 else None,
        "ratio_p50": round(r50 / d50, 2) if d50 and r50 else None,
        "studio_cpu_per_worker_cpu": studio_per_worker,
    }
    if "relay_transcode" in results:
        before = results["relay_transcode"]["cpu_s"]
        line["transcode_studio_cpu_per_worker_cpu"] = round(before["studio"] / before["worker"], 2)
    line["targets"] = {
        "relay_fps_at_least_95pct": relay_result["fps"] >= 0.95 * opts.fps,
        "relay_p50_at_most_direct_plus_5ms": bool(d50 and r50 and r50 <= d50 + 5),
        "studio_cpu_at_most_half_worker": bool(studio_per_worker is not None)
        and studio_per_worker <= 0.5,
    }
    print(json.dumps(line))


if __name__ == "__main__":
    asyncio.run(main())
