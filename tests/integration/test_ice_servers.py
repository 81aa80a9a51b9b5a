"""The worker hands out its configured ICE servers over signaling, with TURN
credentials minted per connection that expire."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from tests.helpers import Services
from tether.client.signaling import SignalingClient

pytestmark = pytest.mark.timeout(60)


async def test_get_ice_servers_answers_from_configuration(services: Services) -> None:
    worker = services.worker(
        TETHER_ICE_SERVERS="stun:stun.invalid:3478",
        TETHER_TURN_URLS="turn:turn.invalid:3478?transport=udp",
        TETHER_TURN_SECRET="shared-secret",
        TETHER_TURN_TTL_S="120",
    )
    client = SignalingClient(worker.url, worker.token)
    await client.connect(10)
    try:
        stun, turn = await client.ice_servers()
        assert stun == {"urls": ["stun:stun.invalid:3478"]}
        assert turn["urls"] == ["turn:turn.invalid:3478?transport=udp"]
        expiry, name = turn["username"].split(":", 1)
        assert abs(int(expiry) - (time.time() + 120)) < 10
        assert name == client.connection_id
        digest = hmac.new(b"shared-secret", turn["username"].encode(), hashlib.sha1).digest()
        assert turn["credential"] == base64.b64encode(digest).decode()
        assert await client.ice_servers() == [stun, turn]  # cached for this connection
    finally:
        await client.close()
    assert "shared-secret" not in worker.output()


async def test_a_worker_without_ice_servers_hands_out_none(services: Services) -> None:
    worker = services.worker()
    client = SignalingClient(worker.url, worker.token)
    await client.connect(10)
    try:
        assert await client.ice_servers() == []
    finally:
        await client.close()
