"""The media path's health: heartbeat, media watchdog, and every timing constant of
the link in one place. It reports a loss by callback; it never acts on the link.

Lossy is not lost: any sign of life from the worker counts (a pong on the heartbeat's
own unordered, no-retransmit channel, a processed frame, and any datagram at all),
silence is counted from the moment the peer connected, and the watchdog only fires on
a long stall. On a link losing a fifth of its packets, three pongs in a row go missing
every few minutes, but datagrams keep coming many times a second: a worker whose
packets arrive is only declared lost once its heartbeat has not answered for
``UNANSWERED_S`` (it sends, but does not hear us: a one-way outage)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

from tether.clock import Clock
from tether.media.frames import FrameSlot
from tether.timing import (
    FALLBACK_AFTER_S,
    MEDIA_STALL_S,
    PORT_PROBE_TIMEOUT_S,
    SOURCE_FRESH_S,
    STARVED_STALL_S,
    UNANSWERED_S,
    WATCH_TICK_S,
    Timing,
)


class Peer(Protocol):
    """What health needs to see of a worker peer."""

    state: str
    channel_open: bool
    started_at: float
    connected_at: float | None
    last_pong_at: float | None
    worker_output_at: float | None  # the worker said its output grew (None: unknown)
    worker_input_at: float | None  # the worker said its input grew (None: unknown)
    pipeline_loading: bool  # the worker said its pipeline is loading a model

    def send_ping(self, seq: int, t: float) -> bool: ...

    def last_heard_at(self) -> float | None:
        """When the last datagram of any kind arrived from the worker (None: never)."""
        ...


class Health:
    def __init__(
        self, timing: Timing, clock: Clock, source: FrameSlot, processed: FrameSlot
    ) -> None:
        self.timing = timing
        self.clock = clock
        self.source = source
        self.processed = processed

    def source_flowing(self) -> bool:
        src = self.source.updated_at
        return src is not None and self.clock.now() - src <= SOURCE_FRESH_S

    def unanswered_for(self, peer: Peer) -> float:
        """Seconds without an answer from the worker (a pong or a processed frame)."""
        since = peer.connected_at or peer.started_at
        life = [since, peer.last_pong_at or since]
        frame_at = self.processed.updated_at
        if frame_at is not None and frame_at >= since:
            life.append(frame_at)
        return self.clock.now() - max(life)

    def silent_for(self, peer: Peer) -> float:
        """Seconds without any sign of life from the worker on this peer."""
        since = peer.connected_at or peer.started_at
        heard = peer.last_heard_at()
        silent = self.unanswered_for(peer)
        if heard is not None and heard >= since:
            silent = min(silent, self.clock.now() - heard)
        return silent

    def worker_lag_s(self, peer: Peer | None) -> float:
        """How long the worker's frames have been missing while ours flow (0 when ours
        don't, or there is no media path)."""
        if peer is None or not self.source_flowing():
            return 0.0
        since = max(self.processed.updated_at or 0.0, peer.connected_at or peer.started_at)
        return self.clock.now() - since

    def stalled(self, peer: Peer | None) -> bool:
        """The worker's frames have been missing a long while, and the worker is not
        putting any out either (when it is, they are lost on a congested path, which a
        reconnect would not mend). When our frames do not reach its pipeline either,
        the path upstream is congested: only a much longer starvation counts. A worker
        that says its pipeline is loading is busy, not stuck (its heartbeat, checked
        before this, tells a dead path)."""
        lag = self.worker_lag_s(peer)
        if peer is None or lag <= MEDIA_STALL_S or peer.pipeline_loading:
            return False
        output_at, input_at = peer.worker_output_at, peer.worker_input_at
        # What the worker said last (its pongs carry its counts): a pong lost on a
        # congested path says nothing, so only a pong that came says its output stopped.
        said_at = peer.last_pong_at if output_at is not None else self.clock.now()
        if said_at is None or output_at is not None and said_at - output_at <= MEDIA_STALL_S:
            return False
        starved = input_at is not None and said_at - input_at > MEDIA_STALL_S
        return not starved or lag > STARVED_STALL_S

    def media_healthy(self, peer: Peer | None) -> bool:
        if peer is None or peer.state != "connected" or not peer.channel_open:
            return False
        if not self.timing.heartbeat_on:
            return True
        return self.verdict(peer) is None

    def output_live(self, peer: Peer | None) -> bool:
        """Whether a client should see the worker's frames (else the fallback)."""
        return self.media_healthy(peer) and self.worker_lag_s(peer) <= FALLBACK_AFTER_S

    def verdict(self, peer: Peer) -> str | None:
        """Why this peer counts as lost, or None while it lives."""
        silent = self.silent_for(peer)
        if silent > self.timing.heartbeat_timeout_s:
            return f"heartbeat: no answer from the worker for {silent:.1f}s"
        unanswered = self.unanswered_for(peer)
        if unanswered > max(UNANSWERED_S, self.timing.heartbeat_timeout_s):
            return (
                f"heartbeat: the worker's packets arrive but it has not answered for "
                f"{unanswered:.1f}s (it may not hear us)"
            )
        if self.stalled(peer):
            return (
                "the worker stopped sending frames while ours flow "
                "(its heartbeat still answers: the pipeline may be stuck)"
            )
        return None

    async def watch(
        self,
        peer: Peer,
        current: Callable[[], bool],
        armed: Callable[[], bool],
        on_lost: Callable[[str], None],
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        """Ping while ``peer`` is ``current``; report a loss (while ``armed``) by callback."""
        interval = self.timing.heartbeat_interval_s
        tick = min(interval, WATCH_TICK_S)
        seq, next_ping = 0, self.clock.now()
        while current():
            now = self.clock.now()
            if now >= next_ping:
                seq += 1
                peer.send_ping(seq, now)
                next_ping = now + interval
            if armed() and (reason := self.verdict(peer)) is not None:
                on_lost(reason)
            if on_tick is not None:
                on_tick()
            await self.clock.sleep(tick)


async def port_answers(host: str, port: int, refused_counts: bool = False) -> bool:
    """Does the worker's port accept a connection? (No auth: just "is it back".) With
    ``refused_counts``, a refusal counts too: the host answers, the path is up."""
    try:
        async with asyncio.timeout(PORT_PROBE_TIMEOUT_S):
            _, writer = await asyncio.open_connection(host, port)
    except ConnectionRefusedError:
        return refused_counts
    except (OSError, TimeoutError, ValueError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
