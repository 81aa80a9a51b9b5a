"""The studio answers only to its user: host names, origins, content types, body
sizes, studio token, security headers, and the worker token's one destination. Real
studio and worker processes; every refused request is shown to have changed nothing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.server import serve

from tests.helpers import Service, Services, get_status, wait_until
from tether.tools.processes import free_port

pytestmark = pytest.mark.timeout(90)

STUDIO_TOKEN = "studio-token-for-tests"


async def _connected(studio: Service, headers: dict[str, str] | None = None) -> bool:
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{studio.url}/api/v1/cloud/status", headers=headers or {})
    return r.json()["state"] == "connected"


def _snapshot(status: dict[str, Any]) -> tuple:
    return (
        status["state"],
        status["worker_url"],
        status["connection_id"],
        status["params_version"],
    )


class FakeWorker:
    """A WebSocket server on loopback that records who knocked and with what headers."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[dict[str, str]] = []

    async def __aenter__(self) -> FakeWorker:
        async def handler(ws) -> None:
            self.requests.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
            await ws.close()

        self._server = await serve(handler, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()


async def test_foreign_hosts_origins_and_bodies_change_nothing(services: Services) -> None:
    worker = services.worker()
    studio = services.studio(worker)
    await wait_until(lambda: _connected(studio), 15, "link connected")
    async with httpx.AsyncClient(base_url=studio.url, timeout=10) as http:
        r = await http.post("/api/v1/parameters", json={"pipeline": "tint", "prompt": "red"})
        assert r.status_code == 200
        before = await get_status(studio)
        params_before = (await http.get("/api/v1/parameters")).json()
        evil = {"Origin": "http://evil.example"}
        attacks = [
            # DNS rebinding: the page's origin is its own name, pointing at us
            ("GET", "/api/v1/cloud/status", {"Host": "evil.example"}, None, 403),
            ("GET", "/api/v1/parameters", {"Host": f"evil.example:{studio.port}"}, None, 403),
            ("GET", "/", {"Host": "evil.example"}, None, 403),
            ("POST", "/api/v1/cloud/disconnect", {"Host": "rebind.test"}, None, 403),
            # cross-site requests (a plain no-cors fetch or form sends these)
            ("POST", "/api/v1/cloud/disconnect", evil, None, 403),
            ("POST", "/api/v1/webrtc/stop", evil, None, 403),
            ("POST", "/api/v1/cloud/reconnect", evil, None, 403),
            ("POST", "/api/v1/cloud/disconnect", {"Origin": "null"}, None, 403),
            ("GET", "/api/v1/cloud/events", evil, None, 403),
            (
                "POST",
                "/api/v1/cloud/connect",
                {**evil, "Content-Type": "text/plain"},
                b'{"worker_url": "http://127.0.0.1:9"}',
                403,
            ),
            # JSON endpoints take JSON only
            (
                "POST",
                "/api/v1/parameters",
                {"Content-Type": "text/plain"},
                b'{"pipeline": "gray"}',
                415,
            ),
            (
                "POST",
                "/api/v1/parameters",
                {"Content-Type": "application/x-www-form-urlencoded"},
                b"pipeline=gray",
                415,
            ),
        ]
        for method, path, headers, body, code in attacks:
            r = await http.request(method, path, headers=headers, content=body)
            assert r.status_code == code, (method, path, headers, r.status_code, r.text)
            assert r.json()["message"]
        # the studio's own page (same origin) and scripts (no Origin) still work
        own = {"Origin": studio.url}
        assert (await http.get("/api/v1/cloud/status", headers=own)).status_code == 200
        host_names = [f"localhost:{studio.port}", f"127.0.0.1:{studio.port}"]
        for host in host_names:
            assert (await http.get("/health", headers={"Host": host})).status_code == 200
        after = await get_status(studio)
        assert _snapshot(after) == _snapshot(before)
        assert (await http.get("/api/v1/parameters")).json() == params_before


async def test_bounded_bodies_and_bad_input_answer_fast_without_5xx(services: Services) -> None:
    worker = services.worker()
    studio = services.studio(worker)
    await wait_until(lambda: _connected(studio), 15, "link connected")
    async with httpx.AsyncClient(base_url=studio.url, timeout=10) as http:
        await http.post("/api/v1/parameters", json={"pipeline": "tint", "prompt": "red"})
        params_before = (await http.get("/api/v1/parameters")).json()

        async def chunks():
            for _ in range(40):
                yield b"x" * 65536

        nested = b'{"a": ' + b"[" * 400 + b"]" * 400 + b"}"
        sdp_port = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video abc UDP 96\r\n"
        sdp_codec = sdp_port.replace("abc UDP 96", "9 UDP/TLS/RTP/SAVPF 96") + (
            "a=rtpmap:96 NOPE/90000\r\n"
        )
        big = json.dumps({"sdp": "v=0\r\n" + "a=x\r\n" * 20_000, "type": "offer"}).encode()
        cases: list[tuple[str, str, Any, int, str]] = [
            ("POST", "/api/v1/parameters", b'{"prompt": "' + b"x" * (2 << 20) + b'"}', 413, ""),
            ("POST", "/api/v1/parameters", chunks(), 413, ""),
            ("POST", "/api/v1/parameters", nested, 422, "deeper"),
            ("POST", "/api/v1/webrtc/offer", nested, 422, "deeper"),
            ("POST", "/api/v1/parameters", b'{"strength": ' + b"9" * 5000 + b"}", 422, ""),
            ("POST", "/api/v1/webrtc/offer", big, 422, "sdp"),
            ("POST", "/api/v1/webrtc/offer", {"sdp": sdp_port, "type": "offer"}, 400, "SDP"),
            ("POST", "/api/v1/webrtc/offer", {"sdp": sdp_codec, "type": "offer"}, 400, "codec"),
            ("POST", "/api/v1/cloud/connect", {"worker_url": "http://[::1"}, 422, "worker URL"),
            ("POST", "/api/v1/cloud/connect", {"worker_url": "http://h:port"}, 422, "worker URL"),
            # parameters: checked against the pipeline's schema before they are stored
            ("POST", "/api/v1/parameters", {"strength": 5}, 422, "strength"),
            ("POST", "/api/v1/parameters", {"colour": "red"}, 422, "colour"),
            ("POST", "/api/v1/parameters", {"pipeline": "gray", "prompt": "x"}, 422, "prompt"),
            ("POST", "/api/v1/parameters", {"prompt": "x" * 600}, 422, "prompt"),
            ("POST", "/api/v1/parameters", {"pipeline": 5}, 422, "pipeline"),
            (
                "POST",
                "/api/v1/webrtc/offer",
                {"sdp": sdp_port, "type": "offer", "initialParameters": {"strength": 5}},
                422,
                "strength",
            ),
        ]
        for method, path, body, code, needle in cases:
            started = time.monotonic()
            if isinstance(body, dict):
                r = await http.request(method, path, json=body)
            else:
                headers = {"Content-Type": "application/json"}
                r = await http.request(method, path, content=body, headers=headers)
            took = time.monotonic() - started
            assert r.status_code == code, (path, r.status_code, r.text[:200])
            assert needle in r.json()["message"], (path, r.json())
            assert took < 2.0, (path, took)
        assert (await http.get("/api/v1/parameters")).json() == params_before
        assert (await get_status(studio))["state"] == "connected"


async def test_security_headers_on_page_and_api(services: Services) -> None:
    studio = services.studio()
    async with httpx.AsyncClient(base_url=studio.url) as http:
        for path in ("/", "/app.js", "/api/v1/cloud/status", "/no-such-page"):
            r = await http.get(path)
            csp = r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, path
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["x-content-type-options"] == "nosniff"
        r = await http.get("/api/v1/cloud/status")
        assert r.headers["cache-control"] == "no-store"


async def test_studio_token_bearer_and_cookie(services: Services) -> None:
    studio = services.studio(TETHER_STUDIO_TOKEN=STUDIO_TOKEN)
    async with httpx.AsyncClient(base_url=studio.url) as http:
        for path in ("/", "/api/v1/cloud/status", "/api/v1/parameters", "/metrics"):
            assert (await http.get(path)).status_code == 401, path
        r = await http.post("/api/v1/cloud/disconnect")
        assert r.status_code == 401 and "token" in r.json()["message"]
        wrong = {"Authorization": "Bearer nope"}
        assert (await http.get("/api/v1/cloud/status", headers=wrong)).status_code == 401
        assert (await http.get("/health")).status_code == 200  # liveness stays open
        ok = {"Authorization": f"Bearer {STUDIO_TOKEN}"}
        assert (await http.get("/api/v1/cloud/status", headers=ok)).status_code == 200
        assert (await http.get("/?token=nope")).status_code == 401
        r = await http.get(f"/?token={STUDIO_TOKEN}")
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    async with httpx.AsyncClient(base_url=studio.url, cookies=dict(r.cookies)) as page:
        assert (await page.get("/")).status_code == 200
        assert (await page.get("/api/v1/cloud/status")).status_code == 200
    # `tether status` sends TETHER_STUDIO_TOKEN
    for env, code in [({"TETHER_STUDIO_TOKEN": STUDIO_TOKEN}, 0), ({}, 2)]:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "tether", "status", "--studio", studio.url],
            env={k: v for k, v in os.environ.items() if k != "TETHER_STUDIO_TOKEN"} | env,
            capture_output=True,
            timeout=30,
        )
        assert done.returncode == code, done.stderr


