"""`tether status`: the link state and stats of a running studio, once or live."""

from __future__ import annotations

import time
from typing import Annotated

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.table import Table

from tether.config import StudioSettings
from tether.studio.cloud_status import CloudStatus
from tether.studio.link import LinkState


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


class StatusUnreadable(Exception):
    """The studio answered with something that is not this version's status."""


def parse_status(body: str | bytes) -> CloudStatus:
    """The studio's link status from its JSON (the status endpoint's answer, or one event
    of the event stream): the one place this command parses it, into the same typed model
    the studio builds it from."""
    try:
        return CloudStatus.model_validate_json(body)
    except ValidationError as exc:
        raise StatusUnreadable(
            f"the studio's status does not match this tether's ({exc.error_count()} field(s)"
            " differ): is the studio another version?"
        ) from None


_STYLE = {
    LinkState.CONNECTED: "green",
    LinkState.CONNECTING: "yellow",
    LinkState.RECONNECTING: "yellow",
    LinkState.FAILED: "red",
    LinkState.IDLE: "dim",
    LinkState.CLOSING: "dim",
}


def render(status: CloudStatus) -> Table:
    state = status.state
    table = Table(title=f"Tether link: [{_STYLE.get(state, '')}]{state}[/]", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    stats = status.stats
    rows = [
        ("worker", status.worker_url or "-"),
        ("error", status.error or "-"),
        ("media", "up" if status.webrtc_connected else "down"),
        ("stage", status.connect_stage or "-"),
        ("reconnect attempt", str(status.reconnect_attempt or "-")),
        ("next retry in", _seconds(status.next_retry_in_s)),
        ("recovering", status.recovery or "-"),
        ("parameters", f"v{status.params_version} (worker has v{status.params_acked_version})"),
        ("parameters rejected", status.params_error or "-"),
        ("pipeline", status.pipeline_state.words() if status.pipeline_state else "-"),
        ("pipeline error", status.pipeline_error or "-"),
        ("fallback showing", status.fallback_active or "-"),
        ("last outage", _seconds(status.last_outage_s)),
        ("fps in / out", f"{stats.fps_in} / {stats.fps_out}"),
        ("frames sent / received", f"{stats.frames_sent} / {stats.frames_received}"),
        ("heartbeat RTT", _ms(stats.heartbeat_rtt_ms, 2)),
        ("media round trip / worker", f"{_ms(stats.media_latency_ms)} / {_ms(stats.worker_ms)}"),
        ("pipeline pace", _pace(stats.pipeline_fps, stats.pipeline_ms)),
        ("outages / reconnects", f"{stats.outages} / {stats.reconnects}"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    return table


def one_line(status: CloudStatus) -> str:
    """The link in one line, for logs and pipes: what changed, not the fps."""
    parts = [f"state={status.state}", f"worker={status.worker_url or '-'}"]
    parts.append(f"media={'up' if status.webrtc_connected else 'down'}")
    if status.reconnect_attempt:
        parts.append(f"attempt={status.reconnect_attempt}")
    if status.recovery:
        parts.append(f"recovering={status.recovery}")
    parts.append(f"params=v{status.params_version}/v{status.params_acked_version}")
    for key, value in (
        ("error", status.error),
        ("params_error", status.params_error),
        ("pipeline_error", status.pipeline_error),
        ("pipeline", _pipeline_news(status)),
        ("fallback_active", status.fallback_active),
    ):
        if value:
            parts.append(f"{key}={value!r}" if " " in str(value) else f"{key}={value}")
    return " ".join(parts)


def _pipeline_news(status: CloudStatus) -> str | None:
    """A pipeline that loads (its whole-second time: one line a second at most)."""
    state = status.pipeline_state
    return state.words() if state is not None and state.state == "loading" else None


def _pace(fps: float | None, ms: float | None) -> str:
    """The pipeline's rate and median time per frame, as the worker measures them."""
    if fps is None and ms is None:
        return "-"
    rate = "-" if fps is None else f"{fps:.1f} fps"
    return f"{rate}, {_ms(ms, 1)} a frame (median)"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _ms(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f} ms"


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
    except StatusUnreadable as exc:
        console.print(f"[red]error:[/red] {studio_url}: {exc}")
        return 2
    return 0
