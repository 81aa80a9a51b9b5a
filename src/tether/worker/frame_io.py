"""Frames in the form a pipeline takes: a NumPy array (H x W x 3 RGB uint8), or, for a
pipeline that declares ``io = "torch"``, a torch uint8 tensor of that shape on its
``device``. torch is imported here, lazily, only for such a pipeline: a worker whose
pipelines take arrays never imports it."""

from __future__ import annotations

import importlib
from typing import Any

import av
import numpy as np

from tether.media.convert import to_rgb

NUMPY, TORCH = "numpy", "torch"


class FrameIOError(TypeError):
    pass


def io_of(pipeline: Any) -> str:
    io = getattr(pipeline, "io", NUMPY)
    if io not in (NUMPY, TORCH):
        raise FrameIOError(f"io must be {NUMPY!r} or {TORCH!r}, not {io!r}")
    return io


def to_input(pipeline: Any, frame: av.VideoFrame) -> tuple[np.ndarray, Any]:
    """The frame as RGB (kept to spot an output that is the input) and as the pipeline
    takes it: the same memory for a CPU tensor (``from_numpy``), one copy to a GPU."""
    rgb = to_rgb(frame)
    if io_of(pipeline) == NUMPY:
        return rgb, rgb
    torch = importlib.import_module("torch")
    tensor = torch.from_numpy(rgb)
    device = getattr(pipeline, "device", None)
    if device is not None and str(device) != "cpu":
        tensor = tensor.to(device)
    return rgb, tensor


def to_frame(out: Any, rgb: np.ndarray, frame: av.VideoFrame) -> av.VideoFrame:
    """The pipeline's output as a video frame; the input frame itself when the output is
    the input (no conversion back)."""
    if out is rgb:
        return frame
    if not isinstance(out, np.ndarray):
        out = _tensor_to_array(out)
        if out.shape == rgb.shape and out.ctypes.data == rgb.ctypes.data:
            return frame  # the input tensor, handed back: the same memory
    if out.shape != rgb.shape or out.dtype != np.uint8:
        raise FrameIOError(
            f"the output is {out.dtype} {out.shape}; it must be uint8 {rgb.shape} like the input"
        )
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(out), format="rgb24")


def _tensor_to_array(out: Any) -> np.ndarray:
    if not hasattr(out, "numpy"):
        raise FrameIOError(f"the output is a {type(out).__name__}, not an array or tensor")
    if hasattr(out, "detach"):
        out = out.detach()
    device = getattr(out, "device", None)
    if device is not None and getattr(device, "type", "cpu") != "cpu":
        out = out.cpu()  # the one copy back from the GPU
    return out.numpy()
