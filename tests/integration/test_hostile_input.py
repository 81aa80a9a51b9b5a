"""Odd and hostile input against real studio and worker processes: a broken offer never
touches the live stream, odd worker URLs and Host headers get a 4xx in words, and a
burst of token-less handshakes stays cheap at every log level."""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import pytest
import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription

from tests.helpers import Services, get_status, real_offer, wait_until
from tether.tools.probe import FrameSink, NumberedSource, StudioClient

pytestmark = pytest.mark.timeout(120)


def _longest_gap_s(sink: FrameSink, since: float) -> float:
    """The longest wait between new frame numbers reaching the client after ``since``."""
    times = [at for at, _ in _distinct(sink.history) if at >= since]
    times.append(time.monotonic())
    return max(b - a for a, b in zip(times, times[1:], strict=False))


def _distinct(history: list[tuple[float, int]]) -> list[tuple[float, int]]:
    seen: set[int] = set()
    out = []
    for at, frame_id in history:
        if frame_id not in seen:
            seen.add(frame_id)
            out.append((at, frame_id))
    return out


def _broken_offers(sdp: str) -> dict[str, tuple[str, str]]:
    video = sdp[sdp.index("m=video") :]
    lines = sdp.splitlines(keepends=True)
    return {
        "no fingerprint": (
            "".join(x for x in lines if not x.startswith("a=fingerprint")),
            "DTLS fingerprint",
        ),
        "md5 fingerprint": (
            re.sub(
                r"^a=fingerprint:.*$", "a=fingerprint:md5 " + ":".join(["AB"] * 16), sdp, flags=re.M
            ),
            "DTLS fingerprint",
        ),
        "no ICE password": (
            "".join(x for x in lines if not x.startswith("a=ice-pwd")),
            "ICE credentials",
        ),
        "8 video sections": (sdp + video * 7, "8 video sections"),
    }


async def test_a_broken_offer_never_touches_the_live_stream(services: Services) -> None:
    studio = services.studio(services.worker())
    source = NumberedSource(256, 256, fps=30)
    sink = FrameSink(source=source, keep_rgb=False)
    victim = StudioClient(studio.url, source, sink)
    await victim.start({"pipeline": "passthrough"})
    attackers: list[RTCPeerConnection] = []
    try:
        await wait_until(lambda: sink.frames >= 30, 30, "the victim's first frames")
        stream_id = (await get_status(studio))["stream_id"]
        since = time.monotonic()
        async with httpx.AsyncClient(base_url=studio.url, timeout=10) as http:
            pc, sdp = await real_offer()
            attackers.append(pc)
            for name, (broken, needle) in _broken_offers(sdp).items():
                r = await http.post("/api/v1/webrtc/offer", json={"sdp": broken, "type": "offer"})
                assert r.status_code == 400, (name, r.text)
                message = r.json()["message"]
                assert needle in message and "Error" not in message, (name, message)
            # Passes every check, but its fingerprint is another certificate's: DTLS
            # fails, so it must never take over (make before break).
            pc2, sdp2 = await real_offer()
            attackers.append(pc2)
            other = re.search(r"^a=fingerprint:.*$", sdp, flags=re.M)
            assert other is not None
            forged = re.sub(r"^a=fingerprint:.*$", other.group(0), sdp2, flags=re.M)
            r = await http.post("/api/v1/webrtc/offer", json={"sdp": forged, "type": "offer"})
            assert r.status_code == 200, r.text
            await pc2.setRemoteDescription(RTCSessionDescription(r.json()["sdp"], "answer"))
            forged_id = r.json()["sessionId"]
            await wait_until(
                lambda: f"stream {forged_id} closed" in studio.output(),
                30,
                "the forged stream's end",
            )
            frames_then = sink.frames
            await wait_until(lambda: sink.frames >= frames_then + 30, 10, "30 more frames")
            status = (await http.get("/api/v1/cloud/status")).json()
        assert status["stream_id"] == stream_id and status["streaming"] is True
        assert _longest_gap_s(sink, since) < 1.0
    finally:
        for pc in attackers:
            await pc.close()
        await victim.close()
    assert "never retrieved" not in studio.output()
    assert "Traceback" not in studio.output()


async def test_a_new_stream_takes_over_once_it_connects(services: Services) -> None:
    studio = services.studio(services.worker())
    first_sink, second_sink = FrameSink(keep_rgb=False), FrameSink(keep_rgb=False)
    first = StudioClient(studio.url, NumberedSource(128, 128, fps=30), first_sink)
    second = StudioClient(studio.url, NumberedSource(128, 128, fps=30), second_sink)
    try:
        await first.start({"pipeline": "passthrough"})
        await wait_until(lambda: first_sink.frames >= 10, 30, "the first stream's frames")
        await second.start()
        await wait_until(lambda: second_sink.frames >= 10, 30, "the second stream's frames")
        status = await wait_until(
            lambda: _status_with(studio, stream_id=second.session_id), 10, "the takeover"
        )
        assert status["previous_stream_reason"] == "taken over by a new stream session"
    finally:
        await first.close()
        await second.close()


