"""Which aiortc versions the adapter was checked against, and the check itself.

The adapter reaches into aiortc's private receiver, sender and encoder; another
minor version may rename any of them, and the patches would then do nothing, or the
wrong thing, without a word. So an app that installs the adapter on an aiortc outside
this range refuses to start, naming the range. ``pyproject.toml`` pins the same range
(a unit test holds the two together)."""

from __future__ import annotations

import aiortc

# The range, as pip writes it, and as the versions it admits: at least LOWEST, below
# ABOVE (major, minor).
SUPPORTED_AIORTC = ">=1.16,<1.17"
LOWEST = (1, 16)
ABOVE = (1, 17)


class UnsupportedAiortc(RuntimeError):
    """The installed aiortc is outside the range the adapter was checked against."""

    def __init__(self, version: str) -> None:
        super().__init__(
            f"Tether's aiortc adapter supports aiortc {SUPPORTED_AIORTC}, but aiortc "
            f"{version} is installed; install a supported one: "
            f"pip install 'aiortc{SUPPORTED_AIORTC}'"
        )
        self.version = version


def _major_minor(version: str) -> tuple[int, int] | None:
    parts = version.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def supported(version: str | None = None) -> bool:
    """Whether aiortc ``version`` (the installed one by default) is in the range."""
    found = _major_minor(aiortc.__version__ if version is None else version)
    return found is not None and LOWEST <= found < ABOVE


def check_aiortc() -> None:
    """Raise ``UnsupportedAiortc`` unless the installed aiortc is in the range."""
    if not supported():
        raise UnsupportedAiortc(aiortc.__version__)
