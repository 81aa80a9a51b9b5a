"""A session whose media never connects (UDP blocked, ICE that cannot complete) must not
hold a worker's slot: it goes when its signaling socket closes, or at the worker's
connect deadline while the socket stays open. A session that did connect keeps its
grace for a resume when its socket drops. Real worker processes, real aiortc peers."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from aiortc import RTCPeerConnection
from websockets.asyncio.client import ClientConnection, connect

from tests.helpers import Service, Services, wait_until
from tether.client.signaling import SignalingClient
from tether.client.worker_peer import WorkerPeer
from tether.timing import WORKER_CONNECT_TIMEOUT_S
from tether.tools.probe import FrameSink, NumberedSource, RecordingSlot, WorkerClient

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A UDP port on loopback that takes every packet and answers none."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


async def dead_end_offer(port: int) -> str:
    """A real aiortc peer's offer whose only candidate leads to ``port``: ICE can never
    complete. The peer itself is closed at once, as a studio whose UDP is blocked."""
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    candidate = f"a=candidate:1 1 udp 2130706431 127.0.0.1 {port} typ host\r\n"
    sdp = re.sub(r"a=candidate:[^\r\n]*\r\n", "", sdp)
    sdp = re.sub(r"(a=end-of-candidates\r\n)", candidate + r"\1", sdp, count=1)
    assert sdp.count("a=candidate:") == 1, sdp
    return sdp


async def readiness(worker: Service) -> tuple[int, dict]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{worker.url}/ready", timeout=5)
    return response.status_code, response.json()


async def sessions(worker: Service) -> list[dict]:
    async with httpx.AsyncClient() as http:
        headers = {"Authorization": f"Bearer {worker.token}"}
        response = await http.get(f"{worker.url}/api/v1/sessions", headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["sessions"]


def logged(worker: Service) -> str:
    """The worker's log with its line wrapping undone."""
    return " ".join(worker.output().split())


async def is_free(worker: Service) -> bool:
    return await readiness(worker) == (200, {"ready": True, "state": "ready"})


async def offer_dead_end(ws: ClientConnection, port: int) -> dict:
    """Send the dead-end offer on an open socket; the worker's answer."""
    assert json.loads(await ws.recv())["type"] == "ready"
    offer = {"type": "offer", "request_id": "o1", "sdp": await dead_end_offer(port)}
    await ws.send(json.dumps(offer))
    answer = json.loads(await ws.recv())
    assert answer["type"] == "answer", answer
    return answer


def open_socket(worker: Service) -> connect:
    headers = {"Authorization": f"Bearer {worker.token}"}
    return connect(f"ws://127.0.0.1:{worker.port}/ws", additional_headers=headers)


async def test_a_session_that_never_connected_frees_its_slot_when_its_socket_closes(
    services: Services, black_hole: int
) -> None:
    worker = services.worker(TETHER_MAX_SESSIONS="1")
    async with open_socket(worker) as ws:
        answer = await offer_dead_end(ws, black_hole)
        assert await readiness(worker) == (503, {"ready": False, "state": "full"})
        listed = await sessions(worker)
        assert [(s["id"], s["state"]) for s in listed] == [(answer["sessionId"], "connecting")]
    closed_at = time.monotonic()
    await wait_until(lambda: is_free(worker), 5, "the slot to be free after the socket closed")
    assert time.monotonic() - closed_at < WORKER_CONNECT_TIMEOUT_S  # not the deadline's doing
    assert await sessions(worker) == []  # dropped, not kept warm
    assert "its socket closed before it connected" in logged(worker)
    # The slot really is free: the next studio streams.
    source = NumberedSource(128, 128, fps=15)
    client = WorkerClient(worker.url, worker.token, source, FrameSink(source=source))
    try:
        await client.start({"pipeline": "passthrough"})
        await wait_until(lambda: client.sink.frames >= 3, 30, "frames for the next studio")
    finally:
        await client.close()


