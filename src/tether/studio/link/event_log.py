"""The link's recent events and who listens to them, typed by kind."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar, overload

from tether.studio.link.events import (
    LinkEvent,
    LinkEventKind,
    MoveEvent,
    MoveKind,
    RecoveryEvent,
    RecoveryKind,
    StateEvent,
    StateKind,
)

logger = logging.getLogger(__name__)

KEEP = 50  # events remembered
Unsubscribe = Callable[[], None]
E = TypeVar("E", bound=LinkEvent)


class EventLog:
    def __init__(self) -> None:
        self.history: list[LinkEvent] = []
        self._listeners: list[Callable[[LinkEvent], None]] = []

    def publish(self, event: LinkEvent) -> None:
        self.history = [*self.history[-(KEEP - 1) :], event]
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # one bad listener must not strand the link
                logger.exception("link event listener failed on %s", event.kind)

    def listen(self, callback: Callable[[LinkEvent], None]) -> Unsubscribe:
        """Call ``callback`` on every event; returns an unsubscribe function."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    @overload
    def on(self, kind: StateKind, callback: Callable[[StateEvent], None]) -> Unsubscribe: ...
    @overload
    def on(self, kind: MoveKind, callback: Callable[[MoveEvent], None]) -> Unsubscribe: ...
    @overload
    def on(self, kind: RecoveryKind, callback: Callable[[RecoveryEvent], None]) -> Unsubscribe: ...
    @overload
    def on(self, kind: LinkEventKind | str, callback: Callable[[LinkEvent], None]) -> Unsubscribe:
        """Any kind, as a plain string too: the callback gets a LinkEvent."""

    def on(self, kind: LinkEventKind | str, callback: Callable[[E], None]) -> Unsubscribe:
        """Call ``callback`` on every event of one kind; returns an unsubscribe function.
        Raises ValueError for a kind that does not exist."""
        try:
            wanted = LinkEventKind(kind)
        except ValueError:
            known = ", ".join(k.value for k in LinkEventKind)
            raise ValueError(f"unknown event {kind!r}; one of {known}") from None

        def listener(event: LinkEvent) -> None:
            if event.kind == wanted:
                callback(event)  # type: ignore[arg-type]  # the kind fixes the class

        return self.listen(listener)
