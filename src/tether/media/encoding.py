"""How a video encoder fits its stream to the bitrate the receiver's feedback allows.

The feedback (REMB) only sets a bitrate. Below a few hundredths of a bit per pixel a
VP8 picture falls apart and the encoder overshoots its target anyway, so congestion
would turn into loss. Where bitrate alone cannot get there, the picture shrinks (each
step halves width and height) and, once it is as small as it may get, every other
frame is skipped.

A low bitrate is no reason to shrink a picture that does not need it. The receiver's
estimate follows what the sender sends (aiortc's starts from the throughput it saw in
its first seconds and stays within 1.5x of it), so the estimate for an easy picture (a
still, a re-encoded decoded one) stays low on a path with plenty of room; and a delay
spike taken for congestion cuts it to 85 % of the throughput. So the policy meters
what the encoder actually produces: the picture shrinks (or frames are skipped) only
while the encoder uses nearly all of its bitrate (it is starved), and a smaller picture
grows back as soon as the encoder uses only a small part of it (the larger picture
fits), as well as when the estimate has room for it.

Every change of bitrate or size restarts the encoder (aiortc's VP8 encoder cannot be
reconfigured), and a restarted encoder starts with a keyframe: several delta frames'
worth of bytes in one burst, exactly what a congested link cannot take. So a lower
bitrate is applied at once but a higher one only once it has been asked for a while,
and a larger picture only once the bitrate has room for it for a while. Pure logic;
time comes from a Clock."""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass

from tether.clock import Clock, MonotonicClock
from tether.timing import ENCODER_FPS_WINDOW_S, ENCODER_GROW_HOLD_S, ENCODER_INCREASE_HOLD_S

# Bits per pixel (bitrate / pixels per second) below which the picture shrinks...
SHRINK_BPP = 0.025
# ...and above which (at the larger size) it grows back.
GROW_BPP = 0.045
# The smallest width a picture shrinks to; below it, frames are skipped instead.
MIN_WIDTH = 160
# A lower bitrate more than this far below the running one restarts the encoder now.
DECREASE_STEP = 0.9
# A higher one must be this far above, and asked for this long, before it applies.
INCREASE_STEP = 1.15
# The fastest frame rate the picture is fitted for. A source that offers frames faster
# than a camera does (`tether run` sends the next frame as soon as the last is back:
# 150+ a second) is not a lasting rate to budget for, and skipping one of its frames
# would stall it for good: it waits for that frame's result.
MAX_FITTED_FPS = 60.0
# Bits per pixel are counted per frame up to this rate. Above it, each frame differs
# less from the last and costs less: a picture at twice the rate needs about 1.4 times
# the bitrate (the square root), not twice (at 60 fps a 512x512 picture was shrunk at
# 390 kbps, more than it needs there).
FULL_COST_FPS = 30.0
# The encoder is starved while it produces at least this share of its bitrate...
STARVED_SHARE = 0.6
# ...and has room for four times the pixels (or twice the frames) below this share.
IDLE_SHARE = 0.15
# Frames measured at a shape before its use counts (the first after a change is a
# keyframe; the median leaves it out).
MIN_MEASURED = 5


@dataclass(frozen=True)
class Shape:
    """What to encode the next frame as."""

    bitrate: int  # bps the encoder runs at
    width: int
    height: int
    send: bool  # False: skip this frame (half frame rate)