async def test_a_session_that_never_connects_is_dropped_at_the_deadline(
    services: Services, black_hole: int
) -> None:
    worker = services.worker(TETHER_MAX_SESSIONS="1")
    async with open_socket(worker) as ws:
        await offer_dead_end(ws, black_hole)
        answered_at = time.monotonic()
        assert await readiness(worker) == (503, {"ready": False, "state": "full"})
        deadline = WORKER_CONNECT_TIMEOUT_S + 5
        await wait_until(lambda: is_free(worker), deadline, "the slot to be free at the deadline")
        # The deadline's doing (aiortc's ICE alone would give up only after ~55 s).
        assert time.monotonic() - answered_at >= WORKER_CONNECT_TIMEOUT_S - 0.5
        assert await sessions(worker) == []
        assert "peer not connected after" in logged(worker)
        # The socket itself stays usable.
        await ws.send(json.dumps({"type": "ping", "request_id": "p1", "t": 1.0}))
        assert json.loads(await ws.recv()) == {"type": "pong", "request_id": "p1", "t": 1.0}


async def test_a_connected_sessions_socket_drop_keeps_it_for_a_resume(
    services: Services,
) -> None:
    worker = services.worker(TETHER_MAX_SESSIONS="1")
    source = NumberedSource(128, 128, fps=15)
    sink = FrameSink(source=source)
    first = WorkerClient(worker.url, worker.token, source, sink)
    signaling = SignalingClient(worker.url, worker.token)
    source2 = NumberedSource(128, 128, fps=15)
    sink2 = FrameSink(source=source2)
    peer = WorkerPeer(source2, RecordingSlot(sink2))
    try:
        await first.start({"pipeline": "gray"})
        await wait_until(lambda: sink.frames >= 3, 30, "frames before the socket drops")
        assert first.peer is not None and first.peer.resume is not None
        resume = first.peer.resume
        await first.signaling.close()  # the socket alone drops; the media stays up
        frames = sink.frames
        await wait_until(lambda: sink.frames > frames + 5, 10, "frames after the socket dropped")
        listed = await sessions(worker)
        assert [(s["id"], s["state"]) for s in listed] == [(resume.session_id, "active")]
        assert await readiness(worker) == (503, {"ready": False, "state": "full"})
        # Its studio comes back on a new socket and resumes the same session.
        await signaling.connect(10)
        await peer.start(signaling, {"pipeline": "gray"}, 1, resume=resume)
        assert peer.answer is not None and peer.answer.resumed is True
        assert peer.answer.session_id == resume.session_id
        await wait_until(lambda: sink2.frames >= 5, 30, "frames on the resumed session")
        listed = await sessions(worker)
        assert [(s["id"], s["resumes"]) for s in listed] == [(resume.session_id, 1)]
    finally:
        await peer.close()
        await signaling.close()
        await first.close()


async def test_a_resume_that_never_connects_goes_warm_at_the_deadline(
    services: Services, black_hole: int
) -> None:
    worker = services.worker(TETHER_MAX_SESSIONS="1")
    source = NumberedSource(128, 128, fps=15)
    first = WorkerClient(worker.url, worker.token, source, FrameSink(source=source))
    signaling = SignalingClient(worker.url, worker.token)
    again = NumberedSource(128, 128, fps=15)
    sink = FrameSink(source=again)
    peer = WorkerPeer(again, RecordingSlot(sink))
    try:
        await first.start({"pipeline": "gray"})
        await wait_until(lambda: first.sink.frames >= 3, 30, "frames before the resume")
        assert first.peer is not None and first.peer.resume is not None
        resume = first.peer.resume
        async with open_socket(worker) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            offer = {
                "type": "offer",
                "request_id": "r1",
                "sdp": await dead_end_offer(black_hole),
                "resume_session_id": resume.session_id,
                "resume_secret": resume.secret,
            }
            await ws.send(json.dumps(offer))
            answer = json.loads(await ws.recv())
            assert answer["type"] == "answer" and answer["resumed"] is True, answer
            answered_at = time.monotonic()
            assert await readiness(worker) == (503, {"ready": False, "state": "full"})
            deadline = WORKER_CONNECT_TIMEOUT_S + 5
            await wait_until(lambda: is_free(worker), deadline, "the slot to be free")
            assert time.monotonic() - answered_at >= WORKER_CONNECT_TIMEOUT_S - 0.5
            listed = await sessions(worker)
            assert [(s["id"], s["state"]) for s in listed] == [(resume.session_id, "warm")]
        # Kept for its studio: a resume that does connect gets the same session.
        await signaling.connect(10)
        await peer.start(signaling, {"pipeline": "gray"}, 1, resume=resume)
        assert peer.answer is not None and peer.answer.resumed is True
        await wait_until(lambda: sink.frames >= 5, 30, "frames on the resumed session")
    finally:
        await peer.close()
        await signaling.close()
        await first.close()
