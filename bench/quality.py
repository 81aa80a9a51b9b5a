"""Frame-quality benchmark: PSNR and SSIM of the frames a `passthrough` worker returns,
against the source picture of the same frame number, on the direct path (client ->
worker -> client) and through the studio (client -> studio -> worker -> studio ->
client), and through a studio that decodes and re-encodes (TETHER_FORWARD_VIDEO=0),
one after the other in the same run. Prints one JSON line per path and a summary.

The source is a textured picture that moves every frame (a static one lets VP8 refine
it until every path looks perfect). Both metrics are on luma (Y), below the band that
carries the frame number; each frame number counts once (its first arrival).

    python -m bench.quality [--seconds 10] [--fps 30] [--size 512] [--csv FILE]
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

SHIFT_PX = 3  # the picture moves this far each frame


class MovingSource(NumberedSource):
    """A numbered source whose picture is a function of the frame number."""

    def __init__(self, width: int, height: int, fps: float) -> None:
        super().__init__(width, height, fps)
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
        offset = (frame_id * SHIFT_PX) % w
        luma = self._luma[:, offset : offset + w]
        half = offset // 2
        cu, cv = (c[:, half : half + w // 2] for c in self._chroma)
        planes = np.concatenate([luma, cu.reshape(h // 4, w), cv.reshape(h // 4, w)])
        stamp_id(planes, w, frame_id)
        return planes


class LumaSink(FrameSink):
    """Keeps the luma of each frame number's first arrival (during the window)."""

    def __init__(self, source: NumberedSource) -> None:
        super().__init__(source=source, keep_rgb=False)
        self.recording = False
        self.lumas: dict[int, np.ndarray] = {}

    def record(self, frame: av.VideoFrame) -> None:
        super().record(frame)
        if self.recording and self.last_id is not None and self.last_id not in self.lumas:
            self.lumas[self.last_id] = frame.to_ndarray()[: frame.height].copy()


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


def scores(source: MovingSource, sink: LumaSink) -> dict[int, tuple[float, float]]:
    h = source.height
    out = {}
    for frame_id, luma in sink.lumas.items():
        ref = source.planes(frame_id)[:h]
        body, ref_body = luma[BAND:], ref[BAND:]
        out[frame_id] = (psnr(body, ref_body), ssim(body, ref_body))
    return out


def stats(values: list[float], digits: int) -> dict[str, float]:
    values = sorted(values)
    return {
        "mean": round(statistics.fmean(values), digits),
        "p5": round(values[int(0.05 * (len(values) - 1))], digits),
        "min": round(values[0], digits),
    }


async def run_path(start_client, seconds: float, size: int, fps: float):
    source = MovingSource(size, size, fps)
    sink = LumaSink(source)
    close = await start_client(source, sink)
    try:
        await asyncio.sleep(WARMUP_S)
        sink.recording = True
        since = time.monotonic()
        await asyncio.sleep(seconds)
        sink.recording = False
        fps_out = sink.fps_since(since)
    finally:
        await close()
    return source, sink, fps_out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
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

    per_path: dict[str, dict[int, tuple[float, float]]] = {}
    lines = []
    try:
        paths = [("direct", direct), ("studio", None), ("studio_transcode", None)]
        for name, begin in paths:
            if begin is None:
                begin = through(studio(name == "studio"))
            source, sink, fps_out = await run_path(begin, opts.seconds, opts.size, opts.fps)
            if len(procs) > 1:
                stop(procs.pop())
            per_path[name] = scores(source, sink)
            values = list(per_path[name].values())
            lines.append(
                {
                    "bench": "quality",
                    "path": name,
                    "size": f"{opts.size}x{opts.size}",
                    "fps": round(fps_out, 2),
                    "frames": len(values),
                    "psnr_db": stats([v[0] for v in values], 2),
                    "ssim": stats([v[1] for v in values], 4),
                }
            )
    finally:
        for proc in procs:
            stop(proc)
    for line in lines:
        print(json.dumps(line))
    direct_scores, studio_scores = per_path["direct"], per_path["studio"]
    common = sorted(set(direct_scores) & set(studio_scores))
    psnr_diff = [studio_scores[i][0] - direct_scores[i][0] for i in common]
    summary = {
        "bench": "quality",
        "summary": True,
        "machine": machine(),
        "frames_compared": len(common),
        "studio_minus_direct_psnr_db": round(statistics.fmean(psnr_diff), 2),
        "studio_minus_direct_ssim": round(
            statistics.fmean(studio_scores[i][1] - direct_scores[i][1] for i in common), 4
        ),
        "transcode_minus_direct_psnr_db": round(
            lines[2]["psnr_db"]["mean"] - lines[0]["psnr_db"]["mean"], 2
        ),
        "targets": {"studio_psnr_within_1db_of_direct": abs(statistics.fmean(psnr_diff)) <= 1},
    }
    print(json.dumps(summary))
    if opts.csv:
        write_csv(opts.csv, per_path)


def write_csv(path: str, per_path: dict[str, dict[int, tuple[float, float]]]) -> None:
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["path", "frame", "psnr_db", "ssim"])
        for name, values in per_path.items():
            for frame_id, (p, s) in sorted(values.items()):
                writer.writerow([name, frame_id, round(p, 3), round(s, 5)])


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
