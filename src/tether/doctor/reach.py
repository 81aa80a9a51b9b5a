"""Check 1, ``reach``: the worker's host name resolves and its port takes a TCP
connection. Each failure is named (name not found, refused, timed out, unreachable) and
bounded in time: a port whose packets are dropped answers nothing, so the connect has
its own deadline and never hangs."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import threading
import time
from typing import Any

from tether.doctor.report import Check
from tether.doctor.target import where as address_text

NAME = "reach"
RESOLVE_TIMEOUT_S = 3.0
CONNECT_TIMEOUT_S = 3.0
_UNREACHABLE = (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN)


async def resolve(host: str, port: int, timeout_s: float) -> list[str]:
    """The addresses ``host`` resolves to (the system resolver, with a deadline). The
    lookup runs in a daemon thread, not the loop's executor: a DNS server that never
    answers keeps the resolver busy for its own timeouts (10 s and more), and
    ``asyncio.run`` waits for its executor's threads before the verdict is printed."""
    loop = asyncio.get_running_loop()
    found: asyncio.Future[list[Any]] = loop.create_future()

    def settle(outcome: Any, failed: bool) -> None:
        if not found.done():
            found.set_exception(outcome) if failed else found.set_result(outcome)

    def lookup() -> None:
        try:
            outcome, failed = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM), False
        except Exception as exc:  # gaierror, UnicodeError: the caller names each
            outcome, failed = exc, True
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(settle, outcome, failed)

    threading.Thread(target=lookup, name=f"resolve-{host}", daemon=True).start()
    async with asyncio.timeout(timeout_s):
        infos = await found
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def check_reach(
    host: str,
    port: int,
    resolve_timeout_s: float = RESOLVE_TIMEOUT_S,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> Check:
    started = time.monotonic()
    try:
        addresses = await resolve(host, port, resolve_timeout_s)
    except TimeoutError:
        return Check.fail(
            NAME,
            f"resolving {host} took longer than {resolve_timeout_s:g} s",
            "the DNS server does not answer: check the network's DNS settings "
            "(or use the worker's IP address in the URL)",
        )
    except UnicodeError:  # the IDNA codec refuses it: a label over 63 characters, or empty
        return Check.fail(
            NAME,
            f"{host} is not a valid host name (a part between dots is empty or longer "
            "than 63 characters)",
            f"check the spelling of {host} in the worker URL",
        )
    except socket.gaierror:
        return Check.fail(
            NAME,
            f"the host name {host} was not found",
            f"check the spelling of {host} in the worker URL, or that its DNS record exists",
        )
    resolved_ms = (time.monotonic() - started) * 1000
    numbers: dict[str, Any] = {"addresses": addresses, "resolve_ms": round(resolved_ms, 1)}
    started = time.monotonic()
    try:
        async with asyncio.timeout(connect_timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except OSError as exc:  # TimeoutError and ConnectionRefusedError are OSErrors
        return _not_connected(exc, host, port, connect_timeout_s, numbers)
    connect_ms = (time.monotonic() - started) * 1000
    writer.transport.abort()
    return Check.ok(
        NAME,
        f"{host} resolves to {', '.join(addresses)}; TCP port {port} accepts "
        f"in {connect_ms:.0f} ms",
        connect_ms=round(connect_ms, 1),
        **numbers,
    )


def _not_connected(
    exc: OSError, host: str, port: int, timeout_s: float, numbers: dict[str, Any]
) -> Check:
    """Refused, timed out and unreachable, each named, each with its fix."""
    where = address_text(host, port)
    if isinstance(exc, TimeoutError):
        return Check.fail(
            NAME,
            f"TCP connect to {where} timed out after {timeout_s:g} s "
            "(no answer at all: packets to that port are dropped)",
            f"a firewall drops traffic to port {port}: open TCP port {port} to the worker "
            "(cloud security group / firewall rule), and check that the worker runs there",
            **numbers,
        )
    if isinstance(exc, ConnectionRefusedError):
        return Check.fail(
            NAME,
            f"TCP connect to {where} was refused (the host answers, nothing listens on {port})",
            f"start the worker (tether worker --port {port}), or fix the port in the worker "
            "URL; a worker bound to 127.0.0.1 needs --host 0.0.0.0 to be reached from "
            "elsewhere",
            **numbers,
        )
    if exc.errno in _UNREACHABLE:
        return Check.fail(
            NAME,
            f"{where} is unreachable: no route to the host ({exc.strerror})",
            "check this machine's network connection and routes (VPN?) and that the "
            "worker's address is right",
            **numbers,
        )
    return Check.fail(
        NAME,
        f"TCP connect to {where} failed: {exc.strerror or exc}",
        "check the worker URL and this machine's network connection",
        **numbers,
    )
