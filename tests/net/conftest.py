"""The network lab fixture. Building it needs root (namespaces, iptables, tc): without
root and outside CI these tests skip; in CI (CI=true) a lab that cannot be built fails."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.net.lab import Lab


@pytest.fixture
def lab(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Lab]:
    if os.geteuid() != 0 and os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        pytest.skip("the network lab needs root (namespaces, iptables, tc)")
    with Lab(tmp_path) as built:
        yield built
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            for proc in built.processes:
                print(f"--- {proc.name} log ---\n{proc.output()[-4000:]}")
