"""TLS for connections to a worker: ``https``/``wss`` workers are verified against the
system's CAs, or a private CA given by ``TETHER_CA_FILE`` (set once by the CLI)."""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

_ca_file: str | None = None


def use_ca_file(path: str | None) -> None:
    global _ca_file
    _ca_file = path or None


def client_context(url: str) -> ssl.SSLContext | None:
    """A verifying context for a ``wss``/``https`` URL; None for plain ones."""
    if urlsplit(url).scheme not in ("wss", "https"):
        return None
    context = ssl.create_default_context(cafile=_ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
