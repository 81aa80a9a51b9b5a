"""Network benchmark: a 512x512 30 fps camera-like stream (tools.scene) across the network
lab (studio and client in one namespace, the worker in another, a router between them),
with faults injected in the router. Needs root.

    sudo .venv/bin/python -m bench.network [--case delay-150,cap-250,...] [--seconds 8]
        [--runs N] [--jitter-ms 10] [--still] [--label TEXT]

Cases (``--case``, comma separated; default: all the ones listed in DEFAULT):
- ``delay-M``: M ms one way, each way, +-``--jitter-ms`` (10), no cap; 40 s.
- ``delayloss-M-P``: the same delay plus P % random loss each way; 60 s.
- ``cap-K``: a K kbit/s token bucket each way; 45 s.
- ``loss-P``: P % random loss each way; 60 s.
- ``hole-N``: a blackhole of N s, then the path returns (``hole-10`` runs 5 times).
- ``move``: the worker's address changes.
``--seconds S`` makes each lasting condition (delay, loss, cap) last S s, for a smoke
run; a hole keeps its length. ``--runs N`` runs every case N times.

Output: one JSON line per case run, ``{"bench": "network", "case": ..., "run": k, ...}``:
- lasting conditions: ``false_detections`` (outages the link declared; counted after a
  3 s warm-up), ``reconnects``, ``states``, ``detections``, ``router_dropped``,
  ``params_lost``;
- holes and moves: ``detect_s``, ``frames_back_s`` (lift to the first frame captured
  after it), ``first_new_frame_s`` (lift to the first picture not shown before),
  ``needed_retry``, ``reconnects``, ``params_lost``;
- both: ``windows``, what a viewer saw per 5 s from the condition's start, and ``view``,
  the same over the whole case with ``late`` (after the first 10 s): ``distinct_fps``,
  ``fps``, ``full_size`` (share of frames at 512x512), ``sizes``, ``rtt_p50_ms`` /
  ``rtt_p95_ms`` (capture to first arrival back), ``freezes`` (> 200 ms without a new
  picture), ``longest_gap_ms``. See tether.tools.viewing.
A case run more than once adds a line ``{"case": ..., "min_median_max": {...}}``.
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
    "delay-50,delay-100,delay-150,delay-250,delayloss-100-2,cap-150,cap-250,cap-500,"
    "hole-1,hole-10,hole-60,hole-40,move,loss-5,loss-10"
)
SECONDS = {"delay": 40.0, "delayloss": 60.0, "cap": 45.0, "loss": 60.0}
RUNS = {"hole-10": 5}
STABLE_S = 6.0  # the supervisor counts a loss within 5 s of a recovery as a relapse
RECOVER_S = 60.0  # past this after the fault ends, a human would have pressed Retry
AFTER_S = 5.0  # a hole's windows go on this long after its frames are back
WARMUP_S = 3.0  # a lasting condition's false detections count after this


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


async def outage(rig: LabStream, start, end, hold_s: float) -> dict[str, Any]:
    """A fault from ``start()`` to ``end()``; time detection and frames back."""
    before = await rig.status()
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
        new = rig.first_new_frame_after(t1)
        lost = await updates.lost()
    await asyncio.sleep(max(0.0, back + AFTER_S - time.monotonic()))
    view = rig.view(t0, back + AFTER_S)
    after = await rig.status()
    return {
        "detect_s": None if detected is None else round(detected - t0, 3),
        "state_when_path_returned": state_at_end,
        "frames_back_s": None if human else round(back - t1, 3),
        "first_new_frame_s": None if human or new is None else round(new - t1, 3),
        "needed_retry": human,
        "reconnects": after["stats"]["reconnects"] - before["stats"]["reconnects"],
        "params_lost": lost,
        "windows": view["windows"],
        "view": view["summary"],
    }


async def steady(rig: LabStream, start, end, duration_s: float) -> dict[str, Any]:
    """A lasting condition: what a viewer sees, false detections and reconnects."""
    lab = rig.lab
    t_start = time.monotonic()
    start()
    await asyncio.sleep(min(WARMUP_S, duration_s / 2))
    before = await rig.status()
    dropped0 = lab.dropped() + lab.cap_dropped()
    states: list[str] = []
    with Updates(rig) as updates:
        t0 = time.monotonic()
        while time.monotonic() < t_start + duration_s:
            state = (await rig.status())["state"]
            if not states or states[-1] != state:
                states.append(state)
            await asyncio.sleep(0.1)
        t1 = time.monotonic()
        after = await rig.status()
        dropped = lab.dropped() + lab.cap_dropped() - dropped0
        end()
        lost = await updates.lost()
    view = rig.view(t_start, t1)
    outages = after["stats"]["outages"] - before["stats"]["outages"]
    seen = {json.dumps(e, sort_keys=True) for e in before["events"]}
    why = [
        e["reason"]
        for e in after["events"]
        if e["kind"] == "reconnecting" and json.dumps(e, sort_keys=True) not in seen
    ]
    result = {
        "seconds": round(t1 - t_start, 1),
        "false_detections": outages,
        "false_detections_per_min": round(outages * 60 / (t1 - t0), 2),
        "reconnects": after["stats"]["reconnects"] - before["stats"]["reconnects"],
        "router_dropped": dropped,
        "states": states,
        "detections": why,
        "params_lost": lost,
        "windows": view["windows"],
        "view": view["summary"],
    }
    await settle(rig)
    return result


def condition(lab: Lab, name: str, jitter_ms: float):
    """``(start, end)`` of the lasting condition called ``name``, and its kind."""
    kind, _, arg = name.partition("-")
    if kind in ("delay", "delayloss"):
        ms, _, loss = arg.partition("-")
        low = max(float(ms) - jitter_ms, 0.0)  # the element adds 0..2j: ms +- j

        def start() -> None:
            lab.delay(low, 2 * jitter_ms)
            lab.loss(float(loss or 0) / 100)

        return kind, start, lambda: (lab.delay(None), lab.loss(0))
    if kind == "loss":
        return kind, lambda: lab.loss(float(arg) / 100), lambda: lab.loss(0)
    if kind == "cap":
        return kind, lambda: lab.cap(int(arg)), lambda: lab.cap(None)
    raise SystemExit(f"unknown case {name!r}")


async def run_case(rig: LabStream, name: str, opts: argparse.Namespace) -> dict[str, Any]:
    lab = rig.lab
    kind, _, arg = name.partition("-")
    await settle(rig)
    if kind == "hole":
        result = await outage(
            rig, lambda: lab.blackhole(True), lambda: lab.blackhole(False), float(arg)
        )
    elif kind == "move":
        addrs = ["198.18.2.3", "198.18.2.2"]
        new = addrs[0] if lab.worker_addr != addrs[0] else addrs[1]
        result = await outage(rig, lambda: lab.move_worker(new), lambda: None, 0.0)
    else:
        kind, start, end = condition(lab, name, opts.jitter_ms)
        result = await steady(rig, start, end, opts.seconds or SECONDS[kind])
    return {"bench": "network", "case": name, "label": opts.label, "scene": opts.scene, **result}


def spread(runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """min, median and max of the headline figures over several runs of one case."""
    figures = {
        "frames_back_s": lambda r: r.get("frames_back_s"),
        "first_new_frame_s": lambda r: r.get("first_new_frame_s"),
        "false_detections_per_min": lambda r: r.get("false_detections_per_min"),
        "distinct_fps": lambda r: r["view"]["distinct_fps"],
        "full_size": lambda r: r["view"]["full_size"],
        "rtt_p95_ms": lambda r: r["view"]["rtt_p95_ms"],
    }
    out = {}
    for key, get in figures.items():
        values = [v for v in map(get, runs) if v is not None]
        if values:
            out[key] = [min(values), statistics.median(values), max(values)]
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", "--scenarios", dest="cases", default=DEFAULT)
    parser.add_argument("--runs", type=int, default=None, help="runs of every case")
    parser.add_argument("--seconds", type=float, default=None, help="length of lasting cases")
    parser.add_argument("--jitter-ms", type=float, default=10.0)
    parser.add_argument("--label", default="")
    parser.add_argument(
        "--still",
        dest="scene",
        action="store_const",
        const="still",
        default="camera",
        help="a still test picture (default: camera-like, so the stream needs bitrate)",
    )
    opts = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {}
    names = [n for n in opts.cases.split(",") if n]
    with tempfile.TemporaryDirectory(prefix="tether-netbench-") as tmp, Lab(Path(tmp)) as lab:
        rig = LabStream(lab, 512, 30, scene=opts.scene)
        async with rig:
            for name in names:
                for run in range(opts.runs or RUNS.get(name, 1)):
                    result = {**await run_case(rig, name, opts), "run": run + 1}
                    results.setdefault(name, []).append(result)
                    print(json.dumps(result), flush=True)
    for name, runs in results.items():
        if len(runs) > 1:
            line = {"bench": "network", "case": name, "runs": len(runs)}
            print(json.dumps({**line, "min_median_max": spread(runs)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
