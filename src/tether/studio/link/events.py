"""The link's states, its typed events, and how a try may fail."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class LinkState(StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    CLOSING = "closing"


@dataclass(frozen=True)
class LinkEvent:
    """A transition, or a move between a fleet's workers. ``kind`` is what apps
    subscribe to: connecting, connected, reconnecting, reconnected, failed, closing,
    disconnected, moved."""

    kind: str
    old: LinkState
    new: LinkState
    reason: str
    at: float = field(default_factory=time.time)
    workers: tuple[str, str] | None = None  # a move: (from, to) worker URLs

    def as_dict(self) -> dict[str, Any]:
        if self.workers is not None:  # a move: from and to name workers, not states
            old, new = self.workers
            return {"kind": self.kind, "from": old, "to": new, "reason": self.reason,
                    "state": self.new.value, "at": self.at}  # fmt: skip
        return {
            "kind": self.kind,
            "from": self.old.value,
            "to": self.new.value,
            "reason": self.reason,
            "at": self.at,
        }


class FatalLinkError(Exception):
    """Trying again cannot help (e.g. the worker rejected the token)."""


class TryFailed(Exception):
    """One try failed for a reason outside the studio (network, worker): count it and
    go on. Anything else a try raises is a bug, and is reported as one."""


# What a try may fail with and still be a network matter.
TRY_ERRORS = (TryFailed, OSError, TimeoutError)


EVENT_KINDS = (
    "connecting", "connected", "reconnecting", "reconnected", "failed", "closing",
    "disconnected", "moved",
)  # fmt: skip
