"""`tether drain`: ask a worker to drain, and optionally wait until its studios have left."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from tether.cli.console import console, fail
from tether.timing import DRAIN_POLL_S


def drain(
    worker_url: Annotated[
        str, typer.Option("--worker", envvar="TETHER_DRAIN_WORKER_URL", help="the worker to drain")
    ] = "http://127.0.0.1:8765",
    token: Annotated[str | None, typer.Option(envvar="TETHER_WORKER_TOKEN")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="return once its studios have left")] = False,
    deadline_s: Annotated[float, typer.Option(envvar="TETHER_DRAIN_S", min=0)] = 30.0,
) -> None:
    """Tell a worker to drain: it takes no new sessions and its studios move away.

    For a Kubernetes preStop hook: `tether drain --wait` returns once no session is
    left or at the deadline."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = worker_url.rstrip("/")
    try:
        answer = httpx.post(f"{base}/api/v1/drain", headers=headers, timeout=5)
        if answer.status_code != 200:
            raise fail(f"the worker refused to drain ({answer.status_code}): {answer.text[:200]}")
        sessions = answer.json()["sessions"]
        deadline = time.monotonic() + deadline_s
        while wait and sessions and time.monotonic() < deadline:
            time.sleep(DRAIN_POLL_S)
            sessions = httpx.get(f"{base}/api/v1/load", headers=headers, timeout=5).json()[
                "sessions"
            ]
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach the worker at {base}: {exc}", 1) from None
    console.print(f"draining: {sessions} session(s) left")
