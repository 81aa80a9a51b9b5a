"""`tether run` and `tether up` as a user runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from tests.helpers import wait_for
from tether.media.frames import moving_pattern
from tether.tools.processes import free_port, wait_healthy

pytestmark = pytest.mark.timeout(120)


def make_clip(path: Path, frames: int = 60, size: int = 160, fps: int = 30) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(moving_pattern(size, size, i), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def count_frames(path: Path) -> tuple[int, np.ndarray]:
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return len(frames), frames[len(frames) // 2]


def tether(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TETHER_ICE_HOSTS": "loopback", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "tether", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def test_run_streams_a_file_through_an_embedded_worker(tmp_path: Path) -> None:
    clip, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    make_clip(clip)
    result = tether("run", str(clip), "-o", str(out), "--pipeline", "gray")
    assert result.returncode == 0, result.stderr
    assert "frames in 60" in result.stderr
    frames, middle = count_frames(out)
    assert frames >= 54, f"only {frames} of 60 frames written"
    rgb = middle.astype(int)
    assert np.abs(rgb[:, :, 0] - rgb[:, :, 2]).mean() < 4  # gray
    assert rgb.std() > 20  # not blank


def test_run_with_params_and_a_remote_worker(tmp_path: Path, services) -> None:
    worker = services.worker(token="tok")
    clip, out = tmp_path / "in.mp4", tmp_path / "out.webm"
    make_clip(clip, frames=30)
    result = tether(
        "run", str(clip), "-o", str(out), "--pipeline", "tint",
        "--param", "prompt=green", "--param", "strength=1.0",
        "--worker", worker.url, "--token", "tok",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    frames, middle = count_frames(out)
    assert frames >= 27
    assert middle[:, :, 1].mean() > middle[:, :, 0].mean() + 20  # green tint


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["missing.mp4"], "input file not found"),
        (["CLIP", "--pipeline", "nope"], "unknown pipeline 'nope'"),
        (["CLIP", "--param", "novalue"], "key=value"),
        (["CLIP", "--worker", "http://127.0.0.1:1"], "cannot reach the worker"),
    ],
)
def test_run_errors_are_one_line_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    clip = tmp_path / "in.mp4"
    make_clip(clip, frames=5)
    args = [
        str(clip) if a == "CLIP" else str(tmp_path / a) if a.endswith(".mp4") else a for a in args
    ]
    result = tether("run", *args, "-o", str(tmp_path / "o.mp4"))
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if "error" in line]) == 1


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_up_starts_connects_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "TETHER_ICE_HOSTS": "loopback"}
    log = (tmp_path / "up.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether", "up", "--port", str(port), "--no-browser"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc, 60)
        wait_for(lambda: _state(url) == "connected", 20, "the studio connected to its worker")
        workers = _children(proc.pid)
        assert len(workers) == 1, workers
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        wait_for(lambda: not _alive(workers[0]), 10, "the worker gone after tether up stopped")
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    output = (tmp_path / "up.log").read_text()
    assert f"http://127.0.0.1:{port}/" in output
    assert "Traceback" not in output


def _state(url: str) -> str:
    return httpx.get(f"{url}/api/v1/cloud/status").json()["state"]


def test_status_shows_the_link(services) -> None:
    worker = services.worker()
    studio = services.studio(worker)
    wait_for(lambda: _state(studio.url) == "connected", 15, "the studio connected")
    result = tether("status", "--studio", studio.url)
    assert result.returncode == 0, result.stderr
    assert "Tether link: connected" in result.stdout
    assert worker.url in result.stdout
    result = tether("status", "--studio", "http://127.0.0.1:1")
    assert result.returncode == 2 and "cannot read status" in result.stdout
