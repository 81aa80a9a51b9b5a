"""`tether status`: the link state and stats of a running studio, once or live."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from tether.config import StudioSettings


def status(
    studio_url: Annotated[str, typer.Option("--studio", envvar="TETHER_STUDIO_URL")] = (
        "http://127.0.0.1:8000"
    ),
    watch: Annotated[bool, typer.Option("--watch", help="follow changes live")] = False,
) -> None:
    """Show the link state and stats of a running studio."""
    token = StudioSettings().studio_token  # TETHER_STUDIO_TOKEN, for a studio that needs it
    secret = token.get_secret_value() if token else None
    raise typer.Exit(show_status(studio_url.rstrip("/"), watch, Console(), secret))


def parse_status(body: str | bytes) -> dict[str, Any]:
    """The studio's link status from its JSON (the status endpoint's answer, or one event
    of the event stream): the one place this command parses it."""
    return json.loads(body)


_STYLE = {
    "connected": "green",
    "connecting": "yellow",
    "reconnecting": "yellow",
    "failed": "red",
    "idle": "dim",
    "closing": "dim",
}


def render(status: dict[str, Any]) -> Table:
    state = status.get("state", "?")
    table = Table(title=f"Tether link: [{_STYLE.get(state, '')}]{state}[/]", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [
        ("worker", status.get("worker_url") or "-"),
        ("error", status.get("error") or "-"),
        ("media", "up" if status.get("webrtc_connected") else "down"),
        ("stage", status.get("connect_stage") or "-"),
        ("reconnect attempt", str(status.get("reconnect_attempt") or "-")),
        ("next retry in", _seconds(status.get("next_retry_in_s"))),
        (
            "parameters",
            f"v{status.get('params_version')} (worker has v{status.get('params_acked_version')})",
        ),
        ("parameters rejected", status.get("params_error") or "-"),
        ("pipeline error", status.get("pipeline_error") or "-"),
        ("fallback showing", status.get("fallback_active") or "-"),
        ("last outage", _seconds(status.get("last_outage_s"))),
    ]
    stats = status.get("stats") or {}
    rows += [
        ("fps in / out", f"{stats.get('fps_in', 0)} / {stats.get('fps_out', 0)}"),
        ("frames sent / received", f"{stats.get('frames_sent')} / {stats.get('frames_received')}"),
        (
            "heartbeat RTT",
            f"{stats['heartbeat_rtt_ms']} ms" if stats.get("heartbeat_rtt_ms") else "-",
        ),
        (
            "media round trip / worker",
            f"{_ms(stats.get('media_latency_ms'))} / {_ms(stats.get('worker_ms'))}",
        ),
        ("outages / reconnects", f"{stats.get('outages')} / {stats.get('reconnects')}"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    return table


def one_line(status: dict[str, Any]) -> str:
    """The link in one line, for logs and pipes: what changed, not the fps."""
    parts = [f"state={status.get('state')}", f"worker={status.get('worker_url') or '-'}"]
    parts.append(f"media={'up' if status.get('webrtc_connected') else 'down'}")
    if status.get("reconnect_attempt"):
        parts.append(f"attempt={status['reconnect_attempt']}")
    parts.append(f"params=v{status.get('params_version')}/v{status.get('params_acked_version')}")
    for key in ("error", "params_error", "pipeline_error", "fallback_active"):
        if status.get(key):
            parts.append(
                f"{key}={status[key]!r}" if " " in str(status[key]) else f"{key}={status[key]}"
            )
    return " ".join(parts)


def _seconds(value: Any) -> str:
    return f"{value:.1f} s" if isinstance(value, int | float) else "-"


def _ms(value: Any) -> str:
    return f"{value:.0f} ms" if isinstance(value, int | float) else "-"


def show_status(studio_url: str, watch: bool, console: Console, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        if not watch:
            response = httpx.get(f"{studio_url}/api/v1/cloud/status", headers=headers, timeout=5)
            response.raise_for_status()
            console.print(render(parse_status(response.content)))
            return 0
        with httpx.stream(
            "GET", f"{studio_url}/api/v1/cloud/events", headers=headers, timeout=None
        ) as response:
            response.raise_for_status()
            statuses = (
                parse_status(x[6:]) for x in response.iter_lines() if x.startswith("data: ")
            )
            if not console.is_terminal:
                # Piped: one line per change, flushed at once.
                last = None
                for status in statuses:
                    if (line := one_line(status)) != last:
                        print(time.strftime("%H:%M:%S"), line, flush=True)
                        last = line
                return 0
            with Live(console=console, auto_refresh=False) as live:
                for status in statuses:
                    live.update(render(status), refresh=True)
    except KeyboardInterrupt:
        return 0
    except httpx.HTTPError as exc:
        console.print(f"[red]error:[/red] cannot read status from {studio_url}: {exc}")
        return 2
    return 0