async def _status_with(studio, **wanted: object) -> dict | None:
    status = await get_status(studio)
    return status if all(status.get(k) == v for k, v in wanted.items()) else None


ODD_WORKER_URLS = [
    " ",
    "http://127.0.0.1:1\nx",
    "http://127.0.0.1:1\x00",
    "http://127.0.0.1:1\u200f",
]


async def test_odd_worker_urls_get_422_and_leave_the_link(services: Services) -> None:
    worker = services.worker()
    studio = services.studio(worker)
    async with httpx.AsyncClient(base_url=studio.url, timeout=10) as http:
        await wait_until(lambda: _status_with(studio, state="connected"), 30, "connected")
        for url in ODD_WORKER_URLS:
            r = await http.post("/api/v1/cloud/connect", json={"worker_url": url})
            assert r.status_code == 422, (url, r.text)
            assert "worker_url" in r.json()["message"], r.json()
            status = (await http.get("/api/v1/cloud/status")).json()
            assert status["worker_url"] == worker.url and status["state"] == "connected"


@pytest.mark.parametrize(
    "url",
    [
        "http://bob:s3cret-pw@127.0.0.1:1",
        "bob:s3cret-pw@127.0.0.1:1",
        "dns+http://bob:s3cret-pw@w:1",
    ],
)
async def test_a_worker_url_with_a_password_gets_422_and_never_echoes_it(
    services: Services, url: str
) -> None:
    """The WebSocket library would send user:password as a Basic header in place of the
    token; and the status, page and logs would show the secret."""
    worker = services.worker()
    studio = services.studio(worker)
    async with httpx.AsyncClient(base_url=studio.url, timeout=10) as http:
        await wait_until(lambda: _status_with(studio, state="connected"), 30, "connected")
        r = await http.post("/api/v1/cloud/connect", json={"worker_url": url})
        assert r.status_code == 422, r.text
        assert "password" in r.json()["message"] and "s3cret" not in r.text
        status = (await http.get("/api/v1/cloud/status")).json()
        assert status["worker_url"] == worker.url and status["state"] == "connected"
        assert "s3cret" not in (await http.get("/api/v1/cloud/status")).text


@pytest.mark.parametrize("host", ["127.0.0.1:{port}@evil.com", "127.0.0.1:abc", "localhost:0"])
async def test_a_host_header_that_is_not_a_host_and_port_gets_403(
    services: Services, host: str
) -> None:
    studio = services.studio()
    async with httpx.AsyncClient(base_url=studio.url, timeout=10) as http:
        r = await http.get("/api/v1/cloud/status", headers={"Host": host.format(port=studio.port)})
    assert r.status_code == 403, r.text


@pytest.mark.parametrize("level", ["debug", "info"])
async def test_tokenless_handshakes_are_cheap_at_every_log_level(
    services: Services, level: str
) -> None:
    worker = services._launch(
        "worker",
        ["worker", "--port", str(port := _free()), "--log-level", level],
        port,
        {"TETHER_WORKER_TOKEN": "test-token"},
        "test-token",
    )
    ws_url = worker.url.replace("http://", "ws://") + "/ws"

    async def knock() -> None:
        try:
            async with websockets.connect(ws_url, open_timeout=10):
                pass
        except (websockets.InvalidStatus, websockets.InvalidHandshake, OSError):
            pass

    async def health_s() -> float:
        async with httpx.AsyncClient(timeout=20) as http:
            started = time.monotonic()
            (await http.get(f"{worker.url}/health")).raise_for_status()
            return time.monotonic() - started

    burst = asyncio.gather(*(knock() for _ in range(300)))
    slowest = max(await asyncio.gather(*(health_s() for _ in range(5))))
    await burst
    slowest = max(slowest, await health_s())
    # What cost seconds was a wire dump of every refused handshake: count the lines.
    lines = len(worker.output().splitlines())
    assert lines < 3 * 300, f"{lines} log lines for 300 token-less handshakes"
    assert slowest < 3.0, f"/health took {slowest:.2f}s during 300 token-less handshakes"


def _free() -> int:
    from tether.tools.processes import free_port

    return free_port()


async def test_the_worker_refuses_a_broken_offer_in_words(services: Services) -> None:
    from websockets.asyncio.client import connect

    worker = services.worker(token="s3cret")
    pc, sdp = await real_offer()
    await pc.close()
    headers = {"Authorization": "Bearer s3cret"}
    async with connect(f"ws://127.0.0.1:{worker.port}/ws", additional_headers=headers) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        for name, (broken, needle) in _broken_offers(sdp).items():
            await ws.send(json.dumps({"type": "offer", "request_id": name, "sdp": broken}))
            reply = json.loads(await ws.recv())
            assert reply["type"] == "error" and reply["request_id"] == name, reply
            assert needle in reply["message"] and "Error" not in reply["message"], reply
    async with httpx.AsyncClient() as http:
        sessions = (await http.get(f"{worker.url}/api/v1/sessions", headers=headers)).json()
    assert not sessions.get("sessions"), sessions