class EncodingPolicy:
    def __init__(self, bitrate: int, clock: Clock | None = None) -> None:
        self.clock = clock or MonotonicClock()
        self.requested = bitrate  # what the feedback asks for
        self.applied = bitrate  # what the encoder runs at
        self.halvings = 0
        self.skipping = False
        self._applied_at = self.clock.now()
        self._room_since: float | None = None  # bitrate has room for a larger picture
        self._frames: deque[float] = deque()  # media times within ENCODER_FPS_WINDOW_S
        self._count = 0
        self.skipped = 0
        self.output = OutputMeter()

    def request(self, bitrate: int) -> None:
        """The receiver's feedback: it can take ``bitrate`` bps."""
        self.requested = bitrate
        now = self.clock.now()
        lower = bitrate < self.applied * DECREASE_STEP
        higher = bitrate > self.applied * INCREASE_STEP
        if lower or (higher and now - self._applied_at >= ENCODER_INCREASE_HOLD_S):
            self.applied, self._applied_at = bitrate, now

    def fps(self) -> float:
        """The frame rate offered, from the frames' own times (30 until known; at most
        ``MAX_FITTED_FPS``)."""
        if len(self._frames) < 2:
            return 30.0
        rate = (len(self._frames) - 1) / max(self._frames[-1] - self._frames[0], 1e-3)
        return min(rate, MAX_FITTED_FPS)

    def shape(self, width: int, height: int, media_time: float) -> Shape:
        """Call once per frame the track offers, in order; ``media_time``: the frame's
        timestamp in seconds."""
        now = self.clock.now()
        # A raised bitrate that has waited long enough applies on the next frame.
        self.request(self.requested)
        while self._frames and media_time - self._frames[0] >= ENCODER_FPS_WINDOW_S:
            self._frames.popleft()
        self._frames.append(media_time)
        fps = self.fps()
        before = (self.halvings, self.skipping)
        self._fit(width, height, fps, now)
        if (self.halvings, self.skipping) != before:
            self.output.clear()  # a new shape: measured afresh
        self._count += 1
        send = not (self.skipping and self._count % 2 == 0)
        if not send:
            self.skipped += 1
        return Shape(
            self.applied,
            _scaled(width, self.halvings),
            _scaled(height, self.halvings),
            send,
        )

    def produced(self, bits: int) -> None:
        """The encoder made ``bits`` of the frame just shaped (call for sent frames)."""
        self.output.add(bits)

    def usage(self) -> float | None:
        """The share of its bitrate the encoder uses now (None: not measured yet)."""
        fps = self.fps() / 2 if self.skipping else self.fps()
        bits = self.output.typical_frame_bits()
        return None if bits is None else bits * fps / max(self.applied, 1)

    def _fit(self, width: int, height: int, fps: float, now: float) -> None:
        def bpp(halvings: int, skipping: bool) -> float:
            pixels = _scaled(width, halvings) * _scaled(height, halvings)
            rate = _costed_rate(fps / 2 if skipping else fps)
            return self.applied / max(pixels * rate, 1.0)

        max_halvings = 0
        while _scaled(width, max_halvings + 1) >= MIN_WIDTH:
            max_halvings += 1
        self.halvings = min(self.halvings, max_halvings)
        usage = self.usage()
        starved = usage is not None and usage >= STARVED_SHARE
        idle = usage is not None and usage < IDLE_SHARE
        # Shrink at once while the picture is too big for the bitrate and needs it all.
        while starved and bpp(self.halvings, self.skipping) < SHRINK_BPP:
            if self.halvings < max_halvings:
                self.halvings += 1
            elif not self.skipping:
                self.skipping = True
            else:
                break
        # Grow one step at a time, once the bitrate has had room for it a while.
        if self.skipping:
            larger = idle or bpp(self.halvings, False) >= GROW_BPP
        else:
            larger = self.halvings > 0 and (idle or bpp(self.halvings - 1, False) >= GROW_BPP)
        if not larger:
            self._room_since = None
        elif self._room_since is None:
            self._room_since = now
        elif now - self._room_since >= ENCODER_GROW_HOLD_S:
            self._room_since = None
            if self.skipping:
                self.skipping = False
            else:
                self.halvings -= 1


class OutputMeter:
    """What the encoder produced for the last frames of one shape."""

    def __init__(self, frames: int = 30) -> None:
        self._bits: deque[int] = deque(maxlen=frames)

    def add(self, bits: int) -> None:
        self._bits.append(bits)

    def clear(self) -> None:
        self._bits.clear()

    def typical_frame_bits(self) -> float | None:
        """The median frame (a keyframe after a restart is not typical), once enough
        frames were measured."""
        if len(self._bits) < MIN_MEASURED:
            return None
        return statistics.median(self._bits)


def _costed_rate(fps: float) -> float:
    """The frame rate as the bitrate it costs: in full up to FULL_COST_FPS, beyond it
    as the square root."""
    if fps <= FULL_COST_FPS:
        return fps
    return FULL_COST_FPS * math.sqrt(fps / FULL_COST_FPS)


def _scaled(length: int, halvings: int) -> int:
    return max(2, (length >> halvings) & ~1)
