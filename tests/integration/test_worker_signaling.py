"""The worker's signaling socket: auth, malformed messages, replies by request_id."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import Services
from tether.client.signaling import AuthError, SignalingClient

pytestmark = pytest.mark.timeout(60)


async def test_missing_or_wrong_token_closes_4401(services: Services) -> None:
    worker = services.worker(token="s3cret")
    for headers in ({}, {"Authorization": "Bearer nope"}):
        async with connect(f"ws://127.0.0.1:{worker.port}/ws", additional_headers=headers) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
        assert info.value.rcvd.code == 4401
        assert "token" in info.value.rcvd.reason
    client = SignalingClient(worker.url, "nope")
    with pytest.raises(AuthError, match="rejected the token"):
        await client.connect(5)
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{worker.url}/api/v1/sessions")).status_code == 401
        assert (await http.get(f"{worker.url}/health")).json()["status"] == "ok"


async def test_token_in_query_string_is_refused(services: Services) -> None:
    """A URL lands in access logs: the token is taken from the header only."""
    worker = services.worker(token="s3cret")
    async with connect(f"ws://127.0.0.1:{worker.port}/ws?token=s3cret") as ws:
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd.code == 4401 and "Authorization" in info.value.rcvd.reason
    headers = {"Authorization": "Bearer s3cret"}
    async with connect(f"ws://127.0.0.1:{worker.port}/ws", additional_headers=headers) as ws:
        ready = json.loads(await ws.recv())
    assert ready["type"] == "ready" and ready["connection_id"]
    names = {p["name"] for p in ready["pipelines"]}
    assert {"passthrough", "gray", "invert", "edges", "tint"} <= names
    assert "s3cret" not in worker.output()


async def test_malformed_messages_get_error_and_socket_stays_usable(services: Services) -> None:
    worker = services.worker(token="s3cret")
    headers = {"Authorization": "Bearer s3cret"}
    async with connect(f"ws://127.0.0.1:{worker.port}/ws", additional_headers=headers) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        cases = [
            ("not json at all", None, "not valid JSON"),
            ("[1, 2]", None, "JSON object"),
            (json.dumps({"request_id": "a"}), "a", "no 'type'"),
            (json.dumps({"type": "bogus", "request_id": "b"}), "b", "unknown message type"),
            (json.dumps({"type": "offer", "request_id": "c"}), "c", "sdp"),
            (json.dumps({"type": "offer", "request_id": "d", "sdp": "garbage"}), "d", "offer"),
        ]
        for raw, request_id, needle in cases:
            await ws.send(raw)
            reply = json.loads(await ws.recv())
            assert reply["type"] == "error", raw
            assert reply["request_id"] == request_id
            assert needle in reply["message"], (raw, reply)
        await ws.send(json.dumps({"type": "ping", "request_id": "p1", "t": 12.5}))
        assert json.loads(await ws.recv()) == {"type": "pong", "request_id": "p1", "t": 12.5}
        await ws.send(json.dumps({"type": "get_ice_servers", "request_id": "i1"}))
        reply = json.loads(await ws.recv())
        assert reply["type"] == "ice_servers" and reply["request_id"] == "i1"
