"""ICE consent checks that wait for a long path's answer.

aioice checks consent (RFC 7675) every 4-6 s with one STUN request that times out
after 0.5 s, and closes the connection after six failed checks in a row. A path whose
round trip is near or above half a second (250 ms each way: a satellite hop, a far
region behind a busy uplink) fails most checks although every answer arrives, and
the link closed after about 30 s (measured in the network lab: a false alarm and a
reconnect, every time). ``patient_query_consent`` stands in for
``aioice.ice.Connection.query_consent``: the same schedule and failure count, but each
check is retried by STUN's rules until ``ICE_CONSENT_ANSWER_S``. The adapter
(``tether.rtc.adapter``) installs it."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from aioice import stun
from aioice.ice import CONSENT_FAILURES, CONSENT_INTERVAL

from tether.timing import ICE_CONSENT_ANSWER_S


def retransmissions_within(seconds: float) -> int:
    """How many resends a STUN transaction makes before it has waited ``seconds``
    (its waits start at ``RETRY_RTO`` and double)."""
    waited, wait, count = stun.RETRY_RTO, stun.RETRY_RTO, 0
    while waited < seconds:
        wait *= 2
        waited += wait
        count += 1
    return count


logger = logging.getLogger(__name__)

CONSENT_RETRANSMISSIONS = retransmissions_within(ICE_CONSENT_ANSWER_S)


async def patient_query_consent(connection: Any) -> None:
    """aioice's consent loop, each check waiting up to ``ICE_CONSENT_ANSWER_S``."""
    assert connection.remote_password is not None  # checks start once connected
    key = connection.remote_password.encode("utf8")
    failures = 0
    while True:
        await asyncio.sleep(CONSENT_INTERVAL * (0.8 + 0.4 * random.random()))
        for pair in list(connection._nominated.values()):
            request = connection.build_request(pair, nominate=False)
            try:
                await pair.protocol.request(
                    request,
                    pair.remote_addr,
                    integrity_key=key,
                    retransmissions=CONSENT_RETRANSMISSIONS,
                )
                failures = 0
            except stun.TransactionError:
                failures += 1
            if failures >= CONSENT_FAILURES:
                logger.info("ICE consent expired: %d checks in a row went unanswered", failures)
                connection._query_consent_task = None
                await connection.close()
                return
