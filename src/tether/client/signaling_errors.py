"""What can go wrong on the studio's signaling socket, as exceptions, and in words a
user can act on."""

from __future__ import annotations

import errno
import socket
import ssl
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from tether import protocol


class SignalingError(Exception):
    """The worker could not be reached, refused us, or answered with an error."""


class AuthError(SignalingError):
    pass


class NotAWorkerError(SignalingError):
    """Something answers at that URL, but it is not a Tether worker: retrying won't help."""


class ErrorReply(SignalingError):
    """The worker answered a request with an ``error``; ``code`` says which (e.g. ``busy``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"worker: {message}")
        self.code = code


def describe_close(code: int | None, reason: str) -> str:
    if code is None:
        return "signaling socket dropped (no close frame: network or worker gone)"
    if code == protocol.AUTH_FAILED_CLOSE_CODE:
        return f"the worker rejected the token ({reason or 'authentication failed'})"
    return f"signaling socket closed (code {code}{': ' + reason if reason else ''})"


def open_failure(exc: Exception, url: str, waited_s: float) -> SignalingError:
    """Why opening the socket to ``url`` (and hearing its ``ready``) failed."""
    where = urlsplit(url).netloc
    if isinstance(exc, TimeoutError):
        return SignalingError(f"no answer from the worker at {where} within {waited_s:g}s")
    if isinstance(exc, ConnectionClosed):
        rcvd = exc.rcvd
        reason = describe_close(rcvd.code if rcvd else None, rcvd.reason if rcvd else "")
        cls = AuthError if rcvd and rcvd.code == protocol.AUTH_FAILED_CLOSE_CODE else None
        return (cls or SignalingError)(reason)
    # An HTTP server that refuses the WebSocket (404, 400...) is not a worker; a 5xx may
    # be a proxy in front of a worker that is restarting.
    not_a_worker = isinstance(exc, InvalidStatus) and exc.response.status_code < 500
    cls = NotAWorkerError if not_a_worker else SignalingError
    return cls(f"cannot reach the worker at {where}: {plain(exc)}")


def expect_ready(url: str, raw: str | bytes) -> protocol.Ready:
    """The socket's first message, which must be the worker's ``ready``."""
    try:
        message = protocol.parse_worker_message(raw)
    except protocol.ProtocolError as exc:
        raise NotAWorkerError(f"{url} is not a Tether worker ({exc})") from None
    if not isinstance(message, protocol.Ready):
        raise NotAWorkerError(
            f"{url} is not a Tether worker: it sent {message.type!r}, not 'ready'"
        )
    return message


def plain(exc: BaseException) -> str:
    """An OS or handshake error in words a user can act on."""
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "connection refused (is the worker running on that port?)"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "no route to the host (network down?)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS: the worker's certificate is not trusted ({exc.verify_message}); "
            "for a private CA set TETHER_CA_FILE"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or _short(exc)}"
    if isinstance(exc, InvalidHandshake):
        return f"not a Tether worker, or it refused the WebSocket ({_short(exc)})"
    return _short(exc)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
