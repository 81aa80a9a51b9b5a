"""The workers a studio knows, and which one to use next.

A studio is given one or more worker addresses: plain URLs, or ``dns+http://NAME:PORT``
(``dns+https``), meaning every address NAME resolves to, resolved again on each pick:
the shape of a Kubernetes headless Service. A pick asks every candidate for its load
(``GET /api/v1/load``, short timeout, all at once) and takes the least-loaded one that
answers and has room. The fleet shares one token; it goes only to these workers."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import httpx

from tether.client.signaling import SignalingError, signaling_url
from tether.timing import FLEET_LOAD_TIMEOUT_S

Resolver = Callable[[str, int], Awaitable[list[str]]]


class WorkerState(StrEnum):
    READY = "ready"
    BUSY = "busy"
    DRAINING = "draining"
    UNREACHABLE = "unreachable"
    ACTIVE = "active"


@dataclass(frozen=True)
class WorkerInfo:
    url: str
    state: WorkerState
    sessions: int | None = None
    max_sessions: int | None = None
    error: str | None = None

    @property
    def load(self) -> float:
        if not self.max_sessions:
            return 1.0
        return (self.sessions or 0) / self.max_sessions

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "state": self.state.value,
            "sessions": self.sessions,
            "max_sessions": self.max_sessions,
            "error": self.error,
        }


def parse_worker_specs(specs: Iterable[str]) -> list[str]:
    """Split comma-separated entries and check each; raises ValueError naming the bad one."""
    out: list[str] = []
    for spec in specs:
        if odd := _odd_character(spec):
            raise ValueError(f"a worker URL may not contain {odd}")
        for entry in (e.strip() for e in spec.split(",")):
            if not entry:
                continue
            if _has_userinfo(entry):
                # Not echoed: it is a secret. The WebSocket library would also send
                # it as a Basic header in place of the token.
                raise ValueError(
                    "a worker URL may not carry a user name or password (not shown); "
                    "give the worker's token with TETHER_WORKER_TOKEN or the token field"
                )
            if entry.startswith(("dns+http://", "dns+https://")):
                parts = urlsplit(entry.removeprefix("dns+"))
                if not parts.hostname or parts.port is None:
                    raise ValueError(f"{entry!r}: a dns+ worker address needs a name and a port")
            else:
                try:
                    signaling_url(entry)
                except SignalingError as exc:
                    raise ValueError(str(exc)) from None
            if entry not in out:
                out.append(entry)
    return out


def _has_userinfo(entry: str) -> bool:
    """Whether a URL (or a scheme-less host:port) carries ``user:password@``."""
    rest = entry.split("://", 1)[-1]
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return "@" in authority


def _odd_character(text: str) -> str | None:
    """A control, format (bidi marks, zero-width) or separator character other than a
    space: never part of a URL, and a way to make one read as another."""
    for char in text:
        if char != " " and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Zs"):
            return f"the character U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')})"
    return None


async def system_resolver(name: str, port: int) -> list[str]:
    """Every address ``name`` resolves to now (the system's resolver, no cache of ours)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    seen: list[str] = []
    for *_, sockaddr in infos:
        if sockaddr[0] not in seen:
            seen.append(sockaddr[0])
    return seen


def _url_for(scheme: str, address: str, port: int) -> str:
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    return f"{scheme}://{host}:{port}"


class Fleet:
    def __init__(
        self,
        specs: Iterable[str],
        token: str | None,
        resolver: Resolver = system_resolver,
        verify: Any = True,
    ) -> None:
        self.specs = parse_worker_specs(specs)
        self._token = token
        self._resolver = resolver
        self._verify = verify
        self.workers: list[WorkerInfo] = []  # as last surveyed, for the status
        self.active: str | None = None

    @property
    def single(self) -> bool:
        """One plain URL: nothing to pick from."""
        return len(self.specs) == 1 and not self.specs[0].startswith("dns+")

    def knows(self, url: str) -> bool:
        """Whether ``url`` is one of this fleet's workers (the token may go there)."""
        return any(w.url == url for w in self.workers) or url in self.specs

    async def candidates(self) -> list[str]:
        urls: list[str] = []
        for spec in self.specs:
            if not spec.startswith("dns+"):
                urls.append(spec)
                continue
            parts = urlsplit(spec.removeprefix("dns+"))
            try:
                addresses = await self._resolver(parts.hostname or "", parts.port or 0)
            except (OSError, UnicodeError):
                continue  # the name resolves to nothing right now: no candidates from it
            urls += [_url_for(parts.scheme, a, parts.port or 0) for a in addresses]
        return list(dict.fromkeys(urls))

    async def survey(self) -> list[WorkerInfo]:
        urls = await self.candidates()
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        async with httpx.AsyncClient(timeout=FLEET_LOAD_TIMEOUT_S, verify=self._verify) as http:
            infos = await asyncio.gather(*(self._ask(http, url, headers) for url in urls))
        self.workers = list(infos)
        return self.workers

    async def _ask(self, http: httpx.AsyncClient, url: str, headers: dict) -> WorkerInfo:
        base = url.rstrip("/")
        try:
            reply = await http.get(f"{base}/api/v1/load", headers=headers)
        except httpx.HTTPError as exc:
            return WorkerInfo(url, WorkerState.UNREACHABLE, error=type(exc).__name__)
        if reply.status_code != 200:
            return WorkerInfo(url, WorkerState.UNREACHABLE, error=f"HTTP {reply.status_code}")
        try:
            body = reply.json()
            sessions, cap = int(body["sessions"]), int(body["max_sessions"])
            draining = bool(body.get("draining"))
        except (ValueError, KeyError, TypeError):
            return WorkerInfo(url, WorkerState.UNREACHABLE, error="not a Tether worker")
        if url == self.active:
            state = WorkerState.ACTIVE
        elif draining:
            state = WorkerState.DRAINING
        elif sessions >= cap:
            state = WorkerState.BUSY
        else:
            state = WorkerState.READY
        return WorkerInfo(url, state, sessions, cap)

    async def pick(self, avoid: Iterable[str] = ()) -> WorkerInfo | None:
        """The least-loaded worker with room, not in ``avoid``; None when there is none."""
        avoid = set(avoid)
        ready = [w for w in await self.survey() if w.state == WorkerState.READY]
        ready = [w for w in ready if w.url not in avoid]
        if not ready:
            return None
        best = min(w.load for w in ready)
        return random.choice([w for w in ready if w.load == best])

    def summary(self) -> str:
        """Why nothing could be picked, in plain words."""
        if not self.workers:
            return "no worker found at " + ", ".join(self.specs)
        states = {w.state for w in self.workers}
        if states <= {WorkerState.BUSY, WorkerState.ACTIVE}:
            return "all workers are busy"
        if states <= {WorkerState.UNREACHABLE}:
            return "no worker answers"
        counts = {s: sum(1 for w in self.workers if w.state == s) for s in states}
        return "no worker has room: " + ", ".join(f"{n} {s.value}" for s, n in counts.items())
