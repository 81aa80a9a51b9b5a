"""The studio's HTTP API: bad bodies get 4xx with a message, never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import Services, get_status, wait_until

pytestmark = pytest.mark.timeout(60)


async def test_bad_bodies_get_422_with_a_message(services: Services) -> None:
    worker = services.worker()
    studio = services.studio(worker)
    await wait_until(lambda: _connected(studio), 15, "link connected")
    bad = [
        ("/api/v1/webrtc/offer", {"type": "offer"}, "sdp"),
        ("/api/v1/webrtc/offer", {"sdp": "v=0", "type": "answer"}, "type"),
        ("/api/v1/parameters", [1, 2], "body"),
        ("/api/v1/parameters", {"pipeline": "no-such-thing"}, "unknown pipeline"),
        ("/api/v1/cloud/connect", {"worker_url": "ftp://x"}, "worker URL"),
        ("/api/v1/cloud/connect", {"wrker_url": "http://x"}, "wrker_url"),
    ]
    async with httpx.AsyncClient(base_url=studio.url) as http:
        for path, body, needle in bad:
            r = await http.post(path, json=body)
            assert r.status_code == 422, (path, body, r.text)
            assert needle in r.json()["message"], (path, r.json())
        r = await http.post(
            "/api/v1/webrtc/offer",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422 and r.json()["message"]
        r = await http.post("/api/v1/webrtc/offer", json={"sdp": "garbage", "type": "offer"})
        assert r.status_code == 400 and "offer" in r.json()["message"]
        r = await http.post("/api/v1/cloud/debug/disconnect-webrtc")
        assert r.status_code == 404
        # nothing was lost or broken by the bad requests
        assert (await get_status(studio))["state"] == "connected"
        r = await http.get("/api/v1/pipelines")
        assert "tint" in {p["name"] for p in r.json()["pipelines"]}
        tint = next(p for p in r.json()["pipelines"] if p["name"] == "tint")
        assert {"prompt", "strength"} <= set(tint["parameters"]["properties"])


async def test_parameters_merge_and_version(services: Services) -> None:
    studio = services.studio()
    async with httpx.AsyncClient(base_url=studio.url) as http:
        assert (await http.get("/api/v1/parameters")).json()["version"] == 0
        await http.post("/api/v1/parameters", json={"pipeline": "tint", "prompt": "red"})
        r = await http.post("/api/v1/parameters", json={"strength": 0.3})
        assert r.json() == {
            "parameters": {"pipeline": "tint", "prompt": "red", "strength": 0.3},
            "version": 2,
            "acked_version": 0,
        }


async def test_connect_disconnect_is_not_an_error(services: Services) -> None:
    worker = services.worker()
    studio = services.studio()
    async with httpx.AsyncClient(base_url=studio.url) as http:
        status = await get_status(studio)
        assert status["state"] == "idle"
        r = await http.post(
            "/api/v1/cloud/connect", json={"worker_url": worker.url, "token": worker.token}
        )
        assert r.status_code == 200
        await wait_until(lambda: _connected(studio), 15, "link connected")
        r = await http.post("/api/v1/cloud/disconnect")
        status = r.json()
        assert status["state"] == "idle" and status["error"] is None
        kinds = [e["kind"] for e in status["events"]]
        assert kinds[-4:] == ["connecting", "connected", "closing", "disconnected"]
        metrics = (await http.get("/metrics")).text
        assert 'tether_link_state{state="idle"} 1.0' in metrics


async def _connected(studio) -> bool:
    return (await get_status(studio))["state"] == "connected"
