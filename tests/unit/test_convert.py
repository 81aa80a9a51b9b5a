"""Converting one frame in several threads at once (a running pipeline and a loading
one's first call take the same input frame; two senders scale the picture they share)
gives each the right picture and neither crashes nor hangs the process. PyAV's own
per-frame converter does both: this runs in a child process so a crash is a failure."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import av
import numpy as np

from tether.media.convert import reformatted, to_rgb

RACE = textwrap.dedent(
    """
    from concurrent.futures import ThreadPoolExecutor
    import av, numpy as np
    from tether.media.convert import reformatted, to_rgb

    pool = ThreadPoolExecutor(4)
    rng = np.random.default_rng(7)
    for _ in range(400):
        rgb = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        outs = [f.result(timeout=10) for f in [pool.submit(to_rgb, frame) for _ in range(2)]]
        assert (outs[0] == outs[1]).all()
        small = [pool.submit(reformatted, frame, 160, 120, "yuv420p") for _ in range(2)]
        a, b = (f.result(timeout=10).to_ndarray() for f in small)
        assert (a == b).all()
    print("ok")
    """
)


def test_one_frame_converted_in_threads_at_once_is_safe() -> None:
    done = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr)


def test_conversions_keep_the_picture() -> None:
    rgb = np.zeros((64, 96, 3), dtype=np.uint8)
    rgb[:, :48] = (200, 40, 40)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    back = to_rgb(frame)
    assert back.shape == (64, 96, 3)
    assert abs(int(back[10, 10, 0]) - 200) < 12 and abs(int(back[10, 80, 0])) < 12
    half = reformatted(frame, 48, 32, "yuv420p")
    assert (half.width, half.height, half.format.name) == (48, 32, "yuv420p")
