"""Frame numbers drawn into the pixels, so every stage of the path (and every
test) can tell which source frame it holds, whatever codec ran in between."""

from __future__ import annotations

import numpy as np

ID_BITS = 16
BAND = 32  # the frame number is drawn as ID_BITS black/white blocks in the top band


def base_planes(width: int, height: int) -> np.ndarray:
    """A colourful yuv420p picture (stacked planes), so gray/invert show clearly."""
    y, x = np.mgrid[0:height, 0:width]
    luma = (60 + 120 * x / max(width - 1, 1)).astype(np.uint8)
    cu = np.full((height // 2, width // 2), 90, np.uint8)
    cv = np.full((height // 2, width // 2), 200, np.uint8)
    cu[:, width // 4 :] = 200
    cv[height // 4 :, :] = 70
    return np.concatenate([luma, cu.reshape(height // 4, width), cv.reshape(height // 4, width)])


def stamp_id(planes: np.ndarray, width: int, frame_id: int) -> None:
    block = width // ID_BITS
    for bit in range(ID_BITS):
        value = 235 if (frame_id >> bit) & 1 else 16
        planes[:BAND, bit * block : (bit + 1) * block] = value


def read_id(luma: np.ndarray, inverted: bool = False) -> int:
    """The frame number stamped by ``stamp_id``, from a luma (or gray) image."""
    width = luma.shape[1]
    block = width // ID_BITS
    margin = min(4, block // 4)  # stay off block edges, where the codec blurs
    frame_id = 0
    for bit in range(ID_BITS):
        cell = luma[4 : BAND - 4, bit * block + margin : (bit + 1) * block - margin]
        on = cell.mean() > 128
        if on != inverted:
            frame_id |= 1 << bit
    return frame_id
