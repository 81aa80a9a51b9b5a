"""The studio's link to the worker. Outside this package, use only what is here."""

from tether.studio.link.events import (
    LinkEvent,
    LinkEventKind,
    LinkState,
    MoveEvent,
    Recovery,
    RecoveryEvent,
    StateEvent,
)
from tether.studio.link.facade import NotConnected, WorkerLink
from tether.studio.link.status import LinkStatus
from tether.timing import FALLBACK_AFTER_S, MEDIA_STALL_S

__all__ = [
    "FALLBACK_AFTER_S", "MEDIA_STALL_S", "LinkEvent", "LinkEventKind", "LinkState",
    "LinkStatus", "MoveEvent", "NotConnected", "Recovery", "RecoveryEvent", "StateEvent",
    "WorkerLink",
]  # fmt: skip
