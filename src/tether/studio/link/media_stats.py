"""The media path's own measures, for quality: packet loss in both directions over a
recent window, and the bandwidth the path can carry now. Read from the worker peer
connection about once a second; the window logic is pure and takes a Clock.

- Loss: the worker's video as our receiver counts it, and ours as the worker's
  receiver reports it (RTCP receiver reports, aiortc's remote-inbound-rtp stats).
  Both are lifetime counters; a window's loss is their change across it, so an old
  burst does not haunt the link for ever. The worse direction counts.
- Bandwidth: the lower of what our receiver estimates for the worker's video and what
  the worker's receiver estimates for ours (the REMB it sends us). Before the worker's
  first REMB our encoder's start bitrate would only be a guess, so that direction is
  then not measured.
- An estimate is not the path's capacity: the estimator never offers much more than
  half again what flows (aiortc caps it at 1.5x the incoming rate), so a simple picture
  sending 150 kbit/s on a fast path shows about 240. The path limits the video only
  where a direction's estimate is close to what actually flows in it (``limited``)."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiortc import RTCPeerConnection

from tether.clock import Clock
from tether.media.forwarding import Outgoing
from tether.rtc.measures import receive_estimate, received_counts
from tether.timing import LOSS_WINDOW_S, STATS_POLL_S

logger = logging.getLogger(__name__)

MIN_PACKETS = 20  # fewer packets in a window than this say nothing about loss
# A direction is limited by the path when its estimate is below this times what flows:
# free, an estimate runs ahead of its flow by about 1.5x; held to it, our encoders aim
# at 85% of it (plus packet headers, which the flow here counts and estimates do not).
HEADROOM = 1.35


@dataclass(frozen=True)
class Counts:
    """Lifetime RTP packet counters of one direction."""

    lost: int
    received: int


@dataclass(frozen=True)
class Reading:
    """One read of the peer's stats."""

    inbound: Counts | None = None  # the worker's video, as we received it
    outbound: Counts | None = None  # ours, as the worker's receiver reported it
    receive_bps: int | None = None  # our receiver's estimate for the worker's video
    send_bps: int | None = None  # the worker's estimate for our video (REMB)
    received_bytes: int = 0  # lifetime, the peer's transport (media, RTCP, data)
    sent_bytes: int = 0


def window_loss(old: Counts | None, new: Counts | None) -> float | None:
    """The fraction of packets lost between two readings of one direction; None when
    there is too little to judge, or the counters went back (a new stream)."""
    if old is None or new is None:
        return None
    lost, received = new.lost - old.lost, new.received - old.received
    if received < 0:
        return None
    expected = received + max(lost, 0)  # a late packet can make "lost" go back a little
    if expected < MIN_PACKETS:
        return None
    return max(lost, 0) / expected


class MediaStats:
    """The recent window of one peer's readings, and what it says."""

    def __init__(self, clock: Clock, window_s: float = LOSS_WINDOW_S) -> None:
        self.clock = clock
        self.window_s = window_s
        self._readings: deque[tuple[float, Reading]] = deque()

    def add(self, reading: Reading) -> None:
        now = self.clock.now()
        self._readings.append((now, reading))
        # Keep one reading at or before the window's start, so a window spans it whole.
        while len(self._readings) > 2 and self._readings[1][0] <= now - self.window_s:
            self._readings.popleft()

    @property
    def loss(self) -> float | None:
        """The worse direction's fraction of packets lost in the window (0..1)."""
        if len(self._readings) < 2:
            return None
        first, last = self._readings[0][1], self._readings[-1][1]
        fractions = [
            f
            for f in (
                window_loss(first.inbound, last.inbound),
                window_loss(first.outbound, last.outbound),
            )
            if f is not None
        ]
        return max(fractions) if fractions else None

    @property
    def bandwidth_kbps(self) -> float | None:
        """What the path can carry now: the lower of the two directions' estimates."""
        if not self._readings:
            return None
        latest = self._readings[-1][1]
        known = [bps for bps in (latest.receive_bps, latest.send_bps) if bps is not None]
        return min(known) / 1000.0 if known else None

    @property
    def limited(self) -> bool:
        """Whether the path holds the video back now: in some direction, what flowed
        over the window comes close to the estimate."""
        return self._limited(inbound=True) or self._limited(inbound=False)

    @property
    def upstream_limited_kbps(self) -> float | None:
        """Our video's estimate where the path holds it back (else None). Where the
        worker's video flows at a slow model's pace, its estimate follows that pace,
        not the path: then only this direction says something of the path."""
        if not self._readings or not self._limited(inbound=False):
            return None
        bps = self._readings[-1][1].send_bps
        return None if bps is None else bps / 1000.0

    def _limited(self, inbound: bool) -> bool:
        if len(self._readings) < 2:
            return False
        (t0, first), (t1, last) = self._readings[0], self._readings[-1]
        if t1 <= t0:
            return False
        if inbound:
            old, bps = first.receive_bps, last.receive_bps
            flowed = last.received_bytes - first.received_bytes
        else:
            old, bps, flowed = first.send_bps, last.send_bps, last.sent_bytes - first.sent_bytes
        # An estimator starts at what flows and needs a few seconds to run ahead of it:
        # judge a direction once its estimate has been known for a whole window.
        return old is not None and bps is not None and bps < HEADROOM * flowed * 8 / (t1 - t0)

    async def follow(
        self,
        pc_of: Callable[[], RTCPeerConnection | None],
        reader: Callable[[RTCPeerConnection], Awaitable[Reading]] | None = None,
    ) -> None:
        """Read the link's current peer connection every STATS_POLL_S while the link lives (run
        by the link's TaskOwner). A new peer connection starts a new window."""
        reader = reader or read
        followed: RTCPeerConnection | None = None
        while True:
            pc = pc_of()
            if pc is not followed:
                followed = pc
                self._readings.clear()
            if pc is not None and pc.connectionState == "connected":
                try:
                    reading = await reader(pc)
                except (ConnectionError, OSError) as exc:  # closing under us: next time
                    logger.debug("media stats: %s", exc)
                else:
                    if pc_of() is pc:
                        self.add(reading)
            await self.clock.sleep(STATS_POLL_S)


async def read(pc: RTCPeerConnection) -> Reading:
    outbound = None
    received = sent = 0
    for stats in (await pc.getStats()).values():
        kind = getattr(stats, "type", None)
        if kind == "remote-inbound-rtp" and stats.kind == "video":
            outbound = Counts(stats.packetsLost, stats.packetsReceived)
        elif kind == "transport":  # one, as media and data share a bundle
            received, sent = stats.bytesReceived, stats.bytesSent
    counts = received_counts(pc)
    return Reading(
        inbound=Counts(*counts) if counts else None,
        outbound=outbound,
        receive_bps=receive_estimate(pc),
        send_bps=_remb(pc),
        received_bytes=received,
        sent_bytes=sent,
    )


def _remb(pc: RTCPeerConnection) -> int | None:
    for sender in pc.getSenders():
        out = getattr(sender.track, "out", None)
        if isinstance(out, Outgoing) and out.remb_bps is not None:
            return out.remb_bps
    return None
