"""The stand-in models (slow, slow_load, staged_load, fail_load, trail) are a real
plugin package now, examples/tether-testmodels, installed by `make test` and found by
entry point. ``plugin_env`` stays for callers written before: it checks the package
is installed and adds nothing to the environment."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

PACKAGE = "tether-testmodels"


def require_testmodels() -> None:
    try:
        version(PACKAGE)
    except PackageNotFoundError:
        pytest.fail(f"{PACKAGE} is not installed: pip install -e examples/tether-testmodels")


def plugin_env(directory: Path | None = None) -> dict[str, str]:
    """Environment for a worker process that finds the stand-in models: its own."""
    require_testmodels()
    return {}
