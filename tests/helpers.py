"""Helpers for tests: real worker and studio processes on loopback, and waiting."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tether.rtc.adapter import MediaAdapter
from tether.tools.processes import free_port, wait_healthy

# The tests' own peers (clients standing in for a browser) release frames as soon as
# they are complete, as browsers do, encode with aiortc's own VP8 encoder, and never
# leave this machine: ICE on loopback. An app started in a test installs its own
# adapter for its lifespan, on top of this one.
MediaAdapter(bitrate_floor_bps=None, fitted_encoder=False, ice_hosts="loopback").install()

T = TypeVar("T")


@dataclass
class Service:
    """A tether process started by a test."""

    name: str
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    token: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM, wait_s: float = 10) -> int:
        if self.proc.poll() is None:
            with _suppress_lookup():
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class _suppress_lookup:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is ProcessLookupError


def spawn(
    name: str, args: list[str], port: int, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "TETHER_ICE_HOSTS": "loopback", **(env or {})}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tether", *args],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class Services:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[Service] = []

    def _launch(
        self,
        name: str,
        args: list[str],
        port: int,
        env: dict[str, str],
        token: str | None,
        host: str = "127.0.0.1",
    ) -> Service:
        log = self.tmp_path / f"{name}-{host}-{port}.log"
        proc = spawn(name, args, port, log, env)
        url = f"http://{host}:{port}"
        service = Service(name, url, port, proc, log, token, args, env)
        self.started.append(service)
        wait_healthy(url, proc)
        return service

    def worker(
        self,
        token: str | None = "test-token",
        port: int | None = None,
        host: str = "127.0.0.1",
        **env: str,
    ) -> Service:
        port = port or free_port(host)
        args = ["worker", "--host", host, "--port", str(port), "--log-level", "info"]
        env_vars = {**env, **({"TETHER_WORKER_TOKEN": token} if token else {})}
        return self._launch("worker", args, port, env_vars, token, host)

    def restart(self, service: Service) -> Service:
        """Start the same worker again on the same port (after it was killed)."""
        service.stop(signal.SIGKILL)
        proc = spawn(service.name, service.args, service.port, service.log, service.env)
        service.proc = proc
        wait_healthy(service.url, proc)
        return service

    def studio(
        self, worker: Service | None = None, token: str | None = None, **env: str
    ) -> Service:
        port = free_port()
        args = ["studio", "--port", str(port), "--log-level", "info"]
        if worker is not None:
            args += ["--worker", worker.url]
        tok = token if token is not None else (worker.token if worker else None)
        env_vars = {**env, **({"TETHER_WORKER_TOKEN": tok} if tok else {})}
        return self._launch("studio", args, port, env_vars, tok)

    def close(self) -> None:
        for service in reversed(self.started):
            service.stop()


async def wait_until(
    check: Callable[[], Awaitable[T] | T], deadline_s: float, what: str, every_s: float = 0.05
) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + deadline_s
    last: Any = None
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        last = result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {deadline_s}s waiting for {what} (last: {last!r})"
            )
        await asyncio.sleep(every_s)


def wait_for(check: Callable[[], T], deadline_s: float, what: str, every_s: float = 0.1) -> T:
    """Poll ``check`` (from sync code) until it returns something truthy; fail with
    ``what`` and the last value at the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {deadline_s}s waiting for {what} (last: {result!r})"
            )
        time.sleep(every_s)


async def wait_quiet(
    read: Callable[[], Any], quiet_s: float, deadline_s: float, what: str, every_s: float = 0.05
) -> Any:
    """Wait until ``read()`` has not changed for ``quiet_s`` (what was in flight has
    landed); fail with ``what`` if it still changes at the deadline."""
    deadline = time.monotonic() + deadline_s
    value, since = read(), time.monotonic()
    while time.monotonic() - since < quiet_s:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still changing after {deadline_s}s (now {value!r})")
        await asyncio.sleep(every_s)
        if (now := read()) != value:
            value, since = now, time.monotonic()
    return value


async def get_status(studio: Service) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{studio.url}/api/v1/cloud/status", timeout=5)).json()


def new_token() -> str:
    return secrets.token_urlsafe(12)


def sockets_to(port: int) -> int:
    """Established TCP connections to ``port`` on this host (both ends live here, so
    this counts the clients' sockets: e.g. a studio's signaling sockets to a worker)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def aiortc_globals() -> tuple:
    """Everything the aiortc adapter may set, read straight from aiortc and aioice."""
    import aioice.ice
    import aiortc.codecs.vpx as vpx
    from aiortc import rtcrtpreceiver, rtcrtpsender

    return (
        rtcrtpreceiver.JitterBuffer,
        rtcrtpreceiver.NackGenerator,
        rtcrtpreceiver.RemoteBitrateEstimator,
        rtcrtpsender.get_encoder,
        vpx.MIN_BITRATE,
        vpx.DEFAULT_BITRATE,
        aioice.ice.get_host_addresses,
        aioice.ice.Connection.query_consent,
    )


async def real_offer() -> tuple[Any, str]:
    """A real aiortc offer with one video section, and the peer that made it (the
    caller closes it)."""
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp
