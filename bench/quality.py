"""Frame-quality benchmark: PSNR and SSIM of the frames a `passthrough` worker returns,
against the source picture of the same frame number, on the direct path (client ->
worker -> client) and through the studio (client -> studio -> worker -> studio ->
client), and through a studio that decodes and re-encodes (TETHER_FORWARD_VIDEO=0),
one after the other in the same run. Prints one JSON line per path and a summary.

The source is a textured, detailed picture (a sinusoid plus hard-edged random blocks):
`--picture moving` pans it every frame; `--picture still` holds it, the case issue 19
measured (a still picture lets each path refine it as its bitrate ramps up, so the
paths part late in the ramp, not early). Both metrics are on luma (Y), below the band
that carries the frame number; each frame number counts once (its first arrival).

Times are from the start of each path's stream. Each path reports its mean over the
run after the warm-up (`psnr_db`, `ssim`), per 5 s window (`windows`), and "late"
(frames arriving from 15 s on); the summary gives studio minus direct, late.

    python -m bench.quality [--picture moving|still] [--seconds 25] [--fps 30]
                            [--size 512] [--csv FILE]

Against another tree: the worker and studio are `python -m tether` with this
environment, so `PYTHONPATH=OTHER/src:$PWD python -m bench.quality` measures OTHER's
tether with this bench.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import secrets
import statistics
import subprocess
import time

import av
import numpy as np

from bench import BENCH_CLIENT
from bench.relay import WARMUP_S, machine, start
from tether.media.frame_id import BAND, stamp_id
from tether.tools.probe import FrameSink, NumberedSource, StudioClient, WorkerClient
from tether.tools.processes import free_port

SHIFT_PX = {"moving": 3, "still": 0}  # the picture moves this far each frame
WINDOW_S = 5.0
LATE_S = 15.0  # "late in the ramp": the encoders have had time to refine the picture


class TexturedSource(NumberedSource):
    """A numbered source whose picture is a function of the frame number."""

    def __init__(self, width: int, height: int, fps: float, shift_px: int) -> None:
        super().__init__(width, height, fps)
        self.shift_px = shift_px
        rng = np.random.default_rng(7)
        y, x = np.mgrid[0:height, 0 : 2 * width]
        texture = rng.integers(0, 60, (height // 8 + 1, width // 4 + 1)).repeat(8, 0).repeat(8, 1)
        luma = 40 + 80 * (1 + np.sin(x / 23.0) * np.cos(y / 31.0)) + texture[:height, : 2 * width]
        self._luma = np.clip(luma, 0, 255).astype(np.uint8)
        cu = (128 + 60 * np.sin(x[::2, ::2] / 40.0)).astype(np.uint8)
        cv = (128 + 60 * np.cos(y[::2, ::2] / 30.0)).astype(np.uint8)
        self._chroma = (cu, cv)

    def planes(self, frame_id: int) -> np.ndarray:
        w, h = self.width, self.height
        offset = (frame_id * self.shift_px) % w
        luma = self._luma[:, offset : offset + w]
        half = offset // 2
        cu, cv = (c[:, half : half + w // 2] for c in self._chroma)
        planes = np.concatenate([luma, cu.reshape(h // 4, w), cv.reshape(h // 4, w)])
        stamp_id(planes, w, frame_id)
        return planes


class LumaSink(FrameSink):
    """Keeps the luma of each frame number's first arrival, and when it came (seconds
    since the stream started)."""

    def __init__(self, source: NumberedSource) -> None:
        super().__init__(source=source, keep_rgb=False)
        self.recording = False
        self.started = time.monotonic()
        self.lumas: dict[int, tuple[float, np.ndarray]] = {}

    def record(self, frame: av.VideoFrame) -> None:
        super().record(frame)
        if self.recording and self.last_id is not None and self.last_id not in self.lumas:
            at = time.monotonic() - self.started
            self.lumas[self.last_id] = (at, frame.to_ndarray()[: frame.height].copy())


def _box(image: np.ndarray, size: int) -> np.ndarray:
    """Mean over each size x size window (valid region), via an integral image."""
    integral = np.pad(image, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    total = (
        integral[size:, size:]
        - integral[:-size, size:]
        - integral[size:, :-size]
        + integral[:-size, :-size]
    )
    return total / (size * size)


def ssim(a: np.ndarray, b: np.ndarray, win: int = 7) -> float:
    """Mean SSIM (Wang et al. 2004) with a uniform 7x7 window, as scikit-image does."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    n = win * win
    cov = n / (n - 1)  # sample covariance
    ma, mb = _box(a, win), _box(b, win)
    va = cov * (_box(a * a, win) - ma * ma)
    vb = cov * (_box(b * b, win) - mb * mb)
    vab = cov * (_box(a * b, win) - ma * mb)
    s = ((2 * ma * mb + c1) * (2 * vab + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return float(s.mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


Scores = dict[int, tuple[float, float, float]]  # frame number -> (at_s, psnr, ssim)


def scores(source: TexturedSource, sink: LumaSink) -> Scores:
    h = source.height
    out = {}
    for frame_id, (at, luma) in sink.lumas.items():
        ref = source.planes(frame_id)[:h]
        body, ref_body = luma[BAND:], ref[BAND:]
        out[frame_id] = (at, psnr(body, ref_body), ssim(body, ref_body))
    return out


def stats(values: list[float], digits: int) -> dict[str, float] | None:
    if not values:
        return None
    values = sorted(values)
    return {
        "mean": round(statistics.fmean(values), digits),
        "p5": round(values[int(0.05 * (len(values) - 1))], digits),
        "min": round(values[0], digits),
    }


def windows(values: Scores, seconds: float) -> list[dict]:
    """Mean PSNR and SSIM of the frames that arrived in each 5 s window."""
    out = []
    begin = 0.0
    while begin < seconds:
        end = min(begin + WINDOW_S, seconds)
        inside = [v for v in values.values() if begin <= v[0] < end]
        out.append(
            {
                "from_s": begin,
                "to_s": end,
                "frames": len(inside),
                "psnr_db": round(statistics.fmean(v[1] for v in inside), 2) if inside else None,
                "ssim": round(statistics.fmean(v[2] for v in inside), 4) if inside else None,
            }
        )
        begin = end
    return out


def path_line(name: str, values: Scores, opts: argparse.Namespace, fps_out: float) -> dict:
    after = [v for v in values.values() if v[0] >= WARMUP_S]
    late = [v for v in values.values() if v[0] >= LATE_S]
    return {
        "bench": "quality",
        "path": name,
        "picture": opts.picture,
        "size": f"{opts.size}x{opts.size}",
        "fps": round(fps_out, 2),
        "frames": len(after),
        "psnr_db": stats([v[1] for v in after], 2),
        "ssim": stats([v[2] for v in after], 4),
        "late_from_s": LATE_S,
        "late_frames": len(late),
        "late_psnr_db": stats([v[1] for v in late], 2),
        "late_ssim": stats([v[2] for v in late], 4),
        "windows": windows(values, opts.seconds),
    }


async def run_path(start_client, opts: argparse.Namespace):
    source = TexturedSource(opts.size, opts.size, opts.fps, SHIFT_PX[opts.picture])
    sink = LumaSink(source)
    sink.recording = True
    close = await start_client(source, sink)
    try:
        await asyncio.sleep(WARMUP_S)
        since = time.monotonic()
        await asyncio.sleep(max(opts.seconds - WARMUP_S, 0))
        sink.recording = False
        fps_out = sink.fps_since(since)
    finally:
        await close()
    return source, sink, fps_out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--picture", choices=sorted(SHIFT_PX), default="moving")
    parser.add_argument("--seconds", type=float, default=25, help="each path's stream")
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--csv", help="write per-frame PSNR/SSIM of every path here")
    opts = parser.parse_args()
    BENCH_CLIENT.install()
    token = secrets.token_urlsafe(12)
    wport = free_port()
    worker_url = f"http://127.0.0.1:{wport}"
    worker_env = {"TETHER_WORKER_TOKEN": token, "TETHER_SESSION_GRACE_S": "0"}
    procs = [start(["worker", "--port", str(wport)], worker_env, worker_url)]

    def studio(forward: bool) -> str:
        sport = free_port()
        url = f"http://127.0.0.1:{sport}"
        env = {"TETHER_WORKER_TOKEN": token, "TETHER_FORWARD_VIDEO": "1" if forward else "0"}
        procs.append(start(["studio", "--port", str(sport), "--worker", worker_url], env, url))
        return url

    async def direct(source, sink):
        client = WorkerClient(worker_url, token, source, sink)
        await client.start({"pipeline": "passthrough"})
        return client.close

    def through(url: str):
        async def begin(source, sink):
            client = StudioClient(url, source, sink)
            await client.start({"pipeline": "passthrough"})
            return client.close

        return begin

    per_path: dict[str, Scores] = {}
    lines = []
    try:
        paths = [("direct", direct), ("studio", None), ("studio_transcode", None)]
        for name, begin in paths:
            if begin is None:
                begin = through(studio(name == "studio"))
            source, sink, fps_out = await run_path(begin, opts)
            if len(procs) > 1:
                stop(procs.pop())
            per_path[name] = scores(source, sink)
            lines.append(path_line(name, per_path[name], opts, fps_out))
    finally:
        for proc in procs:
            stop(proc)
    for line in lines:
        print(json.dumps(line))
    print(json.dumps(summary(per_path, lines, opts)))
    if opts.csv:
        write_csv(opts.csv, per_path)


def late_mean(line: dict, key: str, stat: str = "mean") -> float | None:
    return line[key][stat] if line[key] is not None else None


def minus(a: float | None, b: float | None, digits: int) -> float | None:
    return None if a is None or b is None else round(a - b, digits)


def summary(per_path: dict[str, Scores], lines: list[dict], opts: argparse.Namespace) -> dict:
    direct_scores, studio_scores = per_path["direct"], per_path["studio"]
    common = sorted(
        i for i in set(direct_scores) & set(studio_scores) if direct_scores[i][0] >= WARMUP_S
    )
    direct, studio, transcode = lines
    late_diff = minus(late_mean(studio, "late_psnr_db"), late_mean(direct, "late_psnr_db"), 2)
    return {
        "bench": "quality",
        "summary": True,
        "picture": opts.picture,
        "seconds": opts.seconds,
        "machine": machine(),
        "frames_compared": len(common),
        "studio_minus_direct_psnr_db": round(
            statistics.fmean(studio_scores[i][1] - direct_scores[i][1] for i in common), 2
        )
        if common
        else None,
        "studio_minus_direct_ssim": round(
            statistics.fmean(studio_scores[i][2] - direct_scores[i][2] for i in common), 4
        )
        if common
        else None,
        "late_studio_minus_direct_psnr_db": late_diff,
        "late_studio_minus_direct_ssim": minus(
            late_mean(studio, "late_ssim"), late_mean(direct, "late_ssim"), 4
        ),
        # The studio's `hold` fallback asks the worker for a keyframe every 5 s: on a
        # still picture each is a brief dip, seen here rather than in the mean.
        "late_studio_minus_direct_psnr_p5_db": minus(
            late_mean(studio, "late_psnr_db", "p5"), late_mean(direct, "late_psnr_db", "p5"), 2
        ),
        "late_transcode_minus_direct_psnr_db": minus(
            late_mean(transcode, "late_psnr_db"), late_mean(direct, "late_psnr_db"), 2
        ),
        "targets": {
            "studio_late_psnr_within_0_5db_of_direct": late_diff is not None and late_diff >= -0.5
        },
    }


def write_csv(path: str, per_path: dict[str, Scores]) -> None:
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["path", "frame", "at_s", "psnr_db", "ssim"])
        for name, values in per_path.items():
            for frame_id, (at, p, s) in sorted(values.items()):
                writer.writerow([name, frame_id, round(at, 3), round(p, 3), round(s, 5)])


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
