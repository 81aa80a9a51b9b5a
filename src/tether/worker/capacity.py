"""How many sessions a worker takes, and whether it still takes any.

A worker serves at most ``max_sessions`` sessions. A warm session (its peer
connection lost, kept for a resume) still holds its slot: its studio is on the way
back. Once draining, the worker takes no new session at all. Admission is decided
and the slot taken in one synchronous step, so two offers racing for the last slot
get one answer each, never two sessions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Refused(Exception):
    """An offer the worker will not take now; ``code`` is the signaling error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Capacity:
    def __init__(self, max_sessions: int) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.max_sessions = max_sessions
        self.draining = False

    def admit(self, held: int, resuming: bool) -> None:
        """Raise Refused unless a session may start (or resume) now. ``held`` counts
        the slots taken; a resume re-uses its own slot."""
        if self.draining:
            raise Refused("draining", "this worker is draining: it takes no new sessions")
        if not resuming and held >= self.max_sessions:
            raise Refused(
                "busy",
                f"this worker is busy: {held} of {self.max_sessions} sessions in use",
            )

    def ready(self, held: int) -> tuple[bool, str]:
        """Whether a new studio should be sent here, and why not."""
        if self.draining:
            return False, "draining"
        if held >= self.max_sessions:
            return False, "full"
        return True, "ready"

    def load(self, held: int, pipelines: Iterable[str]) -> dict[str, Any]:
        return {
            "sessions": held,
            "max_sessions": self.max_sessions,
            "draining": self.draining,
            "pipelines": sorted(pipelines),
        }
