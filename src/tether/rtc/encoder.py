"""The VP8 encoder, fitted to the link.

aiortc's VP8 encoder never goes below 250 kbps and every new encoder starts at
500 kbps: on a 250 kbit link congestion then looks like loss, and each reconnect starts
too fast. The adapter (``tether.rtc.adapter``) lowers the floor to
``BITRATE_FLOOR_BPS``; ``carry_bitrate`` makes the next encoder start at the bitrate a
closing peer had reached (until the adapter is uninstalled). aiortc restarts its
encoder (a keyframe) on every bitrate change and never shrinks the picture: the adapter
has senders make ``FittedVp8Encoder`` instead (``fitted_get_encoder``), run by
``tether.media.encoding``."""

from __future__ import annotations

from typing import Any

import aiortc.codecs
import aiortc.codecs.vpx as _vpx
from aiortc import RTCPeerConnection
from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from tether.media.convert import reformatted
from tether.media.encoding import STARVED_SHARE, EncodingPolicy
from tether.rtc.encoded_frame import VP8
from tether.rtc.estimate import INITIAL_ESTIMATE_BPS
from tether.timing import KEYFRAME_LINK_S

# Low enough that a 150 kbit/s path carries the video with its packet headers, resends
# and the data channel (at 100 kbit/s such a path stayed overrun: 1-8 fps).
BITRATE_FLOOR_BPS = 50_000
# The share of the receiver's bitrate estimate a fitted encoder aims at.
ESTIMATE_SHARE = 0.85
# Where a fitted encoder starts (nothing carried from an earlier link): what the
# receiver's steadied estimate starts at (tether.rtc.estimate), times the share.
FITTED_START_BPS = int(INITIAL_ESTIMATE_BPS * ESTIMATE_SHARE)
# libvpx's cap on a keyframe's size (FFmpeg's name for VP8E_SET_MAX_INTRA_BITRATE_PCT).
KEYFRAME_CAP = "max-intra-rate"


def _clamped(bitrate: int) -> int:
    return max(_vpx.MIN_BITRATE, min(bitrate, _vpx.MAX_BITRATE))


class FittedVp8Encoder(_vpx.Vp8Encoder):
    """aiortc's VP8 encoder, fitted to the link by ``EncodingPolicy``: bitrate changes
    with hysteresis (each restarts the encoder with a keyframe), a smaller picture or
    half the frame rate where the bitrate alone cannot get there."""

    def __init__(self) -> None:
        self._context: Any = None
        super().__init__()
        self.policy = EncodingPolicy(_vpx.DEFAULT_BITRATE)

    @property
    def codec(self) -> Any:
        """aiortc's libvpx context; one it made but has not opened yet gets a keyframe
        cap (aiortc sets none: the keyframe after each restart was 15 KB at 200 kbit/s)."""
        context = self._context
        if context is not None and not context.is_open and KEYFRAME_CAP not in context.options:
            context.options = {**context.options, KEYFRAME_CAP: str(self.keyframe_pct())}
        return context

    @codec.setter
    def codec(self, context: Any) -> None:
        self._context = context

    def keyframe_pct(self) -> int:
        """A keyframe's largest size, in % of an average frame's: KEYFRAME_LINK_S of
        the link at the frame rate offered."""
        return max(100, round(KEYFRAME_LINK_S * self.policy.fps() * 100))

    @property
    def target_bitrate(self) -> int:
        return self.policy.applied

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        # Headroom: libvpx overshoots its target by up to 15 %, and packet headers,
        # retransmissions and the data channel share the link.
        self.policy.request(_clamped(int(bitrate * ESTIMATE_SHARE)))

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        pts, time_base = frame.pts, frame.time_base
        shape = self.policy.shape(frame.width, frame.height, float(pts * time_base))
        if not shape.send and not force_keyframe:
            # The sender sends nothing for it; the timestamp keeps the clock going.
            return [], convert_timebase(pts, time_base, VIDEO_TIME_BASE)
        self._Vp8Encoder__target_bitrate = shape.bitrate  # its rate-control buffer size
        resized = (shape.width, shape.height) != (frame.width, frame.height)
        if resized or frame.format.name != "yuv420p":
            # (The frame may be another sender's too: never its own converter.)
            frame = reformatted(frame, shape.width, shape.height, "yuv420p")
            frame.pts, frame.time_base = pts, time_base
        payloads, timestamp = super().encode(frame, force_keyframe)
        # What the frame cost (RTP payloads, a few bytes of descriptor each): the
        # policy shrinks only a picture that uses its bitrate.
        self.policy.produced(8 * sum(len(p) for p in payloads))
        return payloads, timestamp


def fitted_get_encoder(codec: RTCRtpCodecParameters) -> Any:
    """Stands in for the ``get_encoder`` aiortc's senders call: VP8 is fitted."""
    if codec.mimeType.lower() == VP8:
        return FittedVp8Encoder()
    return aiortc.codecs.get_encoder(codec)


def sending_bitrate(pc: RTCPeerConnection) -> int | None:
    """The target bitrate of the peer's video encoder (None before it encoded)."""
    for sender in pc.getSenders():
        encoder = getattr(sender, "_RTCRtpSender__encoder", None)
        if encoder is not None and hasattr(encoder, "target_bitrate"):
            return int(encoder.target_bitrate)
    return None


def carry_bitrate(pc: RTCPeerConnection) -> None:
    """New VP8 encoders in this process start at the bitrate this peer reached, so a
    new peer after a reconnect does not start at 500 kbps on a slower link. Only an
    estimate that held the encoder back says something about the link: a picture that
    used a small part of its bitrate got a low estimate because it sent little, and
    that never lowers the next start. Undone, with the floor, when the adapter is
    uninstalled."""
    bitrate = sending_bitrate(pc)
    if bitrate is None:
        return
    if _bound_by_estimate(pc):
        _vpx.DEFAULT_BITRATE = _clamped(bitrate)
    else:
        _vpx.DEFAULT_BITRATE = max(_vpx.DEFAULT_BITRATE, _clamped(bitrate))


def _bound_by_estimate(pc: RTCPeerConnection) -> bool:
    for sender in pc.getSenders():
        encoder = getattr(sender, "_RTCRtpSender__encoder", None)
        if isinstance(encoder, FittedVp8Encoder):
            # None: it only packed forwarded frames (a relay's sender) and the estimate
            # was for a stream some other encoder fitted.
            usage = encoder.policy.usage()
            return usage is not None and usage >= STARVED_SHARE
    return True  # aiortc's own encoder: no measure, carried as before
