"""The session's merged, latest parameters with a version number."""

from __future__ import annotations

import copy
from typing import Any


class ParameterStore:
    """Every update bumps the version, whether or not the worker is reachable; the
    worker's acknowledgement is tracked beside it, so nothing set is lost unseen."""

    def __init__(self) -> None:
        self.parameters: dict[str, Any] = {}
        self.version = 0
        self.acked_version = 0

    def update(self, changes: dict[str, Any]) -> int:
        """Merge changes (a ``None`` value removes the key) and return the new version."""
        for key, value in changes.items():
            if value is None:
                self.parameters.pop(key, None)
            else:
                self.parameters[key] = value
        self.version += 1
        return self.version

    def ack(self, version: int) -> None:
        self.acked_version = max(self.acked_version, min(version, self.version))

    @property
    def in_sync(self) -> bool:
        return self.acked_version == self.version

    def snapshot(self) -> dict[str, Any]:
        return {
            "parameters": copy.deepcopy(self.parameters),
            "version": self.version,
            "acked_version": self.acked_version,
        }

    def clear(self) -> None:
        self.parameters = {}
        self.version = 0
        self.acked_version = 0
