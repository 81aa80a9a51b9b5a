"""The network lab fixture. Building it needs root (namespaces, iptables, tc): without
root a lab test fails, unless skipping the lab was asked for (--skip-net or
TETHER_SKIP_NET=1); a missing tool fails it too, unless TETHER_SKIP_MISSING=1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.net.lab import Lab
from tests.skips import NET, asked_in, require_tool, skip_because


@pytest.fixture
def lab(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Lab]:
    if NET in asked_in(request.config):
        skip_because(NET, "the network lab: skipping it was asked for")
    if os.geteuid() != 0:
        skip_because(NET, "the network lab needs root (namespaces, iptables, tc)")
    for command, package in (("ip", "iproute2"), ("tc", "iproute2"), ("iptables", "iptables")):
        require_tool(command, package)
    with Lab(tmp_path) as built:
        yield built
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            for proc in built.processes:
                print(f"--- {proc.name} log ---\n{proc.output()[-4000:]}")
