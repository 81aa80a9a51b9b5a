"""Network benchmark: a 512x512 30 fps stream across the network lab (studio and client
in one namespace, the worker in another, a router between them), with the faults of
issue 10 injected in the router. One JSON line per scenario. Needs root.

    sudo .venv/bin/python -m bench.network [--scenarios hole-3,loss-5,...] [--loss-s 60]

Scenarios: hole-N (blackhole of N s), move (the worker's address changes), loss-P
(P % random loss each way), cap-K (a K kbit/s cap each way), delay-M (M ms one way).
Parameter updates are posted every 0.2 s throughout; params_lost counts those the
worker never applied."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.net.lab import Lab
from tests.net.rig import LabStream

DEFAULT = (
    "hole-3,hole-10,hole-40,move,loss-2,loss-5,loss-10,loss-20,loss-40,"
    "cap-250,cap-500,cap-1000,cap-2000,delay-150"
)
STABLE_S = 6.0  # the supervisor counts a loss within 5 s of a recovery as a relapse
RECOVER_S = 60.0  # past this after the fault ends, a human would have pressed Retry


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


class Updates:
    """Posts a parameter update every 0.2 s while a scenario runs."""

    def __init__(self, rig: LabStream) -> None:
        self.rig = rig
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # the studio is local: must not stop us
                await self.rig.post_parameters()
            await asyncio.sleep(0.2)

    def __enter__(self) -> Updates:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    async def lost(self) -> int | None:
        """Updates the worker never applied, once the link is back (None: it never was)."""
        assert self._task is not None
        self._stop.set()
        await self._task
        try:
            await self.rig.wait(self.rig.synced, RECOVER_S, "parameters acknowledged")
        except AssertionError:
            assert self.rig.http is not None
            await self.rig.http.post("/api/v1/cloud/reconnect")  # what a user would do
            try:
                await self.rig.wait(self.rig.synced, RECOVER_S, "parameters acknowledged")
            except AssertionError:
                return None
        try:
            return self.rig.seq - await self.rig.worker_seq()
        except AssertionError as exc:
            print(f"params check: {exc}", file=sys.stderr, flush=True)
            return None


async def settle(rig: LabStream) -> None:
    await rig.wait(rig.synced, RECOVER_S, "link back", every_s=0.1)
    await asyncio.sleep(STABLE_S)


async def outage(rig: LabStream, name: str, start, end, hold_s: float) -> dict[str, Any]:
    """A fault from ``start()`` to ``end()``; time detection and frames back."""
    lab, before = rig.lab, await rig.status()
    with Updates(rig) as updates:
        t0 = time.monotonic()
        start()
        detected: float | None = None
        while time.monotonic() < t0 + hold_s:
            if detected is None and (await rig.status())["state"] != "connected":
                detected = time.monotonic()
            await asyncio.sleep(0.05)
        end()
        t1 = time.monotonic()
        state_at_end = (await rig.status())["state"]
        human = False
        try:
            await rig.wait(lambda: rig.first_fresh_frame_after(t1), RECOVER_S, "frames back")
        except AssertionError:
            human = True  # never came back by itself: press Retry, as a user would
            await rig.http.post("/api/v1/cloud/reconnect")
            await rig.wait(lambda: rig.first_fresh_frame_after(t1), RECOVER_S, "frames back")
        back = rig.first_fresh_frame_after(t1)
        lost = await updates.lost()
    after = await rig.status()
    del lab
    return {
        "scenario": name,
        "detect_s": None if detected is None else round(detected - t0, 3),
        "state_when_path_returned": state_at_end,
        "frames_back_s": None if human else round(back - t1, 3),
        "needed_retry": human,
        "reconnects": after["stats"]["reconnects"] - before["stats"]["reconnects"],
        "params_lost": lost,
    }


async def steady(
    rig: LabStream, name: str, start, end, duration_s: float, warmup_s: float = 3.0
) -> dict[str, Any]:
    """A lasting condition: count false detections, reconnects, fps and latency."""
    lab = rig.lab
    start()
    await asyncio.sleep(warmup_s)
    before = await rig.status()
    dropped0 = lab.dropped() + lab.cap_dropped()
    states: list[str] = []
    with Updates(rig) as updates:
        t0 = time.monotonic()
        while time.monotonic() < t0 + duration_s:
            state = (await rig.status())["state"]
            if not states or states[-1] != state:
                states.append(state)
            await asyncio.sleep(0.1)
        t1 = time.monotonic()
        after = await rig.status()
        dropped = lab.dropped() + lab.cap_dropped() - dropped0
        end()
        lost = await updates.lost()
    lat = rig.latencies_between(t0, t1)
    outages = after["stats"]["outages"] - before["stats"]["outages"]
    seen = {json.dumps(e, sort_keys=True) for e in before["events"]}
    why = [
        e["reason"]
        for e in after["events"]
        if e["kind"] == "reconnecting" and json.dumps(e, sort_keys=True) not in seen
    ]
    result = {
        "scenario": name,
        "duration_s": round(t1 - t0, 1),
        "false_detections": outages,
        "false_detections_per_min": round(outages * 60 / (t1 - t0), 2),
        "reconnects": after["stats"]["reconnects"] - before["stats"]["reconnects"],
        "fps": round(rig.fps_between(t0, t1), 1),
        "latency_p50_s": pct(lat, 0.5),
        "latency_p95_s": pct(lat, 0.95),
        "width_min_median": _widths(rig, t0, t1),
        "router_dropped": dropped,
        "states": states,
        "detections": why,
        "params_lost": lost,
    }
    await settle(rig)
    return result


def _widths(rig: LabStream, t0: float, t1: float) -> list[int] | None:
    """The smallest and the median width of the pictures that came back (a link short
    of bitrate shrinks them)."""
    widths = sorted(w for t, w in rig.sink.widths if t0 <= t <= t1)
    return [widths[0], widths[len(widths) // 2]] if widths else None


async def scenario(rig: LabStream, name: str, opts: argparse.Namespace) -> dict[str, Any]:
    lab = rig.lab
    kind, _, arg = name.partition("-")
    await settle(rig)
    if kind == "hole":
        result = await outage(
            rig, name, lambda: lab.blackhole(True), lambda: lab.blackhole(False), float(arg)
        )
    elif kind == "move":
        addrs = ["198.18.2.3", "198.18.2.2"]
        new = addrs[0] if lab.worker_addr != addrs[0] else addrs[1]
        result = await outage(rig, name, lambda: lab.move_worker(new), lambda: None, 0.0)
    elif kind == "loss":
        p = float(arg) / 100
        result = await steady(rig, name, lambda: lab.loss(p), lambda: lab.loss(0), opts.loss_s)
    elif kind == "cap":
        k = int(arg)
        result = await steady(rig, name, lambda: lab.cap(k), lambda: lab.cap(None), opts.cap_s)
    elif kind == "delay":
        ms = float(arg)
        result = await steady(
            rig, name, lambda: lab.delay(ms), lambda: lab.delay(None), opts.delay_s
        )
    else:
        raise SystemExit(f"unknown scenario {name!r}")
    return {"bench": "network", "label": opts.label, "grain": opts.grain, **result}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenarios", default=DEFAULT)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--loss-s", type=float, default=60.0)
    parser.add_argument("--cap-s", type=float, default=30.0)
    parser.add_argument("--delay-s", type=float, default=30.0)
    parser.add_argument("--label", default="")
    parser.add_argument(
        "--still",
        dest="grain",
        action="store_false",
        help="a still test picture (default: camera-like noise, so the stream needs bitrate)",
    )
    opts = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="tether-netbench-") as tmp, Lab(Path(tmp)) as lab:
        rig = LabStream(lab, 512, 30, scene="camera" if opts.grain else "still")
        async with rig:
            for _ in range(opts.runs):
                for name in opts.scenarios.split(","):
                    result = await scenario(rig, name, opts)
                    results.setdefault(name, []).append(result)
                    print(json.dumps(result), flush=True)
    if opts.runs > 1:
        for name, runs in results.items():
            spread = {}
            for key in ("frames_back_s", "false_detections_per_min", "fps", "latency_p95_s"):
                vals = [r[key] for r in runs if r.get(key) is not None]
                if vals:
                    spread[key] = [min(vals), statistics.median(vals), max(vals)]
            print(json.dumps({"bench": "network", "scenario": name, "min_median_max": spread}))


if __name__ == "__main__":
    asyncio.run(main())
