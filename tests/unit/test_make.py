"""A fresh machine: `make up` installs only what running needs; `make test` installs
the system packages the tests need (Chromium, iproute2, iptables, coturn, dnsmasq and,
where `python3 -m venv` does not work, python3-venv) with apt when it is root, else
stops at once with the one command to run. CI only calls `make test`."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALL_PACKAGES = "python3-venv chromium iproute2 iptables coturn dnsmasq-base"
# What the tests need, each by a path where nothing is: missing on any machine.
NOWHERE = " ".join(
    [
        "venv:python3-venv",
        "/nonexistent/chromium:chromium",
        "/nonexistent/ip:iproute2",
        "/nonexistent/tc:iproute2",
        "/nonexistent/iptables:iptables",
        "/nonexistent/turnserver:coturn",
        "/nonexistent/dnsmasq:dnsmasq-base",
    ]
)
# No python whose venv works, and no virtual environment yet.
NO_VENV = ["PYTHON=/bin/false", "VENV=/nonexistent/venv"]


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def bare(*args: str) -> subprocess.CompletedProcess[str]:
    """make on a machine where nothing the tests need is installed."""
    return make(*NO_VENV, f"TEST_NEEDS={NOWHERE}", *args)


def test_make_up_installs_runtime_dependencies_only() -> None:
    result = make("-n", "-B", "up")
    assert result.returncode == 0, result.stderr
    assert "pip install --quiet -e ." in result.stdout
    assert "[test]" not in result.stdout and "playwright" not in result.stdout
    assert "chromium" not in result.stdout and "coturn" not in result.stdout


def test_as_root_make_test_installs_every_missing_package_with_apt() -> None:
    result = bare("system-test", "AS_ROOT=yes", "APT_GET=echo apt-get")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "apt-get update -qq" in lines
    assert f"apt-get install -y -qq {ALL_PACKAGES}" in lines  # iproute2 once


def test_without_root_it_stops_at_once_with_the_one_command() -> None:
    result = bare("system-test", "AS_ROOT=no", "APT_GET=/nonexistent/apt-get")
    assert result.returncode != 0
    assert f"    sudo apt-get install -y {ALL_PACKAGES}" in result.stdout.splitlines()
    assert "update" not in result.stdout  # nothing was tried
    # `make test` checks first, before the virtual environment, lint and the tests
    result = make("-n", "-B", "test", "AS_ROOT=no")
    lines = result.stdout.splitlines()
    assert "sudo apt-get install -y" in lines[0], lines[:3]
    assert not any("ruff" in line or "pytest" in line for line in lines[:2])


def test_nothing_missing_installs_nothing() -> None:
    result = make("system-test", "TEST_NEEDS=sh:dash", "AS_ROOT=yes", "APT_GET=/nonexistent/apt")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_make_up_stops_for_a_missing_venv_module() -> None:
    result = make(*NO_VENV, "up", "AS_ROOT=no")
    assert result.returncode != 0
    assert "    sudo apt-get install -y python3-venv" in result.stdout.splitlines()
    assert "pip install" not in result.stdout  # stopped before anything else


def test_ci_only_calls_make_test() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    commands = [
        line.strip()
        for line in script.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands[-1] in ("make test", "exec make test"), commands
    assert "apt-get" not in script
