"""Frame conversion benchmark: a frame to the RGB array a pipeline takes, as the worker
did (PyAV's per-frame converter, ``frame.to_ndarray``) and as it does now (a converter
per thread, tether.media.convert), side by side in one run, on camera-like frames. One
JSON line per case.

    python -m bench.convert [--case speed,threads] [--frames 300]

Cases:
- ``speed``: ms per frame at 512x512 and 1280x720 (yuv420p to rgb24), each way.
- ``threads``: the same frame converted in two threads at once, ``--frames`` times,
  each way, in ``--children`` child processes: how many finished, crashed or hung."""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import textwrap
import time

import av

from tether.media.convert import to_rgb
from tether.tools.scene import CameraScene

WAYS = {"frame.to_ndarray": "frame.to_ndarray(format='rgb24')", "convert.to_rgb": "to_rgb(frame)"}


def _frames(width: int, height: int, count: int) -> list[av.VideoFrame]:
    scene = CameraScene(width, height)
    return [av.VideoFrame.from_ndarray(scene.planes(i), format="yuv420p") for i in range(count)]


def speed(count: int) -> list[dict]:
    out = []
    for width, height in ((512, 512), (1280, 720)):
        frames = _frames(width, height, count)
        took: dict[str, list[float]] = {way: [] for way in WAYS}
        for _ in range(3):  # interleaved rounds: a noisy machine hits both ways alike
            for way in WAYS:
                started = time.perf_counter()
                for frame in frames:
                    if way == "convert.to_rgb":
                        to_rgb(frame)
                    else:
                        frame.to_ndarray(format="rgb24")
                took[way].append((time.perf_counter() - started) / len(frames) * 1000)
        ms = {way: round(min(t), 3) for way, t in took.items()}
        out.append(
            {"case": "speed", "size": f"{width}x{height}", "frames": count, "ms_per_frame": ms,
             "ratio_new_to_old": round(ms["convert.to_rgb"] / ms["frame.to_ndarray"], 2)}
        )  # fmt: skip
    return out


RACE = textwrap.dedent(
    """
    import sys
    from concurrent.futures import ThreadPoolExecutor
    import av, numpy as np
    from tether.media.convert import to_rgb
    pool, rng = ThreadPoolExecutor(2), np.random.default_rng(7)
    for _ in range({count}):
        rgb = rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        [f.result() for f in [pool.submit(lambda: {call}) for _ in range(2)]]
    print("finished", flush=True)
    """
)


def threads(count: int, children: int) -> list[dict]:
    out = []
    for way, call in WAYS.items():
        code = RACE.format(count=count, call=call)
        outcomes: dict[str, int] = {}
        for _ in range(children):
            try:
                done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
                outcome = "finished" if done.returncode == 0 else f"signal {-done.returncode}"
            except subprocess.TimeoutExpired:
                outcome = "hung (60 s)"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        out.append({"case": "threads", "way": way, "frames": count, "children": children,
                    "outcomes": outcomes})  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="speed,threads")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--children", type=int, default=10)
    args = parser.parse_args()
    machine = {"python": platform.python_version(), "av": av.__version__}
    for case in args.case.split(","):
        lines = speed(args.frames) if case == "speed" else threads(args.frames, args.children)
        for line in lines:
            print(json.dumps(line | machine), flush=True)


if __name__ == "__main__":
    main()
