"""The link's states, its typed events, and how a try may fail.

Every event is a ``LinkEvent``; each family has its own class, so a callback
subscribed with ``WorkerLink.on`` gets the fields its kind has: a ``StateEvent``
(``old`` -> ``new``), a ``MoveEvent`` (from one worker to another) or a
``RecoveryEvent`` (a recovery that runs while the link stays up, or inside a try)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal


class LinkState(StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    CLOSING = "closing"


class Recovery(StrEnum):
    """A recovery under way that is not a try of the schedule (``LinkStatus.recovery``)."""

    REOPEN = "reopen"  # the signaling socket fell while media flows: reopening it
    HANDOVER = "handover"  # the worker is draining: moving the stream before it goes
    MOVE = "move"  # a try left its worker (gone, busy, draining) for another


class LinkEventKind(StrEnum):
    """What an app subscribes to. The values are the ``kind`` of the status's events."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    RECONNECTED = "reconnected"
    FAILED = "failed"
    CLOSING = "closing"
    DISCONNECTED = "disconnected"
    MOVED = "moved"
    # Recoveries (see Recovery): subscribable, but kept off the status's timeline.
    REOPENING = "reopening"
    REOPENED = "reopened"
    HANDING_OVER = "handing_over"
    HANDOVER_FAILED = "handover_failed"  # the stream stays until the worker ends it
    MOVING = "moving"


StateKind = Literal[
    LinkEventKind.CONNECTING, LinkEventKind.CONNECTED, LinkEventKind.RECONNECTING,
    LinkEventKind.RECONNECTED, LinkEventKind.FAILED, LinkEventKind.CLOSING,
    LinkEventKind.DISCONNECTED,
]  # fmt: skip
MoveKind = Literal[LinkEventKind.MOVED]
RecoveryKind = Literal[
    LinkEventKind.REOPENING, LinkEventKind.REOPENED, LinkEventKind.HANDING_OVER,
    LinkEventKind.HANDOVER_FAILED, LinkEventKind.MOVING,
]  # fmt: skip

# The kinds the status's event list (and so the API and the page) shows.
EVENT_KINDS = (
    "connecting", "connected", "reconnecting", "reconnected", "failed", "closing",
    "disconnected", "moved",
)  # fmt: skip


@dataclass(frozen=True)
class LinkEvent:
    """One event of the link. ``old`` and ``new`` are the link's state before and after
    (the same for an event that is not a transition)."""

    kind: LinkEventKind
    old: LinkState
    new: LinkState
    reason: str
    at: float = field(default_factory=time.time)
    workers: tuple[str, str] | None = None  # a move: (from, to) worker URLs

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", LinkEventKind(self.kind))  # "moved" is fine too

    @property
    def on_timeline(self) -> bool:
        return self.kind.value in EVENT_KINDS

    def as_dict(self) -> dict[str, Any]:
        if self.workers is not None:  # a move: from and to name workers, not states
            old, new = self.workers
            return {"kind": self.kind.value, "from": old, "to": new, "reason": self.reason,
                    "state": self.new.value, "at": self.at}  # fmt: skip
        return {
            "kind": self.kind.value,
            "from": self.old.value,
            "to": self.new.value,
            "reason": self.reason,
            "at": self.at,
        }


@dataclass(frozen=True)
class StateEvent(LinkEvent):
    """The link changed state: ``old`` -> ``new``."""


@dataclass(frozen=True)
class MoveEvent(LinkEvent):
    """The link moved from one of a fleet's workers to another (``workers``)."""

    @property
    def from_worker(self) -> str:
        return self.workers[0] if self.workers else ""

    @property
    def to_worker(self) -> str:
        return self.workers[1] if self.workers else ""


@dataclass(frozen=True, kw_only=True)
class RecoveryEvent(LinkEvent):
    """A recovery began or ended; ``recovery`` is the one under way after it (None: none)."""

    recovery: Recovery | None = None


class FatalLinkError(Exception):
    """Trying again cannot help (e.g. the worker rejected the token)."""


class TryFailed(Exception):
    """One try failed for a reason outside the studio (network, worker): count it and
    go on. Anything else a try raises is a bug, and is reported as one."""


class MoveElsewhere(Exception):
    """A try's worker cannot serve (gone, busy, draining), but another of the fleet may:
    the supervisor leaves it and goes on in the same try."""

    def __init__(self, worker: str, reason: str) -> None:
        super().__init__(reason)
        self.worker = worker
        self.reason = reason


# What a try may fail with and still be a network matter.
TRY_ERRORS = (TryFailed, OSError, TimeoutError)
