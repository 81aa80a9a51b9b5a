"""The one error the tools raise: something the user can fix, said in one sentence."""

from __future__ import annotations


class RunError(Exception):
    """A problem the user can fix (bad path, unknown pipeline, unreachable worker)."""
