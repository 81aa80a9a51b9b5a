"""The worker holds up under hostile clients: sessions belong to their studio, bad
frames get an error or a clean close, slow and surplus sockets are shed, no secret in
a URL or a log. All against real worker processes."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import Service, Services, wait_until
from tether.tools.probe import FrameSink, NumberedSource, WorkerClient
from tether.tools.processes import free_port, wait_healthy

pytestmark = pytest.mark.timeout(90)

TOKEN = "worker-secret-token-xyz"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _sessions(worker: Service) -> list[dict]:
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{worker.url}/api/v1/sessions", headers=AUTH, timeout=5)
    return r.json()["sessions"]


async def _request(ws, message: dict) -> dict:
    await ws.send(json.dumps(message))
    while True:
        reply = json.loads(await ws.recv())
        if reply.get("request_id") == message.get("request_id"):
            return reply


async def test_a_session_is_resumed_only_with_its_secret(services: Services) -> None:
    worker = services.worker(token=TOKEN)
    source = NumberedSource(160, 120, fps=20)
    sink = FrameSink(source=source, keep_rgb=False)
    victim = WorkerClient(worker.url, TOKEN, source, sink)
    try:
        await victim.start({"pipeline": "gray"})
        await wait_until(lambda: sink.frames > 10, 20, "the victim's frames")
        assert victim.peer is not None and victim.peer.resume is not None
        resume = victim.peer.resume
        listed = await _sessions(worker)
        assert [s["id"] for s in listed] == [resume.session_id]
        assert resume.secret not in json.dumps(listed)  # the listing gives no takeover
        before = listed[0]

        async with connect(f"ws://127.0.0.1:{worker.port}/ws", additional_headers=AUTH) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            sdp = victim.peer.pc.localDescription.sdp  # a well-formed offer
            attempts = [
                ({"resume_session_id": resume.session_id}, "resume_secret"),
                ({"resume_session_id": resume.session_id, "resume_secret": "guess"}, "resume"),
                # even with the secret, an offer that fails changes nothing
                (
                    {
                        "resume_session_id": resume.session_id,
                        "resume_secret": resume.secret,
                        "sdp": "v=0\r\nm=video abc RTP/AVP 96\r\n",
                    },
                    "SDP",
                ),
                (
                    {
                        "resume_session_id": resume.session_id,
                        "resume_secret": resume.secret,
                        "initialParameters": {"pipeline": "tint", "strength": 5},
                        "parameters_version": 99,
                    },
                    "strength",
                ),
            ]
            for i, (fields, needle) in enumerate(attempts):
                offer = {"type": "offer", "request_id": f"a{i}", "sdp": sdp, **fields}
                reply = await _request(ws, offer)
                assert reply["type"] == "error" and needle in reply["message"], reply
        frames = sink.frames
        await wait_until(lambda: sink.frames > frames + 10, 10, "the victim's frames still flow")
        after = (await _sessions(worker))[0]
        assert after["state"] == "active" and after["resumes"] == 0
        assert after["parameters"] == before["parameters"] == {"pipeline": "gray"}
        assert after["parameters_version"] == before["parameters_version"]
    finally:
        await victim.close()


async def test_malformed_frames_get_an_error_or_a_clean_close(services: Services) -> None:
    worker = services.worker(token=TOKEN)
    url = f"ws://127.0.0.1:{worker.port}/ws"
    async with connect(url, additional_headers=AUTH, max_size=2**22) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        for frame in [
            b"\xff\xfe\x00",
            "[" * 100_000 + "]" * 100_000,
            '{"type": "ping", "request_id": "n", "t": ' + "1" * 5000 + "}",
            '{"type": "ping", "request_id": "deep", "t": ' + "[" * 40 + "]" * 40 + "}",
            json.dumps({"type": ["not", "a", "string"]}),
            json.dumps({"type": "offer", "request_id": "big", "sdp": "x" * 100_000}),
            json.dumps({"type": "icecandidate", "request_id": "c", "candidate": {"candidate": 5}}),
            "",
        ]:
            await ws.send(frame)
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply["type"] == "error" and reply["message"], (frame[:40], reply)
        pong = await _request(ws, {"type": "ping", "request_id": "alive", "t": 1})
        assert pong["type"] == "pong"
        # past the message size limit: a clean close with a code, not a dropped socket
        await ws.send("x" * (300 * 1024))
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{worker.url}/health")).status_code == 200


def _slow_sockets(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        socks.append(s)
    return socks


def _refused_503(socks: list[socket.socket]) -> int:
    """How many of ``socks`` hold a 503 answer already (peeked: nothing is consumed)."""
    count = 0
    for sock in socks:
        sock.settimeout(0)  # look, do not wait
        try:
            head = sock.recv(16, socket.MSG_PEEK)
        except (BlockingIOError, ConnectionResetError):
            continue
        count += head.startswith(b"HTTP/1.1 503")
    return count


def _answer(sock: socket.socket, wait_s: float = 5.0) -> bytes:
    sock.settimeout(wait_s)
    try:
        return sock.recv(200)
    except (TimeoutError, BlockingIOError, ConnectionResetError):
        return b""


async def test_slow_headers_are_cut_off(services: Services) -> None:
    worker = services.worker(token=TOKEN, TETHER_HEADER_TIMEOUT_S="1")
    socks = _slow_sockets(worker.port, 100)
    try:
        async with httpx.AsyncClient() as http:  # the worker answers others meanwhile
            assert (await http.get(f"{worker.url}/health", timeout=2)).status_code == 200
        answers = await asyncio.to_thread(lambda: [_answer(s) for s in socks])
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[:3]
    finally:
        for s in socks:
            s.close()


def _spawn_limited(tmp_path: Path, nofile: tuple[int, int], **env: str) -> Service:
    """A worker started with a given fd limit (soft, hard)."""
    port = free_port()
    log = tmp_path / f"worker-{port}.log"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tether", "worker", "--port", str(port)],
            env={**os.environ, "TETHER_WORKER_TOKEN": TOKEN, "TETHER_ICE_HOSTS": "loopback", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=limit,
            start_new_session=True,
        )
    service = Service("worker", f"http://127.0.0.1:{port}", port, proc, log, TOKEN)
    wait_healthy(service.url, proc)
    return service


def _soft_fd_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no fd limit line")


async def test_fd_limit_raised_and_surplus_sockets_get_503(
    services: Services, tmp_path: Path
) -> None:
    raised = _spawn_limited(tmp_path, (256, 4096))
    services.started.append(raised)
    assert _soft_fd_limit(raised.pid) == 4096
    # A hard limit of 256 cannot be raised: the cap keeps the worker below it.
    worker = _spawn_limited(tmp_path, (256, 256))
    services.started.append(worker)
    socks = await asyncio.to_thread(_slow_sockets, worker.port, 300)
    try:
        # Refusals are written at accept; the cap is 256 - reserve - backlog.
        refused = await wait_until(
            lambda: (n := _refused_503(socks)) >= 100 and n, 10, "100 sockets refused with 503"
        )
        assert refused >= 100
        assert worker.proc.poll() is None
        assert "Too many open files" not in worker.output()
    finally:
        for s in socks:
            s.close()

    # once the flood is gone, the worker serves a studio as before
    async def usable() -> bool:
        try:
            async with connect(f"ws://127.0.0.1:{worker.port}/ws", additional_headers=AUTH) as ws:
                return json.loads(await ws.recv())["type"] == "ready"
        except (OSError, ConnectionClosed, Exception):
            return False

    await wait_until(usable, 15, "signaling works after the flood")


async def test_no_secret_in_any_log_at_debug_level(services: Services, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    worker = services._launch(
        "worker",
        ["worker", "--port", str(port), "--log-level", "debug", "--token-file", str(token_file)],
        port,
        {},
        TOKEN,
    )
    assert TOKEN not in " ".join(worker.proc.args)  # ps shows nothing
    studio = services.studio(worker, token=TOKEN)
    studio_port = free_port()
    studio_debug = services._launch(
        "studio",
        ["studio", "--port", str(studio_port), "--log-level", "debug", "--worker", worker.url],
        studio_port,
        {"TETHER_WORKER_TOKEN": TOKEN, "TETHER_STUDIO_TOKEN": "studio-secret-abc"},
        TOKEN,
    )
    async with httpx.AsyncClient() as http:

        async def connected() -> bool:
            r = await http.get(
                f"{studio_debug.url}/api/v1/cloud/status",
                headers={"Authorization": "Bearer studio-secret-abc"},
            )
            return r.json()["state"] == "connected"

        await wait_until(connected, 20, "debug studio connected")
        await http.get(f"{studio_debug.url}/?token=studio-secret-abc")
        await http.get(f"{studio_debug.url}/?token=wrong-studio-guess")
        await http.get(f"{worker.url}/api/v1/sessions", headers={"Authorization": "Bearer nope1"})
    # The access log has one line per socket, written once its handshake is done.
    ended = worker.output().count('"WebSocket /ws')
    for url in (f"ws://127.0.0.1:{port}/ws?token={TOKEN}", f"ws://127.0.0.1:{port}/ws"):
        for headers in ({}, {"Authorization": "Bearer wrong-guess-123"}, AUTH):
            try:
                async with connect(url, additional_headers=headers) as ws:
                    await ws.recv()
            except ConnectionClosed:
                pass
    await wait_until(
        lambda: worker.output().count('"WebSocket /ws') >= ended + 6, 10, "the six sockets logged"
    )
    logs = worker.output() + studio.output() + studio_debug.output()
    assert "Bearer" in logs or "Authorization" in logs or "token" in logs  # logging was on
    for secret in (TOKEN, "studio-secret-abc", "wrong-studio-guess", "wrong-guess-123", "nope1"):
        assert secret not in logs, secret
