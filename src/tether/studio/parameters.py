"""The session's merged, latest parameters with a version number."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParamSet:
    """One version of the parameters, frozen: what an offer or an update carries is
    exactly what that version was, however the store changes afterwards."""

    version: int
    text: str  # the parameters as canonical JSON: immutable, and cheap to compare

    @property
    def parameters(self) -> dict[str, Any]:
        """A fresh copy each time: nobody can change this version by mutating it."""
        return json.loads(self.text)


class ParameterStore:
    """Every update bumps the version, whether or not the worker is reachable; the
    worker's acknowledgement is tracked beside it, so nothing set is lost unseen.

    Versions never repeat for the life of the store: a worker may still hold a warm
    session at an old version, and only a strictly newer one must replace it."""

    def __init__(self) -> None:
        self._parameters: dict[str, Any] = {}
        self.version = 0
        self.acked_version = 0  # the version the worker says it applied (0: none yet)

    @property
    def parameters(self) -> dict[str, Any]:
        return copy.deepcopy(self._parameters)

    def current(self) -> ParamSet:
        return ParamSet(self.version, json.dumps(self._parameters, sort_keys=True))

    def merged(self, changes: dict[str, Any]) -> dict[str, Any]:
        """What an update would make of the parameters (nothing is stored)."""
        result = copy.deepcopy(self._parameters)
        for key, value in changes.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = copy.deepcopy(value)
        return result

    def update(self, changes: dict[str, Any]) -> ParamSet:
        """Merge changes (a ``None`` value removes the key); a new version."""
        merged = self.merged(changes)
        json.dumps(merged)  # refuse what cannot go on the wire before storing it
        self._parameters = merged
        self.version += 1
        return self.current()

    def ack(self, version: int) -> bool:
        """The worker applied ``version``. A version this store never made (a warm
        session's older numbering, or a newer one from elsewhere) is not ours: ignored."""
        if not 0 < version <= self.version or version < self.acked_version:
            return False
        self.acked_version = version
        return True

    @property
    def in_sync(self) -> bool:
        return self.acked_version == self.version

    def snapshot(self) -> dict[str, Any]:
        return {
            "parameters": self.parameters,
            "version": self.version,
            "acked_version": self.acked_version,
        }

    def clear(self) -> ParamSet:
        """The user stopped the session: empty parameters, at a new version (the worker
        may keep the old set warm; the next stream must not resume it)."""
        self._parameters = {}
        self.version += 1
        return self.current()
