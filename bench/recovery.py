"""Recovery benchmark: inject faults into a live stream and time detection and
recovery, with Tether's heartbeat and with aiortc's own detection only (heartbeat
off), side by side in one run. One JSON line per fault and mode.

    python bench/recovery.py [--runs 5] [--faults debug-close,sigstop-3s,...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

from bench import BENCH_CLIENT
from tether.tools.probe import FrameSink, NumberedSource, StudioClient
from tether.tools.processes import free_port

FAULTS = ["debug-close", "sigkill-restart", "sigstop-3s", "signaling-drop"]
STABLE_S = 5.5  # the supervisor treats a loss sooner than 5 s after recovery as a relapse


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tether", *args, "--log-level", "warning"],
        env={**os.environ, "TETHER_ICE_HOSTS": "loopback", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_for(check, deadline_s: float, every_s: float = 0.02) -> Any:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(every_s)
    return None


async def healthy(url: str) -> bool:
    try:
        async with httpx.AsyncClient() as http:
            return (await http.get(f"{url}/health", timeout=0.5)).status_code == 200
    except httpx.HTTPError:
        return False


class Rig:
    def __init__(self, heartbeat: bool) -> None:
        self.token = "bench-token"
        self.wport, self.sport = free_port(), free_port()
        self.worker_url = f"http://127.0.0.1:{self.wport}"
        self.studio_url = f"http://127.0.0.1:{self.sport}"
        self.env = {
            "TETHER_WORKER_TOKEN": self.token,
            "TETHER_DEBUG_ENDPOINTS": "1",
            "TETHER_HEARTBEAT_TIMEOUT_S": "1.5" if heartbeat else "0",
        }
        self.worker: subprocess.Popen[bytes] | None = None
        self.studio: subprocess.Popen[bytes] | None = None
        self.http = httpx.AsyncClient(base_url=self.studio_url, timeout=10)

    async def start_worker(self) -> float:
        self.worker = spawn(["worker", "--port", str(self.wport)], self.env)
        await wait_for(lambda: healthy(self.worker_url), 30, 0.01)
        return time.monotonic()

    async def start(self, size: int = 256, fps: float = 30) -> None:
        await self.start_worker()
        self.studio = spawn(
            ["studio", "--port", str(self.sport), "--worker", self.worker_url], self.env
        )
        await wait_for(lambda: healthy(self.studio_url), 30)
        self.source = NumberedSource(size, size, fps=fps)
        self.sink = FrameSink(source=self.source, keep_rgb=False)
        self.client = StudioClient(self.studio_url, self.source, self.sink)
        await wait_for(self.is_connected, 15)
        # tint at strength 0 is the picture as it was, with a parameter to update
        await self.client.start({"pipeline": "tint", "strength": 0.0})

    async def status(self) -> dict[str, Any]:
        return (await self.http.get("/api/v1/cloud/status")).json()

    async def is_connected(self) -> bool:
        status = await self.status()
        return (
            status["state"] == "connected"
            and status["params_acked_version"] == status["params_version"]
        )

    async def stop(self) -> None:
        await self.client.close()
        await self.http.aclose()
        for proc in (self.studio, self.worker):
            if proc and proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
                proc.wait(10)


def outage(sink: FrameSink, t0: float) -> dict[str, float]:
    """From the client's received frames (held, repeated frames do not count):
    - outage_s: last processed frame received before the fault -> first processed
      frame captured after the fault (the issue's definition; includes one latency),
    - longest_freeze_s: the longest gap between new frames from the fault until then
      (what a viewer sees as a frozen picture),
    - drop_to_first_frame_s: fault -> that first frame captured after it."""
    sent_at = sink.source.sent_at if sink.source else {}
    nan = float("nan")
    newest, prev_t, last_before, longest = -1, None, None, 0.0
    for t, frame_id in sink.history:
        if t < t0 - 1.0:
            continue  # earlier runs on the same stream
        sent = sent_at.get(frame_id)
        if frame_id <= newest or sent is None or not 0 <= t - sent < 5.0:
            continue  # a held frame, or a frame number misread from a damaged picture
        newest = frame_id
        if t <= t0:
            last_before = t
        elif prev_t is not None:
            longest = max(longest, t - prev_t)
        prev_t = t
        if sent_at[frame_id] > t0 and t > t0:
            return {
                "outage_s": t - last_before if last_before is not None else nan,
                "longest_freeze_s": longest,
                "drop_to_first_frame_s": t - t0,
            }
    return {"outage_s": nan, "longest_freeze_s": nan, "drop_to_first_frame_s": nan}


async def one_run(rig: Rig, fault: str) -> dict[str, Any]:
    await asyncio.sleep(STABLE_S)
    seq = refused = 0
    stop_updates = asyncio.Event()

    async def updater() -> None:
        nonlocal seq, refused
        while not stop_updates.is_set():
            seq += 1
            reply = await rig.http.post("/api/v1/parameters", json={"prompt": f"seq {seq}"})
            refused += reply.status_code != 200  # a refused update would count as lost
            await asyncio.sleep(0.1)

    updates = asyncio.create_task(updater())
    await asyncio.sleep(0.5)
    t0 = time.monotonic()
    path_back = t0
    if fault == "debug-close":
        await rig.http.post("/api/v1/cloud/debug/disconnect-webrtc")
    elif fault == "signaling-drop":
        await rig.http.post("/api/v1/cloud/debug/disconnect-signaling")
    elif fault == "sigkill-restart":
        rig.worker.kill()
        rig.worker.wait()
    elif fault == "sigstop-3s":
        os.kill(rig.worker.pid, signal.SIGSTOP)

    async def left_connected() -> float | None:
        status = await rig.status()
        return time.monotonic() if status["state"] != "connected" else None

    restore = None
    if fault == "sigkill-restart":
        restore = asyncio.create_task(rig.start_worker())
    detect_window = 3.0 if fault == "sigstop-3s" else 10.0
    detected_at = await wait_for(left_connected, detect_window, 0.01)
    if fault == "sigstop-3s":
        await asyncio.sleep(max(0.0, t0 + 3.0 - time.monotonic()))
        os.kill(rig.worker.pid, signal.SIGCONT)
        path_back = time.monotonic()
    if restore is not None:
        path_back = await restore
    back = await wait_for(rig.is_connected, 40, 0.02)
    await asyncio.sleep(1.0)
    stop_updates.set()
    await updates
    await wait_for(rig.is_connected, 10)
    async with httpx.AsyncClient() as http:
        sessions = (
            await http.get(
                f"{rig.worker_url}/api/v1/sessions",
                headers={"Authorization": f"Bearer {rig.token}"},
            )
        ).json()["sessions"]
    active = [s for s in sessions if s["state"] == "active"]
    prompt = active[0]["parameters"].get("prompt", "seq 0") if active else "seq 0"
    worker_seq = int(prompt.split()[-1])
    gaps = outage(rig.sink, t0)
    first_frame_at = t0 + gaps["drop_to_first_frame_s"]
    return {
        "detect_s": None if detected_at is None else detected_at - t0,
        **gaps,
        "path_back_to_first_frame_s": max(0.0, first_frame_at - path_back),
        "params_lost": seq - worker_seq,
        "params_refused": refused,
        "recovered": bool(back),
    }


def spread(values: list[float | None]) -> dict[str, float | None] | None:
    present = [v for v in values if v is not None and v == v]
    if not present:
        return None
    return {
        "min": round(min(present), 3),
        "median": round(statistics.median(present), 3),
        "max": round(max(present), 3),
        "n": len(present),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--faults", default=",".join(FAULTS))
    opts = parser.parse_args()
    BENCH_CLIENT.install()
    faults = opts.faults.split(",")
    results: dict[str, dict[str, list[dict[str, Any]]]] = {f: {} for f in faults}
    for mode in ("heartbeat", "aiortc-only"):
        rig = Rig(heartbeat=mode == "heartbeat")
        await rig.start()
        try:
            for fault in faults:
                runs = [await one_run(rig, fault) for _ in range(opts.runs)]
                results[fault][mode] = runs
        finally:
            await rig.stop()
    for fault in faults:
        line: dict[str, Any] = {"bench": "recovery", "fault": fault, "runs": opts.runs}
        for mode, runs in results[fault].items():
            line[mode] = {
                key: spread([r[key] for r in runs])
                for key in (
                    "detect_s",
                    "outage_s",
                    "longest_freeze_s",
                    "drop_to_first_frame_s",
                    "path_back_to_first_frame_s",
                    "params_lost",
                    "params_refused",
                )
            }
            line[mode]["recovered"] = sum(r["recovered"] for r in runs)
            line[mode]["undetected_runs"] = sum(r["detect_s"] is None for r in runs)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
