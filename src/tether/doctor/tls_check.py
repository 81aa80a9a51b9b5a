"""Check 2, ``tls``: for an ``https``/``wss`` worker, the certificate is valid for the
name, which CA issued it, and how many days it has left. It uses the same verifying
context as the studio's own connections (``TETHER_CA_FILE`` for a private CA)."""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

from tether.client.tls import client_context
from tether.doctor.report import Check

NAME = "tls"
TLS_TIMEOUT_S = 4.0
EXPIRY_WARN_DAYS = 14


def _name(parts: Any) -> str:
    """A certificate's subject or issuer in words (its CN, else its organization)."""
    fields = dict(pair for rdn in parts or () for pair in rdn)
    return str(fields.get("commonName") or fields.get("organizationName") or "?")


async def check_tls(url: str, host: str, port: int, timeout_s: float = TLS_TIMEOUT_S) -> Check:
    try:
        context = client_context(url)
    except (OSError, ssl.SSLError) as exc:  # TETHER_CA_FILE missing, unreadable, not PEM
        why = getattr(exc, "reason", None) or exc.strerror or exc
        return Check.fail(
            NAME,
            f"the CA file set in TETHER_CA_FILE cannot be used: {why}",
            "set TETHER_CA_FILE to the private CA's certificate (a PEM file this user can "
            "read), or unset it for a certificate from a public CA",
        )
    if context is None:
        return Check.skipped(
            NAME,
            "plain http: no TLS to check (the token travels unencrypted; use https for a "
            "worker off this machine or a private network)",
        )
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port, ssl=context)
    except ssl.SSLCertVerificationError as exc:
        return _untrusted(host, exc)
    except ssl.SSLError as exc:
        return Check.fail(
            NAME,
            f"TLS handshake with {host}:{port} failed: {exc.reason or exc}",
            "the port may serve plain http: use http:// in the worker URL, or start the "
            "worker with --ssl-certfile and --ssl-keyfile",
        )
    except (TimeoutError, OSError) as exc:
        return Check.fail(
            NAME,
            f"no TLS handshake with {host}:{port} within {timeout_s:g} s ({exc or 'timeout'})",
            "the port may serve plain http: use http:// in the worker URL",
        )
    took_ms = (time.monotonic() - started) * 1000
    ssl_object = writer.get_extra_info("ssl_object")
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    version = ssl_object.version() if ssl_object is not None else None
    writer.transport.abort()
    if not cert:
        return Check.ok(NAME, f"{version}, certificate verified", handshake_ms=round(took_ms, 1))
    days = int((ssl.cert_time_to_seconds(cert["notAfter"]) - time.time()) // 86400)
    issuer, subject = _name(cert.get("issuer")), _name(cert.get("subject"))
    numbers = {"issuer": issuer, "subject": subject, "days_left": days, "tls": version}
    detail = f"certificate for {subject} valid for {host}, issued by {issuer}, {days} days left"
    if days < EXPIRY_WARN_DAYS:
        return Check.warn(
            NAME,
            detail,
            f"renew the worker's certificate within {days} days (it stops working then)",
            **numbers,
        )
    return Check.ok(NAME, f"{detail} ({version})", handshake_ms=round(took_ms, 1), **numbers)


def _untrusted(host: str, exc: ssl.SSLCertVerificationError) -> Check:
    why = exc.verify_message or str(exc)
    if "hostname" in why.lower() or "ip address mismatch" in why.lower():
        fix = (
            f"the certificate does not name {host}: use the name it was issued for in the "
            "worker URL, or issue a certificate that names this host"
        )
    elif "expired" in why.lower():
        fix = "the worker's certificate has expired: renew it"
    else:
        fix = (
            "the certificate's CA is not trusted here: for a private CA set TETHER_CA_FILE "
            "to its certificate (PEM)"
        )
    return Check.fail(NAME, f"the certificate of {host} is not trusted: {why}", fix)


async def speaks_tls(host: str, port: int, timeout_s: float = TLS_TIMEOUT_S) -> bool:
    """Whether the port answers a TLS handshake (any certificate): an https worker that
    the URL calls http:// answers a WebSocket upgrade with nothing an HTTP client reads."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port, ssl=context)
    except (OSError, ssl.SSLError):  # TimeoutError is an OSError
        return False
    writer.transport.abort()
    return True
