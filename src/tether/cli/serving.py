"""Serving an app from the command: the uvicorn server (a worker drains on SIGTERM), TLS,
and the worker token read from an option or a file."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import Any

import uvicorn

from tether.cli.console import fail
from tether.cli.log_setup import redact
from tether.cli.options import Serving


class _Server(uvicorn.Server):
    _draining = False

    def handle_exit(self, sig: int, frame: Any) -> None:
        # A worker drains on its first SIGTERM (its studios move first); a second
        # signal, or Ctrl-C, stops at once.
        drain = getattr(self.config.app.state, "request_drain", None)
        if drain is not None and sig == signal.SIGTERM and not self._draining:
            self._draining = True
            drain(lambda: uvicorn.Server.handle_exit(self, sig, frame))
            return
        begin = getattr(self.config.app.state, "begin_shutdown", None)
        if begin is not None:
            begin()
        super().handle_exit(sig, frame)


class TokenError(ValueError):
    """The token given cannot be used; the message says why (never the token)."""


def load_token(token: str | None, token_file: Path | None) -> str | None:
    """The worker token, from ``token_file`` when one is given; masked in every log line.
    Whitespace around it is dropped (a newline from ``$(cat file)`` or an editor): an
    HTTP header cannot carry it, so no worker could ever match it."""
    if token_file is not None:
        try:
            token = token_file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or "not a text file"
            raise TokenError(f"cannot read the token file {token_file}: {why}") from None
        if not token.strip():
            raise TokenError(f"the token file {token_file} is empty")
    if token is not None:
        redact.add(token)
        token = token.strip()
        if not token:
            raise TokenError("the token is empty (only whitespace): set TETHER_WORKER_TOKEN")
    redact.add(token)
    return token


def read_token(token: str | None, token_file: Path | None) -> str | None:
    try:
        return load_token(token, token_file)
    except TokenError as exc:
        raise fail(str(exc)) from None


def serve(app: Any, host: str, port: int, serving: Serving, **extra: Any) -> None:
    """Serve ``app`` until a signal stops it."""
    if bool(serving.ssl_certfile) != bool(serving.ssl_keyfile):
        raise fail("TLS needs both --ssl-certfile and --ssl-keyfile")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=serving.log_level.lower(),
        log_config=None,
        timeout_graceful_shutdown=2,
        ssl_certfile=serving.ssl_certfile,
        ssl_keyfile=serving.ssl_keyfile,
        **extra,
    )
    # uvicorn re-raises Ctrl-C after its graceful shutdown; that is a clean stop.
    with contextlib.suppress(KeyboardInterrupt):
        _Server(config).run()
