"""bench.quality's pictures and its per-window arithmetic (the bench itself runs real
processes; these check what it measures against)."""

from __future__ import annotations

import argparse

import numpy as np
from bench.quality import SHIFT_PX, TexturedSource, path_line, psnr, summary, windows

from tether.media.frame_id import BAND, read_id


def test_still_picture_is_detailed_still_and_numbered():
    source = TexturedSource(512, 512, 30, SHIFT_PX["still"])
    first, later = source.planes(3)[:512], source.planes(40)[:512]
    assert np.array_equal(first[2 * BAND :], later[2 * BAND :])  # the picture holds still
    assert first[2 * BAND :].std() > 30  # and has detail to lose
    assert read_id(first) == 3 and read_id(later) == 40


def test_moving_picture_moves():
    source = TexturedSource(512, 512, 30, SHIFT_PX["moving"])
    assert psnr(source.planes(1)[BAND:512], source.planes(2)[BAND:512]) < 30


def _opts() -> argparse.Namespace:
    return argparse.Namespace(picture="still", size=512, seconds=25.0)


def test_windows_and_late_difference():
    direct = {i: (i / 30, 42.0, 0.98) for i in range(750)}
    studio = {i: (i / 30, 40.0 if i >= 450 else 42.0, 0.97) for i in range(750)}
    spans = windows(direct, 25.0)
    assert [(w["from_s"], w["to_s"], w["frames"]) for w in spans][-1] == (20.0, 25.0, 150)
    assert len(spans) == 5
    lines = [path_line(n, v, _opts(), 30.0) for n, v in [("d", direct), ("s", studio)]]
    lines.append(path_line("t", studio, _opts(), 30.0))
    out = summary({"direct": direct, "studio": studio}, lines, _opts())
    assert out["late_studio_minus_direct_psnr_db"] == -2.0
    assert out["late_studio_minus_direct_psnr_p5_db"] == -2.0
    assert out["targets"]["studio_late_psnr_within_0_5db_of_direct"] is False
