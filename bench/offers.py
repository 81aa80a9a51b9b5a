"""Broken offers and token-less handshakes against real processes (issue: a broken offer
never touches the live stream). One JSON line per case.

- ``stream``: a client streams a numbered 256x256 picture at 30 fps through studio and
  worker; 10 s alone, then 10 s while an attacker posts, twice a second, each broken
  offer (no fingerprint, md5 fingerprint, no ICE password, 8 video sections) and one
  that passes every check but carries another certificate's fingerprint. Per 5 s
  window: distinct frames a second at the victim and its longest freeze.
- ``handshakes``: 300 token-less WebSocket handshakes at once against a worker at
  ``--log-level debug`` and one at ``info``: the worker's CPU seconds for the burst and
  the slowest ``/health`` during it.

``--servers SRC`` runs the studio and worker from another source tree (before/after
side by side); the clients are this tree's. Loopback only, bounded in count and time:

    tools/loopback-only .venv/bin/python -m bench.offers [--servers /path/to/old/src]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from typing import Any

import httpx
import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription

from bench import BENCH_CLIENT
from tether.tools.probe import FrameSink, NumberedSource, StudioClient
from tether.tools.processes import free_port

TOKEN = "bench-offers"


def spawn(args: list[str], servers: str | None, level: str = "warning") -> subprocess.Popen:
    env = {**os.environ, "TETHER_ICE_HOSTS": "loopback", "TETHER_WORKER_TOKEN": TOKEN}
    if servers:
        env["PYTHONPATH"] = servers
    return subprocess.Popen(
        [sys.executable, "-m", "tether", *args, "--log-level", level],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def healthy(url: str, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(f"{url}/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not start")


async def until(check, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        await asyncio.sleep(0.05)


async def real_offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def broken(sdp: str) -> list[str]:
    lines = sdp.splitlines(keepends=True)
    md5 = "a=fingerprint:md5 " + ":".join(["AB"] * 16)
    return [
        "".join(x for x in lines if not x.startswith("a=fingerprint")),
        re.sub(r"^a=fingerprint:.*$", md5, sdp, flags=re.M),
        "".join(x for x in lines if not x.startswith("a=ice-pwd")),
        sdp + sdp[sdp.index("m=video") :] * 7,
    ]


async def attack(url: str, until: float, answers: dict[str, dict[str, int]]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        while time.monotonic() < until:
            donor, donor_sdp = await real_offer()
            forger, sdp = await real_offer()
            try:
                fingerprint = re.search(r"^a=fingerprint:.*$", donor_sdp, flags=re.M)
                assert fingerprint is not None
                forged = re.sub(r"^a=fingerprint:.*$", fingerprint.group(0), sdp, flags=re.M)
                kinds = ["no fingerprint", "md5", "no ICE password", "8 video sections"]
                for kind, body in zip([*kinds, "forged"], [*broken(sdp), forged], strict=True):
                    r = await http.post("/api/v1/webrtc/offer", json={"sdp": body, "type": "offer"})
                    codes = answers.setdefault(kind, {})
                    codes[str(r.status_code)] = codes.get(str(r.status_code), 0) + 1
                    if r.status_code == 200 and forger.signalingState == "have-local-offer":
                        # let it try DTLS, as a real client would
                        answer = RTCSessionDescription(r.json()["sdp"], "answer")
                        await forger.setRemoteDescription(answer)
                await asyncio.sleep(0.5)
            finally:
                await donor.close()
                await forger.close()


def windows(sink: FrameSink, start: float, end: float, size_s: float = 5.0) -> list[dict]:
    out = []
    t = start
    while t + size_s <= end + 1e-6:
        seen: dict[int, float] = {}
        for at, frame_id in sink.history:
            if t <= at < t + size_s and frame_id not in seen:
                seen[frame_id] = at
        times = sorted([t, *seen.values(), t + size_s])
        freeze = max(b - a for a, b in zip(times, times[1:], strict=False))
        fps = round(len(seen) / size_s, 1)
        out.append({"distinct_fps": fps, "longest_freeze_s": round(freeze, 3)})
        t += size_s
    return out


async def stream_case(servers: str | None, seconds: float) -> dict[str, Any]:
    worker_port, studio_port = free_port(), free_port()
    worker = spawn(["worker", "--port", str(worker_port)], servers)
    worker_url = f"http://127.0.0.1:{worker_port}"
    studio = spawn(["studio", "--port", str(studio_port), "--worker", worker_url], servers)
    url = f"http://127.0.0.1:{studio_port}"
    source = NumberedSource(256, 256, 30)
    sink = FrameSink(source=source, keep_rgb=False)
    client = StudioClient(url, source, sink)
    try:
        await healthy(worker_url)
        await healthy(url)
        await client.start({"pipeline": "passthrough"})
        await until(lambda: sink.frames >= 30, 30)
        async with httpx.AsyncClient(base_url=url) as http:
            before = (await http.get("/api/v1/cloud/status")).json()["stream_id"]
        t0 = time.monotonic()
        await asyncio.sleep(seconds)  # the victim alone: the measure itself
        t1 = time.monotonic()
        answers: dict[str, dict[str, int]] = {}
        await attack(url, t1 + seconds, answers)
        t2 = time.monotonic()
        async with httpx.AsyncClient(base_url=url) as http:
            after = (await http.get("/api/v1/cloud/status")).json()
        return {
            "bench": "offers",
            "case": "stream",
            "alone": windows(sink, t0, t1),
            "attacked": windows(sink, t1, t2),
            "answers": answers,
            "victim_still_the_stream": after["stream_id"] == before,
            "streaming_after": after["streaming"],
        }
    finally:
        await client.close()
        for proc in (studio, worker):
            proc.terminate()
            proc.wait(15)


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def handshake_case(servers: str | None, level: str, count: int) -> dict[str, Any]:
    port = free_port()
    proc = spawn(["worker", "--port", str(port)], servers, level)
    url = f"http://127.0.0.1:{port}"
    try:
        await healthy(url)

        async def knock() -> None:
            try:
                async with websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=20):
                    pass
            except (websockets.InvalidHandshake, OSError, TimeoutError):
                pass

        async def health_s() -> float:
            async with httpx.AsyncClient(timeout=30) as http:
                started = time.monotonic()
                await http.get(f"{url}/health")
                return time.monotonic() - started

        cpu0 = cpu_s(proc.pid)
        burst = asyncio.gather(*(knock() for _ in range(count)))
        slowest = max(await asyncio.gather(*(health_s() for _ in range(5))))
        await burst
        slowest = max(slowest, await health_s())
        return {
            "bench": "offers",
            "case": "handshakes",
            "log_level": level,
            "handshakes": count,
            "worker_cpu_s": round(cpu_s(proc.pid) - cpu0, 2),
            "slowest_health_s": round(slowest, 3),
        }
    finally:
        proc.terminate()
        proc.wait(15)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--servers", help="source tree (src/) the studio and worker run from")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--handshakes", type=int, default=300)
    args = parser.parse_args()
    label = {"servers": args.servers or "this tree"}
    with BENCH_CLIENT.installed():
        print(json.dumps({**await stream_case(args.servers, args.seconds), **label}), flush=True)
        for level in ("debug", "info"):
            line = await handshake_case(args.servers, level, args.handshakes)
            print(json.dumps({**line, **label}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
