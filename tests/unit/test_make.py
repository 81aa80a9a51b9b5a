"""A fresh machine: `make up` installs only what running needs; `make test` installs
Chromium itself when it can, else stops at once with the one command to run."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_make_up_installs_runtime_dependencies_only() -> None:
    result = make("-n", "-B", "up")
    assert result.returncode == 0, result.stderr
    assert "pip install --quiet -e ." in result.stdout
    assert "[test]" not in result.stdout and "playwright" not in result.stdout


def test_make_test_installs_chromium_as_root() -> None:
    result = make("-n", "chromium", "CHROMIUM=/nonexistent/chromium", "AS_ROOT=yes")
    assert "apt-get install -y -qq chromium" in result.stdout


def test_make_test_stops_at_once_with_the_command_when_it_cannot_install() -> None:
    result = make("chromium", "CHROMIUM=/nonexistent/chromium", "AS_ROOT=no")
    assert result.returncode != 0
    assert "sudo apt-get install -y chromium" in result.stdout
    result = make("-n", "test", "CHROMIUM=/nonexistent/chromium", "AS_ROOT=no")
    lines = result.stdout.splitlines()
    # the Chromium check comes first, before lint and the slow tests
    assert any("apt-get" in line for line in lines[:3]), lines[:5]
