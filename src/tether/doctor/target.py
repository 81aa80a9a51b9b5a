"""The worker URL as the doctor takes it, before any check runs. A URL it cannot use is
named with the URL as the user meant it: a host:port without a scheme gets the URL to
type instead, and a ``user:password@`` in it is refused and never printed (the worker
takes the token; a URL password would replace it in the WebSocket's Authorization)."""

from __future__ import annotations

from dataclasses import dataclass

from tether.client.signaling import SignalingError, host_port, signaling_url

URL_FIX = "give the worker as http://HOST:PORT or https://HOST:PORT"


@dataclass(frozen=True)
class Target:
    url: str  # the signaling URL (ws:// or wss://)
    host: str
    port: int


class BadTarget(Exception):
    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail, self.fix = detail, fix


def _authority(text: str) -> str:
    """The host part of a URL, scheme or not: what may carry ``user:password@``."""
    return (text.partition("://")[2] if "://" in text else text).partition("/")[0]


def shown_url(worker_url: str) -> str:
    """``worker_url`` fit to print: any ``user:password@`` is left out."""
    text = worker_url.strip()
    authority = _authority(text)
    if "@" not in authority:
        return text
    return text.replace(authority, authority.rpartition("@")[2], 1)


def where(host: str, port: int) -> str:
    """host:port, with an IPv6 literal in brackets as a URL writes it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_target(worker_url: str) -> Target:
    shown = shown_url(worker_url)
    if "@" in _authority(worker_url.strip()):
        raise BadTarget(
            "the worker URL has a user name or password in it (not shown): a Tether "
            "worker takes the token, and a password in the URL would replace it",
            f"leave 'user:password@' out of the URL ({shown}) and give the token in "
            "TETHER_WORKER_TOKEN (or --token-file)",
        )
    try:
        url = signaling_url(worker_url)
        host, port = host_port(url)
    except SignalingError:
        if "://" not in shown and shown:
            raise BadTarget(
                f"the worker URL {shown!r} has no scheme",
                f"write it as http://{shown} (or https://{shown} for a worker with TLS)",
            ) from None
        raise BadTarget(f"the worker URL {shown!r} is not a URL Tether can use", URL_FIX) from None
    return Target(url, host, port)
