"""Logging, set up by the command and nowhere else: every line says which process wrote
it, secrets are masked in every line, and polled requests are not logged at info."""

from __future__ import annotations

import logging

from rich.logging import RichHandler

from tether.cli.console import console
from tether.cli.redact import RedactSecrets

# Every secret this process knows is masked in every log line, at every level.
redact = RedactSecrets()

# Polled or per-keystroke requests: an access-log line each is noise (kept at debug).
_QUIET_PATHS = ("/api/v1/parameters", "/api/v1/cloud/status", "/health")


class _QuietAccess(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) == 5 and str(args[2]).split("?")[0] in _QUIET_PATHS:
            return int(args[4]) >= 400 or logging.getLogger("uvicorn.access").isEnabledFor(
                logging.DEBUG
            )
        return True


def _no_wire_dump(record: logging.LogRecord) -> bool:
    """The WebSocket library's debug lines (uvicorn hands it its own logger) are a wire
    dump, 25 lines a handshake: at --log-level debug a burst of token-less handshakes
    would cost seconds of CPU, so they are dropped before anything formats them."""
    return record.levelno > logging.DEBUG or "websockets" not in record.pathname


def setup_logging(level: str, process: str) -> None:
    """Every line says which process wrote it: `tether up` interleaves studio and worker."""
    logging.basicConfig(
        level=level.upper(),
        format=f"{process:<6} %(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)],
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
    logging.getLogger("uvicorn.access").addFilter(_QuietAccess())
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("aiortc").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.INFO)
    logging.getLogger("uvicorn.error").addFilter(_no_wire_dump)
