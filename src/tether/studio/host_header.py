"""The ``Host`` header, parsed strictly: a host and an optional port, nothing else. The
guard answers only to the names it serves, so what is not a host and port is refused
rather than read leniently (``127.0.0.1:80@evil.com`` must not pass as loopback)."""

from __future__ import annotations

import ipaddress
import re


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# RFC 9110 Host: uri-host [ ":" port ]; a name is letters, digits, "-", "." and "_".
_HOST_HEADER = re.compile(
    r"(?:\[(?P<v6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9._-]+))(?::(?P<port>\d{1,5}))?"
)


def split_host(value: str) -> str:
    """The host name of a ``Host`` header value (port and IPv6 brackets removed), or ""
    when the value is not a host and port (``127.0.0.1:80@evil.com``, ``h:abc``)."""
    match = _HOST_HEADER.fullmatch(value.strip().lower())
    if match is None or (match["port"] is not None and not 0 < int(match["port"]) < 65536):
        return ""
    if match["v6"] is not None:
        return match["v6"] if is_ip_literal(match["v6"]) else ""
    return match["name"].rstrip(".")
