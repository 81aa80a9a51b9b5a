"""`tether run` is exact: every input frame once, in order, with its timestamp, on a
clip whose frames carry their numbers in their pixels."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest

from tests.integration.test_cli import tether
from tether.media.frame_id import base_planes, read_id, stamp_id
from tether.tools.runner import partial_path

pytestmark = pytest.mark.timeout(180)

WIDTH, HEIGHT = 256, 192


def make_numbered_clip(path: Path, frames: int, fps: int = 30) -> None:
    codec = {".webm": "libvpx", ".avi": "mpeg4"}.get(path.suffix, "libx264")
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "12"}
        else:
            stream.bit_rate = 4_000_000
        for i in range(frames):
            planes = base_planes(WIDTH, HEIGHT)
            stamp_id(planes, WIDTH, i)
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def read_clip(path: Path, inverted: bool = False) -> tuple[list[int], list[float], float]:
    """Frame numbers, presentation times (s) and the duration (s) of a clip."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ids, times = [], []
        for frame in container.decode(stream):
            ids.append(read_id(frame.to_ndarray(format="gray"), inverted))
            times.append(float(frame.pts * frame.time_base))
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
        if not duration:
            duration = (container.duration or 0) / av.time_base
    return ids, times, duration


@pytest.mark.parametrize(
    ("suffix", "pipeline"), [(".mp4", "tint"), (".webm", "invert"), (".avi", "passthrough")]
)
def test_every_frame_once_in_order_with_its_timestamp(
    tmp_path: Path, suffix: str, pipeline: str
) -> None:
    frames = 90
    clip, out = tmp_path / "numbered.mp4", tmp_path / f"out{suffix}"
    make_numbered_clip(clip, frames)
    in_ids, in_times, in_duration = read_clip(clip)
    assert in_ids == list(range(frames))  # the clip reads back before any worker touches it
    result = tether("run", str(clip), "-o", str(out), "--pipeline", pipeline, timeout=150)
    assert result.returncode == 0, result.stderr
    out_ids, out_times, out_duration = read_clip(out, inverted=pipeline == "invert")
    assert out_ids == list(range(frames)), f"frames out of place: {out_ids}"
    assert out_times == pytest.approx(in_times, abs=1e-3)
    assert out_duration == pytest.approx(in_duration, abs=1e-3)
    assert in_duration == pytest.approx(3.0, abs=0.01)
    summary = " ".join(result.stderr.split())
    assert f"frames in {frames}, out {frames}, dropped 0, duplicated 0" in summary, summary
    print(summary)


@pytest.mark.parametrize(
    ("output", "args", "needle"),
    [
        ("nodir/out.mp4", [], "output directory does not exist"),
        ("out.xyz", [], "unknown output type '.xyz'"),
        ("INPUT", [], "the output is the input file"),
        ("out.mp4", ["--pipeline", "tint", "--param", "colour=red"], "unknown parameter 'colour'"),
    ],
)
def test_run_refuses_bad_output_and_params_in_one_line(
    tmp_path: Path, output: str, args: list[str], needle: str
) -> None:
    clip = tmp_path / "in.mp4"
    make_numbered_clip(clip, 10)
    before = clip.read_bytes()
    target = clip if output == "INPUT" else tmp_path / output
    result = tether("run", str(clip), "-o", str(target), *args)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert clip.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


FAILING_PLUGIN = """
import numpy as np
from tether.pipelines.base import PipelineParams

class Params(PipelineParams):
    pass

class Explode:
    \"\"\"Raises on every frame.\"\"\"
    name = "explode"
    params_model = Params

    def process(self, frame: np.ndarray, params: Params) -> np.ndarray:
        raise RuntimeError("model weights missing")
"""


def failing_plugin_env(tmp_path: Path) -> dict[str, str]:
    """A pipeline that raises on every frame, installed as an entry-point plugin."""
    site = tmp_path / "site"
    dist = site / "explode_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "explode_plugin.py").write_text(textwrap.dedent(FAILING_PLUGIN))
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: explode-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[tether.pipelines]\nexplode = explode_plugin:Explode\n")
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_a_failing_pipeline_fails_the_run(tmp_path: Path, monkeypatch) -> None:
    clip, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    make_numbered_clip(clip, 20)
    for key, value in failing_plugin_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    result = tether("run", str(clip), "-o", str(out), "--pipeline", "explode")
    assert result.returncode == 1, result.stderr
    assert "model weights missing" in result.stderr
    assert not out.exists() and not partial_path(out).exists()


def test_ctrl_c_leaves_no_partial_file(tmp_path: Path) -> None:
    clip, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    make_numbered_clip(clip, 400)
    env = {**os.environ, "TETHER_ICE_HOSTS": "loopback"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether", "run", str(clip), "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not partial_path(out).exists() or partial_path(out).stat().st_size < 2_000:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never started writing"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_unknown_param_is_refused_with_a_remote_worker_too(tmp_path: Path, services) -> None:
    worker = services.worker(token="tok")
    clip = tmp_path / "in.mp4"
    make_numbered_clip(clip, 5)
    result = tether(
        "run", str(clip), "-o", str(tmp_path / "o.mp4"), "--pipeline", "gray",
        "--param", "strength=1", "--worker", worker.url, "--token", "tok",
    )  # fmt: skip
    assert result.returncode == 2
    assert "unknown parameter 'strength' for pipeline 'gray' (it takes: no parameters)" in (
        " ".join(result.stderr.split())
    )
