"""A sender's resends (answers to NACKs) kept within a share of what it sends.

aiortc resends every packet a NACK names, at once and without limit. On a congested
path the resends are lost too and asked for again: a 250 kbit/s cap measured 60-145
resends a second from the studio to the worker (about 1 Mbit/s offered to the cap),
the video starved behind them, and the path never recovered. As libwebrtc does, the
resends get a budget: ``RESEND_SHARE`` of the media bytes the sender sent, banked for
at most ``RESEND_BANK_S`` of them; a resend past it is not sent (the receiver gives up
on the packet, skips its frame and asks for a keyframe). Random loss needs a resend
per lost packet and stays well within it."""

from __future__ import annotations

import time
from typing import Any

from aiortc.rtcrtpsender import RTP_HISTORY_SIZE, RTCRtpSender

# Resent bytes per media byte sent...
RESEND_SHARE = 0.5
# ...banked for at most this many seconds' worth of media (about 1 s).
RESEND_BANK_S = 1.0

# A new sender may resend this much before it has sent anything to earn it.
RESEND_START_BYTES = 10_000

_AIORTC_RETRANSMIT = RTCRtpSender._retransmit


class ResendBudget:
    """Pure logic: media bytes sent so far in, resends out."""

    def __init__(self, share: float = RESEND_SHARE) -> None:
        self.share = share
        self.credit = float(RESEND_START_BYTES)
        self.refused = 0
        self._octets = 0
        self._rate = 0.0  # media bytes/s, smoothed (for the bank's size)
        self._at: float | None = None

    def allow(self, size: int, octets: int, now: float) -> bool:
        """Whether a resend of ``size`` bytes may go; ``octets``: media bytes sent so
        far (a running count)."""
        sent = max(0, octets - self._octets)
        self._octets = octets
        if self._at is not None and now > self._at:
            self._rate = 0.8 * self._rate + 0.2 * sent / (now - self._at)
        self._at = now
        bank = max(self.share * self._rate * RESEND_BANK_S, float(RESEND_START_BYTES))
        self.credit = min(self.credit + self.share * sent, bank)
        if self.credit < size:
            self.refused += 1
            return False
        self.credit -= size
        return True


async def budgeted_retransmit(sender: Any, sequence_number: int) -> None:
    """Stands in for ``RTCRtpSender._retransmit``: the same, within the budget."""
    budget = sender.__dict__.get("_tether_resends")
    if budget is None:
        budget = sender._tether_resends = ResendBudget()
    packet = sender._RTCRtpSender__rtp_history.get(sequence_number % RTP_HISTORY_SIZE)
    if packet is None or packet.sequence_number != sequence_number:
        return
    octets = sender._RTCRtpSender__octet_count
    if budget.allow(len(packet.payload), octets, time.monotonic()):
        await _AIORTC_RETRANSMIT(sender, sequence_number)
