"""What the supervisor drives: one try at a time, and one step of each recovery.

The studio's is ``WorkerConnection`` (connection.py); the unit tests script one in
virtual time. The supervisor decides when each step runs, and how often."""

from __future__ import annotations

from collections.abc import Set
from typing import Protocol


class SupervisedLink(Protocol):
    async def establish(self, attempt: int, avoid: Set[str]) -> None:
        """One try: make the link healthy or raise. Returns only once it is. Raises
        MoveElsewhere when its worker cannot serve but another may; ``avoid``: the
        workers this try already left."""

    def healthy(self) -> bool:
        """Whether the link is healthy right now (a pending try is then abandoned)."""

    async def probe(self) -> bool:
        """A cheap check that the worker answers again (a waiting try then goes now)."""

    async def teardown(self) -> None:
        """Close everything (the user asked to disconnect)."""

    def give_up(self) -> None:
        """The schedule ran out: drop what is left of the media path."""

    def wanted(self) -> bool:
        """Whether the link is needed now (a stream runs): a failed link keeps probing."""

    def probe_every(self, default_s: float) -> float:
        """How often a failed link probes: ``default_s``, or sooner while waiting for a
        busy fleet's slot to free."""

    # --- the steps of recoveries that keep the link up ---
    def media_flows(self) -> bool:
        """A stream's media path is healthy: a fallen socket can be reopened quietly."""

    async def reopen_signaling(self) -> None:
        """One try to reopen the signaling socket to the same worker. Raises as a try."""

    def can_hand_over(self) -> bool:
        """Another worker could take the stream over (the link has a fleet)."""

    async def hand_over(self) -> None:
        """Move the stream to another worker, make-before-break. Raises as a try; the
        stream then stays where it is."""

    async def leave_worker(self, why: str) -> None:
        """Let go of the worker in use: the next step picks another."""
