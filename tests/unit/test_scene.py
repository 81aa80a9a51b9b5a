"""The synthetic scenes of the measuring client: deterministic, moving, noisy, cheap,
and their frame number survives a low-bitrate VP8 and a downscale."""

from __future__ import annotations

import fractions
import time

import av
import numpy as np
import pytest

from tether.media.frame_id import BAND, read_id
from tether.tools.probe import NumberedSource
from tether.tools.scene import SCENES, make_scene


def test_camera_is_deterministic_from_its_seed() -> None:
    a, b = make_scene("camera", 256, 192, seed=3), make_scene("camera", 256, 192, seed=3)
    assert np.array_equal(a.planes(17), b.planes(17))
    other = make_scene("camera", 256, 192, seed=4)
    assert not np.array_equal(a.planes(17), other.planes(17))


def test_camera_moves_and_has_fresh_noise_every_frame() -> None:
    scene = make_scene("camera", 256, 256)
    first, second = scene.planes(10).astype(int), scene.planes(11).astype(int)
    body = slice(2 * BAND, 256)
    assert np.abs(first[body] - second[body]).mean() > 2  # pan, object, noise
    # Detail that costs bits: neighbouring pixels differ, as in a real picture.
    assert np.abs(np.diff(first[body], axis=1)).mean() > 3
    # Noise, not only motion: the same view panned back still differs pixel by pixel.
    assert not np.array_equal(scene.planes(0), scene.planes(scene.period // 2))


def test_still_is_the_same_every_frame() -> None:
    scene = make_scene("still", 128, 128)
    assert np.array_equal(scene.planes(0), scene.planes(99))


def test_unknown_scene_is_refused() -> None:
    assert set(SCENES) == {"camera", "desk", "still"}
    with pytest.raises(ValueError, match="unknown scene"):
        make_scene("beach", 64, 64)


@pytest.mark.parametrize(("size", "budget_ms"), [((512, 512), 3.0), ((1280, 720), 6.0)])
def test_camera_frames_are_cheap(size: tuple[int, int], budget_ms: float) -> None:
    source = NumberedSource(*size, scene="camera")
    source.planes(0)
    start = time.perf_counter()
    for frame_id in range(30):
        source.planes(frame_id)
    per_frame_ms = (time.perf_counter() - start) * 1000 / 30
    assert per_frame_ms < budget_ms, f"{per_frame_ms:.2f} ms a frame at {size}"


@pytest.mark.parametrize(("scale", "bitrate"), [(1, 150_000), (2, 150_000), (4, 80_000)])
def test_frame_number_survives_low_bitrate_vp8(scale: int, bitrate: int) -> None:
    width = height = 512
    source = NumberedSource(width, height, scene="camera")
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height = width // scale, height // scale
    encoder.pix_fmt, encoder.bit_rate = "yuv420p", bitrate
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    decoder = av.CodecContext.create("libvpx", "r")
    read = []
    for frame_id in range(60):
        frame = av.VideoFrame.from_ndarray(source.planes(frame_id), format="yuv420p")
        frame = frame.reformat(width=encoder.width, height=encoder.height)
        frame.pts = frame_id
        for packet in encoder.encode(frame):
            for decoded in decoder.decode(packet):
                luma = decoded.reformat(width=width, height=height).to_ndarray(format="gray")
                read.append(read_id(luma))
    assert read == list(range(len(read))) and len(read) >= 55
