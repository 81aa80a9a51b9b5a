"""Tether processes that a tool, the CLI or a test starts: a free loopback port for one,
a wait until a started one answers, and a worker inside this process."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import uvicorn

from tether.config import WorkerSettings
from tether.tasks import TaskOwner
from tether.timing import START_DEADLINE_S
from tether.tools.errors import RunError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_healthy(
    url: str, proc: subprocess.Popen[bytes], deadline_s: float = START_DEADLINE_S
) -> None:
    """Block until the tether process at ``url`` answers /health; RunError if it exits
    or stays silent past the deadline."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RunError(f"the process for {url} exited during start-up (code {proc.returncode})")
        try:
            if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RunError(f"nothing answered at {url} within {deadline_s:g}s")


class _EmbeddedServer(uvicorn.Server):
    """Leaves signals to the host program: its Ctrl-C handling cleans up first."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def embedded_worker(tasks: TaskOwner) -> AsyncIterator[tuple[str, str]]:
    """A worker in this process on a free loopback port; yields (url, token)."""
    from tether.worker.app import create_worker_app

    token = secrets.token_urlsafe(16)
    port = free_port()
    settings = WorkerSettings(host="127.0.0.1", port=port, token=token)
    app = create_worker_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        log_config=None,  # the library leaves logging to the CLI
        lifespan="off",  # we close the worker ourselves, also when interrupted
        timeout_graceful_shutdown=1,
    )
    server = _EmbeddedServer(config)
    task = tasks.spawn(server.serve(), "embedded-worker")
    try:
        while not server.started:
            if task.done():
                raise RunError("the embedded worker did not start")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        await asyncio.wait([task], timeout=5)
        await tasks.cancel(task)
        await app.state.worker.close()