async def test_off_loopback_a_token_is_generated_and_required(services: Services) -> None:
    port = free_port()
    studio = services._launch(
        "studio", ["studio", "--host", "0.0.0.0", "--port", str(port)], port, {}, None
    )
    async with httpx.AsyncClient(base_url=studio.url) as http:
        assert (await http.get("/api/v1/cloud/status")).status_code == 401
        line = next(ln for ln in studio.output().splitlines() if "?token=" in ln)
        token = line.split("?token=")[1].split()[0]
        r = await http.get("/api/v1/cloud/status", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200


async def test_allow_host_serves_a_name(services: Services) -> None:
    studio = services.studio(TETHER_ALLOW_HOST="studio.lan, other.lan")
    async with httpx.AsyncClient(base_url=studio.url) as http:
        for host, code in [("studio.lan", 200), ("other.lan:80", 200), ("evil.lan", 403)]:
            r = await http.get("/api/v1/cloud/status", headers={"Host": host})
            assert r.status_code == code, host


async def test_worker_token_goes_only_to_its_worker(services: Services) -> None:
    worker = services.worker(token="the-real-token")
    studio = services.studio(worker)
    await wait_until(lambda: _connected(studio), 15, "link connected")
    async with FakeWorker() as fake, httpx.AsyncClient(base_url=studio.url, timeout=10) as http:
        fake_url = f"http://127.0.0.1:{fake.port}"
        r = await http.post("/api/v1/cloud/connect", json={"worker_url": fake_url})
        assert r.status_code == 200
        # More than one try: a retry must not bring the token either.
        await wait_until(lambda: len(fake.requests) >= 2, 10, "the studio tried it again")
        assert all("authorization" not in h for h in fake.requests)
        assert "the-real-token" not in json.dumps(fake.requests)
        # back to the configured worker: its token goes with it again
        r = await http.post("/api/v1/cloud/connect", json={"worker_url": worker.url})
        await wait_until(lambda: _connected(studio), 15, "back on the real worker")
        # a token given with a URL goes to that URL only
        knocks = len(fake.requests)
        r = await http.post(
            "/api/v1/cloud/connect", json={"worker_url": fake_url, "token": "for-the-fake"}
        )
        await wait_until(lambda: len(fake.requests) > knocks, 10, "a try at the fake")
        assert fake.requests[-1].get("authorization") == "Bearer for-the-fake"


async def test_racing_updates_store_only_the_valid_ones(services: Services) -> None:
    studio = services.studio()
    async with httpx.AsyncClient(base_url=studio.url, timeout=10) as http:
        await http.post("/api/v1/parameters", json={"pipeline": "tint"})
        bodies = [{"strength": i / 40} if i % 2 == 0 else {"strength": 5 + i} for i in range(40)]
        results = await asyncio.gather(*(http.post("/api/v1/parameters", json=b) for b in bodies))
        assert [r.status_code for r in results] == [422 if i % 2 else 200 for i in range(40)]
        final = (await http.get("/api/v1/parameters")).json()
        assert final["version"] == 1 + 20
        assert final["parameters"]["strength"] in {b["strength"] for b in bodies[::2]}
