"""Check 5, ``media``: a few seconds of synthetic video through the worker's pipeline,
both ways, on the test session the ICE check connected. Measured: distinct pictures per
second back, their size, the heartbeat's round trip (p50/p95), each frame's round trip,
packet loss each way and each way's bandwidth estimate; ``judge`` grades them."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from aiortc import RTCPeerConnection

from tether.client.worker_peer import WorkerPeer
from tether.clock import Clock, MonotonicClock
from tether.doctor.judge import MediaNumbers
from tether.doctor.source import GrainySource, Recorder
from tether.rtc.encoder import ESTIMATE_SHARE, sending_bitrate
from tether.rtc.measures import receive_estimate, received_counts

FIRST_FRAME_S = 5.0  # the first processed frame, unless the worker says it loads a model
LOAD_WAIT_S = 15.0  # how long a loading model is waited for
MEDIA_S = 6.0  # the measured window
WARMUP_S = 1.0  # after the first frame: the estimators leave their start values
PING_EVERY_S = 0.2
POLL_S = 0.05


@dataclass
class Counters:
    down: tuple[int, int] | None  # (lost, received) of the worker's video
    up: tuple[int, int] | None  # ours, as the worker's receiver reports


async def read_counters(pc: RTCPeerConnection) -> Counters:
    up = None
    for stats in (await pc.getStats()).values():
        if getattr(stats, "type", None) == "remote-inbound-rtp" and stats.kind == "video":
            up = (int(stats.packetsLost), int(stats.packetsReceived))
    return Counters(received_counts(pc), up)


def window_loss(old: tuple[int, int] | None, new: tuple[int, int] | None) -> float | None:
    if old is None or new is None:
        return None if new is None else _loss(new[0], new[1])
    return _loss(new[0] - old[0], new[1] - old[1])


def _loss(lost: int, received: int) -> float | None:
    lost = max(lost, 0)
    expected = received + lost
    return lost / expected if expected >= 20 and received >= 0 else None


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[min(max(int(share * 100) - 1, 0), 98)]


async def first_frame(
    peer: WorkerPeer, recorder: Recorder, clock: Clock, wait_s: float, load_wait_s: float
) -> bool:
    """Wait for the first processed frame; longer while the worker says it loads."""
    start = clock.now()
    while not recorder.arrivals:
        waited = clock.now() - start
        if waited > (load_wait_s if peer.pipeline_loading else wait_s):
            return False
        await clock.sleep(POLL_S)
    return True


async def _ping(peer: WorkerPeer, clock: Clock, until: float) -> list[float]:
    """Heartbeat pings on the test session; the round trips that came back (ms)."""
    rtts: list[float] = []
    seq, heard = 0, peer.last_pong_at
    while clock.now() < until:
        seq += 1
        peer.send_ping(seq, time.monotonic())
        due = clock.now() + PING_EVERY_S
        while clock.now() < due:
            await clock.sleep(POLL_S)
            if peer.last_pong_at != heard and peer.rtt_ms is not None:
                heard = peer.last_pong_at
                rtts.append(peer.rtt_ms)
    return rtts


async def measure_media(
    peer: WorkerPeer,
    source: GrainySource,
    recorder: Recorder,
    seconds: float = MEDIA_S,
    clock: Clock | None = None,
) -> MediaNumbers:
    """Measure ``seconds`` of the running test session (frames already flow)."""
    clock = clock or MonotonicClock()
    await _ping(peer, clock, clock.now() + WARMUP_S)
    before = await read_counters(peer.pc)
    start = time.monotonic()
    rtts = await _ping(peer, clock, clock.now() + seconds)
    end = time.monotonic()
    after = await read_counters(peer.pc)
    span = max(end - start, 1e-3)
    back = recorder.between(start, end)
    ours = {a.frame_id for a in back if a.frame_id is not None}
    sent = source.sent_between(start, end)
    # A pipeline that hides our numbers: every frame back counts. The window's edges may
    # hold a frame sent just before it: never more back than went out.
    distinct = min(len(ours) if ours else len(back), sent)
    trips = [ms for at, ms in recorder.round_trips_ms if start <= at < end]
    last = back[-1] if back else None
    estimate = receive_estimate(peer.pc)
    target = sending_bitrate(peer.pc)
    return MediaNumbers(
        seconds=span,
        fps_sent=sent / span,
        fps_distinct=distinct / span,
        width=last.width if last else None,
        height=last.height if last else None,
        rtt_p50_ms=percentile(rtts, 0.5),
        rtt_p95_ms=percentile(rtts, 0.95),
        round_trip_p50_ms=percentile(trips, 0.5),
        round_trip_p95_ms=percentile(trips, 0.95),
        loss_down=window_loss(before.down, after.down),
        loss_up=window_loss(before.up, after.up),
        down_kbps=estimate / 1000 if estimate else None,
        up_kbps=target / ESTIMATE_SHARE / 1000 if target else None,
    )
