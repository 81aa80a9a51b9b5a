"""Which lost video packets a receiver asks its sender to resend (NACK), and when.

aiortc's receiver, on every new gap, asks again for *every* packet it still misses,
up to 128 of them, for as long as they stay missing. On a congested path the resent
packets are lost too, so each new loss asks for all the old ones again: a lost packet
is resent dozens of times, the resends crowd out the video, and more is lost. A
150 kbit/s path measured hundreds of dropped packets a second, most of them resends.

Here each missing packet is asked for when its gap is seen and, while it stays
missing, again once a round trip has passed without its resend (the round trip is
measured from the requests themselves: request to resend, for packets asked for once),
until ``NACK_GIVE_UP_S`` (the jitter buffer has skipped its frame by then and asked for a
keyframe). A gap wider than ``MAX_BURST`` packets is an outage, not loss: nothing in
it is asked for. So a lost packet costs its sender about one resend per round trip:
on a congested path (long queues, long round trips) one or two; on a fast one with
heavy loss up to ``TRIES``, which it needs (at 40 % loss each way a request and its
resend both get through only a third of the time). Pure logic; time is passed in."""

from __future__ import annotations

from dataclasses import dataclass

from tether.timing import NACK_GIVE_UP_S, NACK_MIN_RETRY_S, NACK_RTT_START_S

TRIES = 10
MAX_BURST = 64
RETRY_RTTS = 1.5  # ask again after this many round trips without the resend...
_HALF = 1 << 15


def newer(a: int, b: int) -> bool:
    """Whether sequence number ``a`` comes after ``b`` (16-bit, wrapping)."""
    return a != b and ((a - b) & 0xFFFF) < _HALF


@dataclass
class _Missing:
    since: float
    asked: int = 0
    asked_at: float = 0.0


class NackPacer:
    def __init__(self) -> None:
        self.max_seq: int | None = None
        self.rtt_s = NACK_RTT_START_S
        self._timed = False
        self._missing: dict[int, _Missing] = {}
        self.requested = 0  # packets asked for, counting repeats

    @property
    def retry_s(self) -> float:
        return max(NACK_MIN_RETRY_S, RETRY_RTTS * self.rtt_s)

    def received(self, seq: int, now: float) -> list[int]:
        """A packet (or its resend) arrived; returns the packets to ask for now."""
        if self.max_seq is None:
            self.max_seq = seq
        elif newer(seq, self.max_seq):
            gap = (seq - self.max_seq - 1) & 0xFFFF
            if gap <= MAX_BURST:
                for i in range(1, gap + 1):
                    self._missing[(self.max_seq + i) & 0xFFFF] = _Missing(now)
            self.max_seq = seq
        elif (m := self._missing.pop(seq, None)) is not None and m.asked == 1:
            self._time(now - m.asked_at)  # asked once: this is its answer (Karn)
        return self.due(now)

    def _time(self, sample: float) -> None:
        self.rtt_s = sample if not self._timed else 0.875 * self.rtt_s + 0.125 * sample
        self._timed = True

    def due(self, now: float) -> list[int]:
        if not self._missing:  # the usual case, on every packet: nothing to build
            return []
        out = []
        retry_s = self.retry_s
        for seq, m in list(self._missing.items()):
            if now - m.since >= NACK_GIVE_UP_S:
                del self._missing[seq]
            elif m.asked == 0 or (m.asked < TRIES and now - m.asked_at >= retry_s):
                m.asked, m.asked_at = m.asked + 1, now
                out.append(seq)
        self.requested += len(out)
        return out

    @property
    def missing(self) -> set[int]:
        return set(self._missing)
