"""A worker's session cap, its load and readiness, and its drain on SIGTERM: real
worker processes, real aiortc clients racing for slots."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

from tests.helpers import Service, Services, wait_until
from tether import protocol
from tether.client.signaling import ErrorReply
from tether.tools.probe import FrameSink, NumberedSource, WorkerClient

pytestmark = pytest.mark.timeout(90)


def client_for(worker: Service) -> WorkerClient:
    source = NumberedSource(128, 128, fps=15)
    return WorkerClient(worker.url, worker.token, source, FrameSink(source=source))


async def load(worker: Service) -> dict:
    async with httpx.AsyncClient() as http:
        headers = {"Authorization": f"Bearer {worker.token}"}
        response = await http.get(f"{worker.url}/api/v1/load", headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


async def readiness(worker: Service) -> tuple[int, dict]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{worker.url}/ready", timeout=5)
    return response.status_code, response.json()


async def race(clients: list[WorkerClient]) -> list[BaseException | None]:
    results = await asyncio.gather(
        *(c.start({"pipeline": "passthrough"}) for c in clients), return_exceptions=True
    )
    return [r if isinstance(r, BaseException) else None for r in results]


@pytest.mark.parametrize("cap, racers", [(1, 2), (2, 5)])
async def test_racing_offers_get_exactly_the_free_slots(
    services: Services, cap: int, racers: int
) -> None:
    worker = services.worker(TETHER_MAX_SESSIONS=str(cap))
    assert await readiness(worker) == (200, {"ready": True, "state": "ready"})
    clients = [client_for(worker) for _ in range(racers)]
    for c in clients:
        await c.signaling.connect(10)
    try:
        # Both connected first, so the offers themselves race for the slots.
        outcomes = await asyncio.gather(*(_offer(c) for c in clients), return_exceptions=True)
        won = [o for o in outcomes if o is None]
        refused = [o for o in outcomes if isinstance(o, ErrorReply)]
        assert len(won) == cap, outcomes
        assert len(refused) == racers - cap, outcomes
        assert all(r.code == "busy" and "busy" in str(r) for r in refused)
        info = await load(worker)
        assert info["sessions"] == cap and info["max_sessions"] == cap
        assert info["draining"] is False and "passthrough" in info["pipelines"]
        assert await readiness(worker) == (503, {"ready": False, "state": "full"})
        # The winners really stream.
        winners = [c for c, o in zip(clients, outcomes, strict=True) if o is None]
        await wait_until(
            lambda: all(c.sink.frames >= 5 for c in winners), 30, "frames for every winner"
        )
    finally:
        for c in clients:
            await c.close()


async def _offer(client: WorkerClient) -> None:
    from tether.client.worker_peer import WorkerPeer
    from tether.tools.probe import RecordingSlot

    client.peer = WorkerPeer(client.source, RecordingSlot(client.sink))
    await client.peer.start(client.signaling, {"pipeline": "passthrough"}, 1)


async def test_a_warm_session_gives_its_slot_to_a_new_studio(services: Services) -> None:
    worker = services.worker(TETHER_MAX_SESSIONS="1")
    first, second = client_for(worker), client_for(worker)
    try:
        await first.start({"pipeline": "passthrough"})
        await wait_until(lambda: first.sink.frames >= 3, 30, "frames for the first client")
        await first.peer.pc.close()  # as a network drop would: the session goes warm
        await wait_until(lambda: _session_state(worker, "warm"), 15, "the first session to go warm")
        await second.start({"pipeline": "gray"})
        await wait_until(lambda: second.sink.frames >= 3, 30, "frames for the second client")
        assert (await load(worker))["sessions"] == 1
        sessions = await _sessions(worker)
        assert [s["pipeline"] for s in sessions] == ["gray"], sessions
    finally:
        await first.close()
        await second.close()


async def _sessions(worker: Service) -> list[dict]:
    async with httpx.AsyncClient() as http:
        headers = {"Authorization": f"Bearer {worker.token}"}
        response = await http.get(f"{worker.url}/api/v1/sessions", headers=headers, timeout=5)
    return response.json()["sessions"]


async def _session_state(worker: Service, state: str) -> bool:
    return any(s["state"] == state for s in await _sessions(worker))


async def test_sigterm_drains_then_exits_when_the_studio_has_left(services: Services) -> None:
    worker = services.worker(TETHER_MAX_SESSIONS="2", TETHER_DRAIN_S="30")
    client = client_for(worker)
    notices: list[protocol.Notice] = []
    try:
        await client.start({"pipeline": "passthrough"})
        client.signaling.on_notice = notices.append
        await wait_until(lambda: client.sink.frames >= 3, 30, "frames before the drain")
        worker.proc.send_signal(signal.SIGTERM)
        await wait_until(lambda: notices, 10, "a draining notice")
        assert notices[0] == protocol.Draining(deadline_s=30)
        # Still serving the stream that is there, but taking nobody new.
        frames = client.sink.frames
        await wait_until(lambda: client.sink.frames > frames + 5, 10, "frames while draining")
        assert worker.proc.poll() is None
        assert await readiness(worker) == (503, {"ready": False, "state": "draining"})
        newcomer = client_for(worker)
        try:
            with pytest.raises(ErrorReply) as refused:
                await newcomer.start({"pipeline": "passthrough"})
            assert refused.value.code == "draining"
        finally:
            await newcomer.close()
        left_at = time.monotonic()
        await client.close()  # the studio moved away
        await wait_until(lambda: worker.proc.poll() is not None, 10, "the worker to exit")
        assert time.monotonic() - left_at < 5
        assert worker.proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises it
        assert "drained" in worker.output()
    finally:
        await client.close()


async def test_drain_deadline_ends_a_stream_that_does_not_move(services: Services) -> None:
    worker = services.worker(TETHER_DRAIN_S="1")
    client = client_for(worker)
    try:
        await client.start({"pipeline": "passthrough"})
        await wait_until(lambda: client.sink.frames >= 3, 30, "frames before the drain")
        started = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        await wait_until(lambda: worker.proc.poll() is not None, 15, "the worker to exit")
        assert 0.9 <= time.monotonic() - started < 10
        assert "drain deadline reached" in worker.output()
    finally:
        await client.close()


async def test_drain_endpoint_needs_the_token(services: Services) -> None:
    worker = services.worker()
    async with httpx.AsyncClient() as http:
        assert (await http.post(f"{worker.url}/api/v1/drain")).status_code == 401
        assert (await http.get(f"{worker.url}/api/v1/load")).status_code == 401
        headers = {"Authorization": f"Bearer {worker.token}"}
        answer = await http.post(f"{worker.url}/api/v1/drain", headers=headers)
    assert answer.status_code == 200 and answer.json()["draining"] is True
    assert await readiness(worker) == (503, {"ready": False, "state": "draining"})
    assert worker.proc.poll() is None  # draining is not exiting: SIGTERM does that
