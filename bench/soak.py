"""Soak: healthy streaming for a long time must raise no false loss detection.

    python bench/soak.py [--minutes 10] [--size 512] [--fps 30]

Prints one JSON line: outages seen (must be 0), fps, heartbeat RTT."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

from bench import BENCH_CLIENT
from bench.recovery import Rig


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--fps", type=float, default=30)
    opts = parser.parse_args()
    BENCH_CLIENT.install()
    rig = Rig(heartbeat=True)
    await rig.start(size=opts.size, fps=opts.fps)
    rtts: list[float] = []
    transitions: list[dict] = []
    try:
        await asyncio.sleep(3)
        start = time.monotonic()
        first = await rig.status()
        while time.monotonic() - start < opts.minutes * 60:
            await asyncio.sleep(1.0)
            status = await rig.status()
            if status["stats"]["heartbeat_rtt_ms"] is not None:
                rtts.append(status["stats"]["heartbeat_rtt_ms"])
            transitions = status["events"]
        last = await rig.status()
        fps = rig.sink.fps_since(start)
    finally:
        await rig.stop()
    print(
        json.dumps(
            {
                "bench": "soak",
                "minutes": opts.minutes,
                "size": f"{opts.size}x{opts.size}",
                "cores": os.cpu_count(),
                "false_detections": last["stats"]["outages"] - first["stats"]["outages"],
                "final_state": last["state"],
                "fps": round(fps, 2),
                "frames": last["stats"]["frames_received"] - first["stats"]["frames_received"],
                "heartbeat_rtt_ms": {
                    "p50": round(statistics.median(rtts), 2) if rtts else None,
                    "max": round(max(rtts), 2) if rtts else None,
                },
                "last_events": [e["kind"] for e in transitions[-5:]],
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
