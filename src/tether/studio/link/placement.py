"""Which worker the link uses: the one URL it was given, or one picked from a fleet.

With a fleet the link stays on its worker while that worker answers (its warm
session resumes there), and moves when the worker is gone for good (the socket is
refused, or not answered within one short try), busy, or draining. A move goes to
the least-loaded worker with room; the offer that follows carries the latest
parameters, so nothing the user set is lost."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tether.client.signaling import ErrorReply, SignalingError
from tether.studio.fleet import Fleet, Resolver, WorkerState, system_resolver
from tether.studio.link.events import TryFailed

# Signaling error codes after which a fleet's link tries another worker.
MOVE_CODES = ("busy", "draining")


class Placement:
    def __init__(self, spec: str, token: str | None, resolver: Resolver = system_resolver) -> None:
        self.fleet = Fleet([spec], token, resolver)
        self.spec = spec
        self.token = token
        self.current: str | None = None  # the worker in use (or last used)
        self.waiting_for_room = False  # the last pick found no worker with room
        self._left: tuple[str, str] | None = None  # (url, why) until the next worker

    @property
    def multi(self) -> bool:
        """More than one possible worker (a list, or a name that may resolve to many)."""
        return not self.fleet.single

    async def choose(self, current: str | None, avoid: Iterable[str] = ()) -> str:
        """The worker to connect to now. Raises TryFailed, in plain words, when none has
        room."""
        avoid = set(avoid)
        if not self.multi:
            return self.fleet.specs[0]
        if current is not None and current not in avoid:
            return current
        picked = await self.fleet.pick(avoid)
        self.waiting_for_room = picked is None
        if picked is None:
            raise TryFailed(self.fleet.summary())
        return picked.url

    def should_move(self, exc: SignalingError, signaling_opened: bool) -> str | None:
        """Why this failure means another worker (None: try this one again later)."""
        if not self.multi:
            return None
        if isinstance(exc, ErrorReply) and exc.code in MOVE_CODES:
            return f"the worker is {exc.code}"
        if not signaling_opened:
            return f"the worker is gone ({exc})"
        return None

    def use(self, url: str) -> tuple[str, str] | None:
        """The link now uses ``url``. Returns (from, why) when that is a move."""
        self.current = self.fleet.active = url
        left, self._left = self._left, None
        return left if left is not None and left[0] != url else None

    def leave(self, why: str) -> None:
        """The link lets go of its worker (gone, busy, draining): the next is another."""
        if self.current is not None:
            self._left = (self.current, why)
        self.current = self.fleet.active = None

    def workers(self) -> tuple[dict[str, Any], ...]:
        """The fleet as last surveyed, the active worker marked, for the status."""
        if not self.multi:
            return ()
        rows = {w.url: w.as_dict() for w in self.fleet.workers}
        active = self.fleet.active
        if active is not None:
            row = rows.setdefault(active, {"url": active, "sessions": None, "max_sessions": None})
            row["state"] = WorkerState.ACTIVE.value
        return tuple(rows.values())
