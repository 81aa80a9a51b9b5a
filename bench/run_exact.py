"""`tether run` throughput in lockstep (one frame in flight), with an embedded worker.

    python -m bench.run_exact [--frames 150] [--sizes 320x240,640x360,1280x720]

Prints one JSON line per (size, pipeline): frames in/out, whether every frame came
back once and in order (read from the numbers drawn in the frames), the fps, and
that fps as a multiple of real time for a 30 fps clip."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from fractions import Fraction
from pathlib import Path

import av

from bench import BENCH_CLIENT
from tether.media.frame_id import base_planes, read_id, stamp_id
from tether.tools.runner import run_file


def make_clip(path: Path, frames: int, width: int, height: int, fps: int = 30) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "12"}
        for i in range(frames):
            planes = base_planes(width, height)
            stamp_id(planes, width, i)
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def frame_ids(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [read_id(f.to_ndarray(format="gray")) for f in container.decode(video=0)]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--sizes", default="320x240,640x360,1280x720")
    parser.add_argument("--pipelines", default="passthrough,tint")
    opts = parser.parse_args()
    BENCH_CLIENT.install()
    with tempfile.TemporaryDirectory() as tmp:
        for size in opts.sizes.split(","):
            width, height = (int(x) for x in size.split("x"))
            clip = Path(tmp) / f"in-{size}.mp4"
            make_clip(clip, opts.frames, width, height)
            for pipeline in opts.pipelines.split(","):
                out = Path(tmp) / f"out-{size}-{pipeline}.mp4"
                result = await run_file(clip, out, {"pipeline": pipeline})
                ids = frame_ids(out)
                print(
                    json.dumps(
                        {
                            "case": f"run {size} {pipeline}",
                            "frames_in": result.frames_in,
                            "frames_out": result.frames_out,
                            "exact": ids == list(range(opts.frames)),
                            "duration_match": abs(
                                result.output_duration_s - result.input_duration_s
                            )
                            < 1e-3,
                            "fps": round(result.fps, 1),
                            "x_realtime_30fps": round(result.fps / 30, 2),
                        }
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    asyncio.run(main())
