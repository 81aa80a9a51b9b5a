"""A real portrait to stream through the model in tests and benchmarks: Grace Hopper's,
as matplotlib ships it (a dependency of MediaPipe), so nothing is fetched. Noise or a
synthetic shape gives a segmentation model nothing to find."""

from __future__ import annotations

import numpy as np


def portrait(width: int = 512, height: int = 512) -> np.ndarray:
    """The portrait (H x W x 3, RGB, uint8), cropped to the requested aspect from the
    top (her head stays in) and resized."""
    from matplotlib import cbook
    from PIL import Image

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as image:
        picture = image.convert("RGB")
    src_w, src_h = picture.size
    crop_h = min(src_h, round(src_w * height / width))
    crop_w = min(src_w, round(crop_h * width / height))
    left = (src_w - crop_w) // 2
    picture = picture.crop((left, 0, left + crop_w, crop_h)).resize((width, height))
    return np.asarray(picture, dtype=np.uint8).copy()
