"""Fuzzing against real processes: schemathesis over the studio's and the worker's
OpenAPI (no 5xx, no answer slower than 2 s), and hypothesis over the worker's
signaling socket (every frame gets a reply or a clean close, and the socket lives on).
Bounded in examples so the whole module stays well under a minute or two."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import Service, Services, real_offer, wait_until

pytestmark = pytest.mark.timeout(240)

TOKEN = "fuzz-token"
EXAMPLES = 25
SLOW_S = 2.0
# Streams forever (SSE), would point the studio at fuzzed hosts, or takes the worker's
# one slot with a test session (the worker's /ready then says full): covered elsewhere
# (test_doctor.py for the doctor's bad bodies, 409 and Origin).
SKIP = {
    ("GET", "/api/v1/cloud/events"),
    ("POST", "/api/v1/cloud/connect"),
    ("POST", "/api/v1/doctor"),
}


def _fuzz_openapi(service: Service, headers: dict[str, str] | None = None) -> int:
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue

        # Valid requests and invalid ones (wrong types, missing fields, bad bodies).
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=cases)
        def check(case) -> None:
            nonlocal calls
            started = time.monotonic()
            response = case.call(base_url=service.url, headers=headers, timeout=10)
            took = time.monotonic() - started
            calls += 1
            where = f"{case.method} {case.formatted_path} {case.body!r:.200}"
            assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
            assert took < SLOW_S, f"{where}: {took:.2f}s"

        check()
    return calls


def test_openapi_fuzz_studio_and_worker(services: Services) -> None:
    worker = services.worker(token=TOKEN)
    studio = services.studio(worker)
    assert _fuzz_openapi(studio) > 50
    assert _fuzz_openapi(worker) > 10
    assert _fuzz_openapi(worker, {"Authorization": f"Bearer {TOKEN}"}) > 10
    # the fuzzing broke nothing: the studio still talks to its worker
    import httpx

    status = httpx.get(f"{studio.url}/api/v1/cloud/status").json()
    assert status["state"] in ("connected", "idle"), status


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
_types = st.sampled_from(["offer", "ping", "icecandidate", "get_ice_servers", "bogus", ""])
_message = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    _json.map(json.dumps),
    st.fixed_dictionaries(
        {"type": _types, "request_id": st.text(max_size=10)},
        optional={
            "sdp": st.text(max_size=200),
            "t": _json,
            "candidate": _json,
            "sessionId": _json,
            "initialParameters": _json,
            "resume_session_id": _json,
            "resume_secret": _json,
            "parameters_version": _json,
        },
    ).map(json.dumps),
)


def _broken_offers(sdp: str) -> st.SearchStrategy[str]:
    """A real offer, broken as a hostile client would: lines dropped, the video section
    repeated, the fingerprint's algorithm or a line's text made odd."""
    lines = sdp.splitlines(keepends=True)
    video = sdp[sdp.index("m=video") :]
    dropped = st.sets(st.integers(0, len(lines) - 1), min_size=1, max_size=4).map(
        lambda gone: "".join(line for i, line in enumerate(lines) if i not in gone)
    )
    repeated = st.integers(1, 9).map(lambda n: sdp + video * n)
    odd = st.sampled_from(["md5", "sha-1", "sha-256\x00", "sha-256\u202e", "SHA-256 ", ""])
    return dropped | repeated | odd.map(lambda alg: sdp.replace("sha-256", alg, 1))


async def _offer_sdp() -> str:
    pc, sdp = await real_offer()
    await pc.close()
    return sdp


async def test_signaling_socket_fuzz(services: Services) -> None:
    worker = services.worker(token=TOKEN)
    url = f"ws://127.0.0.1:{worker.port}/ws"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    frames: list[str | bytes] = []
    offers = st.fixed_dictionaries(
        {
            "type": st.just("offer"),
            "request_id": st.text(max_size=10),
            "sdp": _broken_offers(await _offer_sdp()),
        }
    ).map(json.dumps)

    @settings(max_examples=200, deadline=None, database=None, phases=[Phase.generate])
    @given(_message | offers)
    def collect(message: str | bytes) -> None:
        frames.append(message)

    collect()
    async with connect(url, additional_headers=headers, max_size=2**22) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        for i, frame in enumerate(frames):
            await ws.send(frame)
            probe = {"type": "ping", "request_id": f"probe-{i}", "t": i}
            await ws.send(json.dumps(probe))
            # every frame is answered (error, pong, ice_servers, answer...) before our probe
            replies = []
            while True:
                try:
                    reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
                except ConnectionClosed as exc:  # allowed only as a clean close with a code
                    pytest.fail(f"socket closed on {frame!r:.120}: {exc.rcvd}")
                if reply.get("request_id") == f"probe-{i}":
                    break
                replies.append(reply)
            assert reply["type"] == "pong"
            assert all(isinstance(r, dict) and r.get("type") for r in replies)

    async def healthy() -> bool:
        async with connect(url, additional_headers=headers) as ws:
            return json.loads(await ws.recv())["type"] == "ready"

    await wait_until(healthy, 10, "a fresh socket after the fuzzing")
