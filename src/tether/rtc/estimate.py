"""The receiver's bandwidth estimate (REMB), steadied against delay noise.

aiortc's receiver estimates what its sender may send from the packets' one-way delay:
a Kalman filter turns the change in delay between frames into a trend (``offset``, ms
per frame), and the detector calls the path overused when ``offset`` times the number
of deltas seen (at most 60) passes a threshold that adapts to the noise, but never
drops below 6. Then the estimate falls to 85 % of the throughput just measured.

A threshold of 6 is an offset of 0.1 ms per frame. Jitter on a long path (a few ms
per packet) and a busy machine's scheduling leave offsets of 0.2-0.4 ms on a path with
all the room in the world; measured on the lab's 150 ms path, such false alarms cut
the estimate every few seconds, each time to 85 % of what the sender sent, and the
fitted encoder shrank the picture for a bandwidth limit that did not exist. Real
congestion builds a queue: sending 3 % over the path's rate adds 1 ms of delay per
frame at 30 fps (an offset of 1, a threshold of 60); more, faster.

And the estimate starts from the throughput measured in the stream's first 3 s: what the
sender chose to send while the stream started (frames held up by keyframe requests a
round trip long, a worker warming up, a quarter-size picture), not what the path can
take. It may then grow only to 1.5 times what is sent, 8 % a second. On the lab's 150 ms
path the worker's estimate started at 100-250 kbps, below what a 512x512 picture needs,
and the picture never came back to full size.

``SteadyBitrateEstimator`` is aiortc's estimator with the detector's threshold held at
``MIN_OVERUSE_THRESHOLD`` or above, and an estimate that starts at
``INITIAL_ESTIMATE_BPS`` or the throughput, whichever is higher, unless the path has
already shown congestion (then it starts from the throughput, as aiortc's does). The
adapter (``tether.rtc.adapter``) has receivers
make it instead of aiortc's."""

from __future__ import annotations

from aiortc.rate import AimdRateControl, BandwidthUsage, OveruseDetector, RemoteBitrateEstimator

# An offset of 0.5 ms per frame over 60 deltas: a queue that grows by 1.5 % of the
# frame interval every frame at 30 fps, far above delay noise, far below a congested
# path's trend.
MIN_OVERUSE_THRESHOLD = 30.0
# Where an estimate starts on a path that has shown no congestion: room for 720p at 30
# fps (or 512x512 at 60) at the fitted encoder's bits per pixel. A path that cannot
# take it shows congestion within a round trip or two, and the estimate falls to what
# got through.
INITIAL_ESTIMATE_BPS = 1_000_000


class SteadyOveruseDetector(OveruseDetector):
    def __init__(self) -> None:
        super().__init__()
        self.threshold = max(self.threshold, MIN_OVERUSE_THRESHOLD)

    def update_threshold(self, modified_offset: float, now_ms: int) -> None:
        super().update_threshold(modified_offset, now_ms)
        self.threshold = max(self.threshold, MIN_OVERUSE_THRESHOLD)


class SteadyRateControl(AimdRateControl):
    def __init__(self) -> None:
        super().__init__()
        self.congested = False  # the detector has called the path overused

    def update(
        self, bandwidth_usage: BandwidthUsage, estimated_throughput: int | None, now_ms: int
    ) -> int | None:
        self.congested |= bandwidth_usage == BandwidthUsage.OVERUSING
        starting = not self.current_bitrate_initialized
        bitrate = super().update(bandwidth_usage, estimated_throughput, now_ms)
        if starting and self.current_bitrate_initialized and not self.congested:
            self.current_bitrate = max(self.current_bitrate, INITIAL_ESTIMATE_BPS)
            return self.current_bitrate
        return bitrate


class SteadyBitrateEstimator(RemoteBitrateEstimator):
    def __init__(self) -> None:
        super().__init__()
        self.detector = SteadyOveruseDetector()
        self.rate_control = SteadyRateControl()
