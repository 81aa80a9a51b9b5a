"""A skip is a failure unless it was asked for (tests/skips.py, applied in
tests/conftest.py): the policy's parts, and a real pytest run under it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests import skips

ROOT = Path(__file__).resolve().parents[2]

SAMPLE = """
import pytest
from tests.skips import MISSING, NET, require_tool, skip_because

def test_net():
    skip_because(NET, "the network lab needs root")

def test_missing():
    require_tool("/nonexistent/tool", "some-package")

def test_plain():
    pytest.skip("just because")

@pytest.mark.skip(reason="marked")
def test_marked():
    pass

@pytest.mark.xfail(reason="known", strict=True)
def test_known_bug():
    assert False

def test_runs():
    pass
"""


def test_asked_for_reads_options_and_environment() -> None:
    assert skips.asked_for({}, {}) == set()
    assert skips.asked_for({"--skip-net": True}, {}) == {skips.NET}
    assert skips.asked_for({}, {"TETHER_SKIP_MISSING": "1"}) == {skips.MISSING}
    env = {"TETHER_SKIP_NET": "true", "TETHER_SKIP_MISSING": "0"}
    assert skips.asked_for({"--skip-missing": False}, env) == {skips.NET}


def test_a_skip_fails_unless_its_kind_was_asked_for() -> None:
    reason = "Skipped: [net] the network lab needs root"
    assert skips.kind_of(reason) == skips.NET
    assert skips.unasked(reason, {skips.NET}) is None
    failure = skips.unasked(reason, {skips.MISSING})
    assert failure is not None and "--skip-net or TETHER_SKIP_NET=1" in failure
    assert "the network lab needs root" in failure
    plain = skips.unasked("Skipped: just because", {skips.NET, skips.MISSING})
    assert plain is not None and "tests/skips.py" in plain


def _run(tmp_path: Path, *args: str, **env: str) -> dict[str, str]:
    """Run SAMPLE under the project's conftest; each test's outcome."""
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(SAMPLE))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_SKIP_")}
    pythonpath = os.pathsep.join([str(ROOT), str(ROOT / "src"), clean.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider", "-c", "/dev/null"]
        + ["--rootdir", str(tmp_path), str(tmp_path), *args],
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": pythonpath, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    outcomes: dict[str, str] = {}
    for line in done.stdout.splitlines():
        if m := re.match(r"(PASSED|FAILED|ERROR|XFAIL) test_sample\.py::(\w+)", line):
            outcomes[m.group(2)] = m.group(1)
        elif m := re.match(r"SKIPPED \[1\] \S+: \[(\w+)\]", line):
            outcomes[{"net": "test_net", "missing": "test_missing"}[m.group(1)]] = "SKIPPED"
    assert len(outcomes) == 6, done.stdout + done.stderr
    return outcomes


def test_a_run_fails_on_every_skip_not_asked_for(tmp_path: Path) -> None:
    outcomes = _run(tmp_path)
    assert outcomes == {
        "test_net": "FAILED",
        "test_missing": "FAILED",
        "test_plain": "FAILED",
        "test_marked": "ERROR",  # refused at setup, where the mark skips
        "test_known_bug": "XFAIL",  # an expected failure is not a skip
        "test_runs": "PASSED",
    }


def test_asked_for_skips_are_skips(tmp_path: Path) -> None:
    outcomes = _run(tmp_path, "--skip-net", TETHER_SKIP_MISSING="1")
    assert outcomes["test_net"] == outcomes["test_missing"] == "SKIPPED"
    assert outcomes["test_plain"] == "FAILED" and outcomes["test_marked"] == "ERROR"
