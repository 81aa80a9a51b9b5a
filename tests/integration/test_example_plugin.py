"""The example plugin package (examples/tether-posterize), installed as a user would
(`make test` installs it): listed by `tether pipelines` and streamed by `tether run`."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import av
import numpy as np
import pytest

from tests.integration.test_cli import tether
from tests.integration.test_run_exact import make_numbered_clip, read_clip

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def installed() -> None:
    try:
        version("tether-posterize")
    except PackageNotFoundError:
        pytest.fail("the example plugin is not installed: pip install -e examples/tether-posterize")


def test_the_example_plugin_is_listed_with_its_parameter() -> None:
    result = tether("pipelines")
    assert result.returncode == 0, result.stderr
    assert "posterize" in result.stdout and "levels (integer, default 4, 2..16)" in result.stdout


def test_the_example_plugin_streams_every_frame(tmp_path: Path) -> None:
    clip, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    make_numbered_clip(clip, 30)
    result = tether(
        "run", str(clip), "-o", str(out), "--pipeline", "posterize", "--param", "levels=2"
    )
    assert result.returncode == 0, result.stderr
    ids, _, _ = read_clip(out)
    assert ids == list(range(30))
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    # Two levels per channel: the picture's lower half holds only values near 64 or 192.
    body = frame[frame.shape[0] // 2 :].astype(int)
    near = np.minimum(np.abs(body - 64), np.abs(body - 192))
    assert np.median(near) < 12, np.median(near)
