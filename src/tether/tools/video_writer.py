"""`tether run`'s output: the processed frames encoded with their input frames' timestamps."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av

# Output extension -> encoder. The container follows from the extension.
ENCODERS = {
    ".mp4": "libx264",
    ".m4v": "libx264",
    ".mov": "libx264",
    ".mkv": "libx264",
    ".webm": "libvpx",
    ".avi": "mpeg4",
}


class VideoWriter:
    """Encodes results with their input frames' timestamps."""

    def __init__(self, path: Path, in_stream: Any) -> None:
        self.rate = in_stream.average_rate or in_stream.guessed_rate or Fraction(30)
        self.in_tb = in_stream.time_base or 1 / self.rate
        codec = ENCODERS[path.suffix.lower()]
        # MPEG-4 part 2 allows no time base finer than 1/65535: use the frame rate's.
        self.tb = 1 / self.rate if codec == "mpeg4" else self.in_tb
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream(codec, rate=self.rate)
        self.stream.pix_fmt = "yuv420p"
        if codec == "libvpx":
            self.stream.options = {"deadline": "good", "cpu-used": "4"}
        self.stream.codec_context.time_base = self.tb
        self.frame_ticks = max(1, round(1 / (self.rate * self.tb)))
        self.written: set[int] = set()

    def write(self, result: av.VideoFrame, size: tuple[int, int], in_pts: int | None) -> None:
        if not self.written:
            self.stream.width, self.stream.height = size
        frame = result.reformat(self.stream.width, self.stream.height, "yuv420p")
        if in_pts is None:
            pts = len(self.written) * self.frame_ticks
        else:
            pts = round(in_pts * self.in_tb / self.tb)
        frame.pts, frame.time_base = pts, self.tb
        self.written.add(pts)
        self._mux(self.stream.encode(frame))

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            # Each frame lasts one frame period: the last one too, so the output's
            # duration is the input's.
            packet.duration = round(self.frame_ticks * self.tb / packet.time_base)
        self.container.mux(packets)

    def close(self) -> None:
        if self.written:
            self._mux(self.stream.encode(None))
        self.container.close()
