"""Hostile-clients benchmark: a legitimate stream straight to a worker, measured alone
and then, in the same run, while 1,000 slow-header sockets (trickling a request that
never ends, re-opened when the worker cuts them off) and 500 idle authenticated
signaling sockets are open against the same worker. Loopback only; bounded in sockets
and time. Prints one JSON line per case, then one with the ratios.

    python -m bench.hostile [--seconds 15] [--slow 1000] [--idle 500] [--fps 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import statistics
import sys
import time

from bench import BENCH_CLIENT
from bench.relay import machine, start
from tether.tools.probe import FrameSink, NumberedSource, WorkerClient
from tether.tools.processes import free_port

WARMUP_S = 2.0


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def measure(url: str, token: str, seconds: float, fps: float, size: int) -> dict:
    source = NumberedSource(size, size, fps)
    sink = FrameSink(source=source, keep_rgb=False)
    client = WorkerClient(url, token, source, sink)
    await client.start({"pipeline": "passthrough"})
    try:
        await asyncio.sleep(WARMUP_S)
        frames, since = len(sink.latencies_ms), time.monotonic()
        await asyncio.sleep(seconds)
        lat = sorted(sink.latencies_ms[frames:])
    finally:
        await client.close()
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    return {
        "fps": round(sink.fps_since(since), 2),
        "latency_p50_ms": round(q[49], 1),
        "latency_p95_ms": round(q[94], 1),
        "frames": len(lat),
    }


# --- the flood, in its own process so it does not share the client's event loop ---
async def _slow_socket(port: int, stop: float, stats: dict[str, int]) -> None:
    while time.monotonic() < stop:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            stats["connect_errors"] += 1
            await asyncio.sleep(0.5)
            continue
        stats["open_slow"] += 1
        try:
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            while time.monotonic() < stop:
                writer.write(b"X-a: b\r\n")  # one more header line, never the blank one
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(100), 2.0)
                except TimeoutError:
                    continue  # still held open: trickle on
                stats["cut_" + (data[9:12].decode() if data else "eof")] += 1
                break
        except OSError:
            stats["cut_reset"] += 1
        finally:
            stats["open_slow"] -= 1
            writer.close()


async def _idle_socket(url: str, token: str, stop: float, stats: dict[str, int]) -> None:
    from websockets.asyncio.client import connect

    try:
        async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            await ws.recv()  # ready
            stats["open_idle"] += 1
            await asyncio.sleep(max(0.0, stop - time.monotonic()))
            stats["open_idle"] -= 1
    except Exception:
        stats["idle_errors"] += 1


async def flood(port: int, token: str, slow: int, idle: int, seconds: float) -> None:
    from collections import defaultdict

    stats: dict[str, int] = defaultdict(int)
    stop = time.monotonic() + seconds
    ws_url = f"ws://127.0.0.1:{port}/ws"
    tasks = [asyncio.create_task(_idle_socket(ws_url, token, stop, stats)) for _ in range(idle)]
    for i in range(slow):
        tasks.append(asyncio.create_task(_slow_socket(port, stop, stats)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    peak = {"open_slow": 0, "open_idle": 0}
    while time.monotonic() < stop:
        for key in peak:
            peak[key] = max(peak[key], stats[key])
        print(json.dumps({"open_slow": stats["open_slow"], "open_idle": stats["open_idle"]}))
        sys.stdout.flush()
        await asyncio.sleep(1.0)
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"done": True, "peak": peak, **stats}))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--slow", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=500)
    parser.add_argument("--flood", nargs=2, metavar=("PORT", "SECONDS"), help=argparse.SUPPRESS)
    opts = parser.parse_args()
    raise_fd_limit()
    if opts.flood:
        token = os.environ["TETHER_WORKER_TOKEN"]
        await flood(int(opts.flood[0]), token, opts.slow, opts.idle, float(opts.flood[1]))
        return
    BENCH_CLIENT.install()
    token = secrets.token_urlsafe(16)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    worker = start(["worker", "--port", str(port)], {"TETHER_WORKER_TOKEN": token}, url)
    try:
        alone = await measure(url, token, opts.seconds, opts.fps, opts.size)
        print(json.dumps({"case": "alone", **alone}))
        settle_s = 6.0
        flooder = await asyncio.create_subprocess_exec(
            sys.executable,
            *["-m", "bench.hostile", "--flood", str(port)],
            str(opts.seconds + WARMUP_S + settle_s + 8),
            *["--slow", str(opts.slow), "--idle", str(opts.idle)],
            env={**os.environ, "TETHER_WORKER_TOKEN": token},
            stdout=asyncio.subprocess.PIPE,
        )
        assert flooder.stdout is not None
        lines: list[dict] = []
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:  # let the flood build up
            lines.append(json.loads(await flooder.stdout.readline()))
        hostile = await measure(url, token, opts.seconds, opts.fps, opts.size)
        out, _ = await flooder.communicate()
        lines += [json.loads(x) for x in out.decode().splitlines() if x.strip()]
        during = [x for x in lines if "open_slow" in x and "done" not in x]
        final = lines[-1]
        print(
            json.dumps(
                {
                    "case": "hostile",
                    **hostile,
                    "slow_sockets_min_open": min(x["open_slow"] for x in during[-10:]),
                    "idle_ws_min_open": min(x["open_idle"] for x in during[-10:]),
                    "slow_cut_408": final.get("cut_408", 0),
                    "refused_503": final.get("cut_503", 0),
                    "worker_alive": worker.poll() is None,
                }
            )
        )
        print(
            json.dumps(
                {
                    "case": "ratio",
                    "fps_ratio": round(hostile["fps"] / alone["fps"], 3),
                    "p50_delta_ms": round(hostile["latency_p50_ms"] - alone["latency_p50_ms"], 1),
                    "machine": machine(),
                }
            )
        )
    finally:
        worker.terminate()
        worker.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
