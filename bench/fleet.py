"""Fleet benchmark: failover, drain, spread and busy, measured side by side in one
run with real worker and studio processes on loopback. One JSON line per case.

    python -m bench.fleet [--runs 3]

- failover: the active worker is SIGKILLed (no restart): seconds until frames flow
  from another worker, and parameter updates lost (posted around the kill);
- drain: SIGTERM on the active worker: the longest freeze the client sees;
- spread: 12 studios start at once over 4 workers with a cap of 3: sessions per worker
  at the end, and studios that ever gave up while capacity remained;
- busy: a 13th studio: what it is told, and seconds from a slot freeing to its frames.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx

from bench import BENCH_CLIENT
from bench.waiting import wait_for
from tether.tools.probe import FrameSink, NumberedSource, StudioClient
from tether.tools.processes import free_port

TOKEN = "bench-fleet"


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tether", *args, "--log-level", "warning"],
        env={**os.environ, "TETHER_ICE_HOSTS": "loopback", "TETHER_WORKER_TOKEN": TOKEN, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def get(url: str, path: str) -> dict[str, Any] | None:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            reply = await http.get(url + path, headers={"Authorization": f"Bearer {TOKEN}"})
            return reply.json() if reply.status_code == 200 else None
    except httpx.HTTPError:
        return None


class Worker:
    def __init__(self, cap: int, drain_s: float = 20) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = spawn(
            ["worker", "--port", str(self.port)],
            {"TETHER_MAX_SESSIONS": str(cap), "TETHER_DRAIN_S": str(drain_s)},
        )

    async def ready(self) -> None:
        assert await wait_for(lambda: get(self.url, "/health"), 60), "worker did not start"

    async def sessions(self) -> int | None:
        load = await get(self.url, "/api/v1/load")
        return None if load is None else load["sessions"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Studio:
    def __init__(self, workers: list[Worker], size: int, fps: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = ["studio", "--port", str(self.port)]
        for w in workers:
            args += ["--worker", w.url]
        self.proc = spawn(args, {"TETHER_RECONNECT_DELAYS": "0,0.5,1,2"})
        self.source = NumberedSource(size, size, fps)
        self.sink = FrameSink(source=self.source, keep_rgb=False)
        self.client: StudioClient | None = None
        self.http = httpx.AsyncClient(base_url=self.url, timeout=10)
        self.states: set[str] = set()

    async def status(self) -> dict[str, Any]:
        status = (await self.http.get("/api/v1/cloud/status")).json()
        self.states.add(status["state"])
        return status

    async def start(self, params: dict[str, Any]) -> None:
        assert await wait_for(lambda: get(self.url, "/health"), 60), "studio did not start"
        self.client = StudioClient(self.url, self.source, self.sink)
        await self.client.start(params)

    async def flowing(self, deadline_s: float) -> bool:
        async def check() -> bool:
            status = await self.status()
            return status["state"] == "connected" and status["webrtc_connected"]

        return bool(await wait_for(check, deadline_s, 0.05))

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
        await self.http.aclose()
        self.proc.terminate()
        self.proc.wait(10)


def frames_after(sink: FrameSink, t: float, first_id: int) -> float | None:
    for at, frame_id in sink.history:
        if at > t and frame_id > first_id:
            return at
    return None


async def failover_and_drain(size: int, fps: float) -> list[dict[str, Any]]:
    workers = [Worker(cap=1) for _ in range(3)]
    for w in workers:
        await w.ready()
    studio = Studio(workers, size, fps)
    results = []
    try:
        await studio.start({"pipeline": "tint", "prompt": "green", "strength": 1.0})
        assert await studio.flowing(30), "the stream did not start"
        await asyncio.sleep(1.0)
        # --- failover: SIGKILL, no restart, parameters posted around it ---
        url = (await studio.status())["worker_url"]
        active = next(w for w in workers if w.url == url)
        for i in range(3):
            await studio.http.post("/api/v1/parameters", json={"prompt": f"green {i}"})
        killed_at, last_id = time.monotonic(), studio.source.count
        active.stop()
        for i in range(3, 6):  # while the link moves
            await studio.http.post("/api/v1/parameters", json={"prompt": f"green {i}"})
        back = await wait_for(lambda: frames_after(studio.sink, killed_at, last_id), 20)
        status = await wait_for(lambda: _in_sync(studio), 20)
        session = await _session(status["worker_url"]) if status else None
        lost = 0 if session and session["parameters"].get("prompt") == "green 5" else 1
        results.append(
            {
                "bench": "fleet",
                "case": "failover",
                "frames_back_s": round(back - killed_at, 3) if back else None,
                "parameter_updates_lost": lost,
                "moved_to_other": bool(status and status["worker_url"] != active.url),
                "target_s": 3.0,
            }
        )
        # --- drain: SIGTERM on the active worker, make-before-break ---
        await asyncio.sleep(1.0)
        status = await studio.status()
        active = next(w for w in workers if w.url == status["worker_url"])
        since = time.monotonic()
        active.proc.send_signal(signal.SIGTERM)
        moved = await wait_for(lambda: _moved_from(studio, active.url), 20, 0.05)
        await wait_for(lambda: active.proc.poll() is not None, 25)
        await asyncio.sleep(1.0)
        times = [t for t, _ in studio.sink.history if t >= since]
        longest = max((b - a for a, b in zip(times, times[1:], strict=False)), default=None)
        results.append(
            {
                "bench": "fleet",
                "case": "drain",
                "longest_freeze_ms": round(longest * 1000, 1) if longest else None,
                "moved": bool(moved),
                "worker_exited": active.proc.poll() is not None,
                "reconnects": (await studio.status())["stats"]["reconnects"],
                "target_ms": 200,
            }
        )
    finally:
        await studio.close()
        for w in workers:
            w.stop()
    return results


async def _in_sync(studio: Studio) -> dict[str, Any] | None:
    status = await studio.status()
    ok = (
        status["state"] == "connected"
        and status["params_acked_version"] == status["params_version"]
    )
    return status if ok else None


async def _moved_from(studio: Studio, url: str) -> bool:
    status = await studio.status()
    return any(e["kind"] == "moved" and e["from"] == url for e in status["events"])


async def _session(worker_url: str) -> dict[str, Any] | None:
    body = await get(worker_url, "/api/v1/sessions")
    live = [s for s in (body or {}).get("sessions", []) if s["state"] == "active"]
    return live[0] if live else None


async def spread_and_busy() -> list[dict[str, Any]]:
    workers = [Worker(cap=3) for _ in range(4)]
    for w in workers:
        await w.ready()
    studios = [Studio(workers, 64, 10) for _ in range(13)]
    results = []
    try:
        await asyncio.gather(*(s.start({"pipeline": "passthrough"}) for s in studios[:12]))
        flowing = await asyncio.gather(*(s.flowing(60) for s in studios[:12]))
        sessions = [await w.sessions() for w in workers]
        gave_up = sum(1 for s in studios[:12] if "failed" in s.states)
        results.append(
            {
                "bench": "fleet",
                "case": "spread",
                "studios_flowing": sum(flowing),
                "sessions_per_worker": sessions,
                "studios_that_gave_up": gave_up,
                "target": "[3, 3, 3, 3], 0 gave up",
            }
        )
        late = studios[12]
        await late.start({"pipeline": "passthrough"})
        told = await wait_for(lambda: _told_busy(late), 20, 0.1)
        freed_at = time.monotonic()
        await studios[0].close()
        in_at = await wait_for(lambda: _flowing_now(late), 20, 0.02)
        results.append(
            {
                "bench": "fleet",
                "case": "busy",
                "told": told,
                "in_after_slot_freed_s": round(in_at - freed_at, 3) if in_at else None,
                "target_s": 1.0,
            }
        )
    finally:
        for s in studios:
            if s.proc.poll() is None:
                await s.close()
        for w in workers:
            w.stop()
    return results


async def _told_busy(studio: Studio) -> str | None:
    error = (await studio.status())["error"] or ""
    return error if ("busy" in error or "room" in error) else None


async def _flowing_now(studio: Studio) -> float | None:
    status = await studio.status()
    if status["webrtc_connected"] and studio.sink.frames > 0:
        return time.monotonic()
    return None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--fps", type=float, default=30)
    opts = parser.parse_args()
    BENCH_CLIENT.install()
    for _ in range(opts.runs):
        for line in await failover_and_drain(opts.size, opts.fps):
            print(json.dumps(line), flush=True)
    for line in await spread_and_busy():
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
