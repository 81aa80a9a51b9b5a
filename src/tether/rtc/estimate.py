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
already shown congestion: an overuse, or a standing queue (the packets' one-way delay,
at its lowest over the last half second, ``STANDING_QUEUE_MS`` above its lowest in the
stream: a capped path whose queue filled before the detector saw it grow, and now drops
instead). Then it starts from the throughput, as aiortc's does: a delay-based estimate
that starts above a full queue's rate never comes down. Heavy loss still
holds it down (``tether.rtc.loss_control``). The adapter (``tether.rtc.adapter``) has
receivers make it instead of aiortc's."""

from __future__ import annotations

from collections import deque

from aiortc.rate import AimdRateControl, BandwidthUsage, OveruseDetector

from tether.rtc.loss_control import LossAwareEstimator

# An offset of 0.5 ms per frame over 60 deltas: a queue that grows by 1.5 % of the
# frame interval every frame at 30 fps, far above delay noise, far below a congested
# path's trend.
MIN_OVERUSE_THRESHOLD = 30.0
# Where an estimate starts on a path that has shown no congestion: room for 720p at 30
# fps (or 512x512 at 60) at the fitted encoder's bits per pixel. A path that cannot
# take it shows congestion within a round trip or two, and the estimate falls to what
# got through.
INITIAL_ESTIMATE_BPS = 1_000_000
# A queue this much longer than the shortest the stream has seen is congestion; jitter
# and a busy machine's pauses stay well below it.
STANDING_QUEUE_MS = 50.0
RECENT_MS = 500  # the lowest delay over this long is the queue's, not a spike's
ABS_SEND_TIME_MS = 64_000  # abs-send-time wraps every 64 s


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


class StandingQueue:
    """Whether packets wait in a queue that did not empty: their one-way delay (up to
    the two clocks' constant offset) against the lowest the stream has seen."""

    def __init__(self) -> None:
        self._first: float | None = None
        self._lowest = 0.0
        self._recent: deque[tuple[int, float]] = deque()

    def add(self, arrival_ms: int, abs_send_time: int) -> None:
        delay = arrival_ms - abs_send_time * 1000 / (1 << 18)
        if self._first is None:
            self._first = delay
        # Relative to the first packet, across abs-send-time's wrap.
        half = ABS_SEND_TIME_MS / 2
        delay = (delay - self._first + half) % ABS_SEND_TIME_MS - half
        self._lowest = min(self._lowest, delay)
        self._recent.append((arrival_ms, delay))
        while arrival_ms - self._recent[0][0] > RECENT_MS:
            self._recent.popleft()

    @property
    def standing(self) -> bool:
        recent = min((d for _, d in self._recent), default=self._lowest)
        return recent - self._lowest > STANDING_QUEUE_MS


class SteadyBitrateEstimator(LossAwareEstimator):
    def __init__(self) -> None:
        super().__init__()
        self.detector = SteadyOveruseDetector()
        self.rate_control = SteadyRateControl()
        self.queue = StandingQueue()

    def add(
        self, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int
    ) -> tuple[int, list[int]] | None:
        control = self.rate_control
        if not control.current_bitrate_initialized:  # only the start needs it
            self.queue.add(arrival_time_ms, abs_send_time)
            control.congested |= self.queue.standing
        return super().add(
            arrival_time_ms=arrival_time_ms,
            abs_send_time=abs_send_time,
            payload_size=payload_size,
            ssrc=ssrc,
        )
