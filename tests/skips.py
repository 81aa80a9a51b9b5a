"""A skip is a failure unless it was asked for.

A test that cannot run here says why with ``skip_because(kind, reason)``. The run
counts it as skipped only when that kind of skip was asked for; any other skip (of
another kind, or a plain ``pytest.skip`` or skip mark) fails the test, saying how to
ask. tests/conftest.py applies this to every test's report.

The kinds, and how to ask for them:
- ``net``: the network lab (tests/net), which needs root: ``--skip-net`` or
  ``TETHER_SKIP_NET=1``;
- ``missing``: a system tool the tests need is not installed (Chromium, coturn,
  dnsmasq, iproute2, iptables): ``--skip-missing`` or ``TETHER_SKIP_MISSING=1``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

import pytest

NET = "net"
MISSING = "missing"

# kind -> (pytest option, environment variable) that ask for it
ASK = {
    NET: ("--skip-net", "TETHER_SKIP_NET"),
    MISSING: ("--skip-missing", "TETHER_SKIP_MISSING"),
}


ASKED = pytest.StashKey[set[str]]()  # the kinds asked for in this run (set at configure)


def asked_in(config: pytest.Config) -> set[str]:
    return config.stash[ASKED]


def skip_because(kind: str, reason: str) -> None:
    """Skip this test for a reason of ``kind`` (one of ASK's keys)."""
    assert kind in ASK, kind
    pytest.skip(f"[{kind}] {reason}")


def require_tool(command: str, package: str) -> None:
    """Skip (kind ``missing``) unless ``command`` is installed: a name on PATH or a path."""
    if shutil.which(command) is None:
        skip_because(MISSING, f"{command} is not installed (sudo apt-get install -y {package})")


def asked_for(options: Mapping[str, bool], env: Mapping[str, str] = os.environ) -> set[str]:
    """The kinds of skip asked for, from the pytest options given (option -> set) and the
    environment."""
    asked = set()
    for kind, (option, variable) in ASK.items():
        if options.get(option) or env.get(variable, "").lower() in ("1", "true", "yes"):
            asked.add(kind)
    return asked


def kind_of(reason: str) -> str | None:
    """The kind a skip's reason names (``[net] ...``), if any."""
    reason = reason.removeprefix("Skipped: ")
    if reason.startswith("[") and "]" in reason:
        return reason[1 : reason.index("]")]
    return None


def unasked(reason: str, asked: set[str]) -> str | None:
    """Why a skip with this reason fails the run (None: it was asked for)."""
    reason = reason.removeprefix("Skipped: ")
    kind = kind_of(reason)
    if kind in asked:
        return None
    if kind in ASK:
        option, variable = ASK[kind]
        how = f"fix that, or ask for such skips with {option} or {variable}=1"
    else:
        how = "a test may skip only for a reason of a kind listed in tests/skips.py"
    return f"skipped without being asked: {reason}\n({how})"
