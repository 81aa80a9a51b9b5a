"""`tether up` as a user runs it: it supervises its worker, checks --pipeline, keeps its
log readable; and the small commands around it (pipelines, status --watch, help)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import wait_for
from tests.integration.test_cli import _children, tether
from tests.integration.test_run_exact import failing_plugin_env
from tether.tools.processes import free_port, wait_healthy

pytestmark = pytest.mark.timeout(120)


def state(url: str) -> str:
    return httpx.get(f"{url}/api/v1/cloud/status").json()["state"]


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port = free_port()
    env = {**os.environ, "TETHER_ICE_HOSTS": "loopback", "COLUMNS": "200"}
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tether", "up", "--port", str(port), "--no-browser",
             "--pipeline", "gray", "--load-timeout-s", "45", "--model-memory-mb", "900"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, 60)
        wait_for(lambda: state(url) == "connected", 20, "the studio connected to its worker")
        yield url, proc, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_up_restarts_its_dead_worker_and_the_link_heals(up) -> None:
    url, proc, log = up
    [first] = _children(proc.pid)
    os.kill(first, signal.SIGKILL)
    reaped = lambda pid: not Path(f"/proc/{pid}").exists()  # noqa: E731
    wait_for(lambda: reaped(first), 10, "the dead worker reaped (no <defunct> left)")
    second = wait_for(lambda: [c for c in _children(proc.pid) if c != first], 15, "a new worker")
    wait_for(lambda: state(url) == "connected", 30, "the link healed by itself")
    # The restarted worker has the model settings `up` was given, as the first had.
    [new] = second
    args = Path(f"/proc/{new}/cmdline").read_bytes().split(b"\0")
    assert b"--load-timeout-s" in args and args[args.index(b"--load-timeout-s") + 1] == b"45"
    assert args[args.index(b"--model-memory-mb") + 1] == b"900"
    # Retry restarts a dead worker at once, without waiting for its backoff.
    os.kill(second[0], signal.SIGKILL)
    wait_for(lambda: reaped(second[0]), 10, "the second worker reaped")
    httpx.post(f"{url}/api/v1/cloud/reconnect")
    wait_for(lambda: state(url) == "connected", 30, "the link healed after Retry")
    text = log.read_text()
    assert "the worker exited" in text and "worker restarted" in text


def test_up_pipeline_is_the_pages_first_choice_and_logs_are_quiet(up) -> None:
    url, proc, log = up
    assert httpx.get(f"{url}/api/v1/pipelines").json()["default"] == "gray"
    for strength in (0.1, 0.2, 0.3):
        httpx.post(f"{url}/api/v1/parameters", json={"pipeline": "tint", "strength": strength})
    httpx.get(f"{url}/api/v1/cloud/status")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0
    text = log.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert not [line for line in lines if "/api/v1/parameters" in line], text
    assert any(" worker " in f" {line} " for line in lines), text
    assert any(" studio " in f" {line} " for line in lines), text
    assert "ERROR" not in text and "Traceback" not in text, text


def test_up_refuses_an_unknown_pipeline_at_start() -> None:
    result = tether("up", "--port", str(free_port()), "--no-browser", "--pipeline", "nope")
    assert result.returncode == 2
    assert "unknown pipeline 'nope'; available:" in result.stderr
    assert "Traceback" not in result.stderr


def test_pipelines_lists_builtins_plugins_and_parameters(tmp_path: Path, monkeypatch) -> None:
    for key, value in failing_plugin_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    result = tether("pipelines")
    assert result.returncode == 0, result.stderr
    for needle in ("tint", "strength", "step 0.05", "explode", "Raises on every frame"):
        assert needle in result.stdout, result.stdout


def test_pipelines_from_a_remote_worker(services) -> None:
    worker = services.worker(token="tok")
    result = tether("pipelines", "--worker", worker.url, "--token", "tok", "--json")
    assert result.returncode == 0, result.stderr
    assert '"name": "edges"' in result.stdout
    result = tether("pipelines", "--worker", worker.url, "--token", "wrong")
    assert result.returncode == 2 and "refused the token" in result.stderr
    assert "pipelines:" in worker.output() and "plugins:" in worker.output()


def test_status_watch_prints_a_line_per_change_when_piped(services) -> None:
    worker = services.worker()
    studio = services.studio(worker)
    env = {**os.environ, "COLUMNS": "200"}
    watch = subprocess.Popen(
        [sys.executable, "-m", "tether", "status", "--studio", studio.url, "--watch"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        first = watch.stdout.readline()
        assert "state=" in first and worker.url in first, first
        httpx.post(f"{studio.url}/api/v1/cloud/disconnect")
        line = first
        while "state=idle" not in line:
            line = watch.stdout.readline()
            assert line, "the watch ended without showing the disconnect"
    finally:
        watch.kill()
        watch.wait()


@pytest.mark.parametrize("command", ["up", "run", "status", "pipelines"])
def test_help_shows_no_type_placeholders(command: str) -> None:
    result = tether(command, "--help")
    assert result.returncode == 0
    assert "<bool>" not in result.stdout and "<list" not in result.stdout, result.stdout
