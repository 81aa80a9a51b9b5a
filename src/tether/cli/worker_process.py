"""`tether up`'s worker: a subprocess on a fixed loopback port, watched and restarted
with backoff when it dies, so the studio's link heals by itself."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

from tether.timing import START_DEADLINE_S, WORKER_RESTART_DELAYS_S, WORKER_STABLE_AFTER_S
from tether.tools.errors import RunError
from tether.tools.processes import wait_healthy

logger = logging.getLogger(__name__)


class WorkerProcess:
    def __init__(
        self, port: int, token: str, log_level: str, options: list[str] | None = None
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        # The token goes in the environment, not the command line: ps shows that.
        self._env = {**os.environ, "TETHER_WORKER_TOKEN": token}
        self._cmd = [sys.executable, "-m", "tether", "worker", "--host", "127.0.0.1"]
        self._cmd += ["--port", str(port), "--parent-pid", str(os.getpid())]
        self._cmd += ["--log-level", log_level, *(options or [])]
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, wait_s: float = START_DEADLINE_S) -> None:
        """Start the worker and wait for it to answer; RunError if it does not."""
        self._spawn()
        assert self.proc is not None
        wait_healthy(self.url, self.proc, wait_s)
        self._thread = threading.Thread(target=self._watch, name="worker-watch", daemon=True)
        self._thread.start()

    def restart_now(self) -> None:
        """The user pressed Retry: a worker waiting for its restart starts at once."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        with self._lock:
            proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            self.proc = subprocess.Popen(self._cmd, env=self._env, start_new_session=True)

    def _watch(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            proc = self.proc
            assert proc is not None
            started = time.monotonic()
            code = proc.wait()  # also reaps it: no <defunct> left behind
            if self._stopping.is_set():
                return
            if time.monotonic() - started > WORKER_STABLE_AFTER_S:
                failures = 0
            delay = WORKER_RESTART_DELAYS_S[min(failures, len(WORKER_RESTART_DELAYS_S) - 1)]
            failures += 1
            logger.warning("the worker exited (code %s); restarting it in %.1fs", code, delay)
            self._wake.clear()
            self._wake.wait(delay)
            self._spawn()
            if self._stopping.is_set() or self.proc is None:
                return
            try:
                wait_healthy(self.url, self.proc, START_DEADLINE_S)
            except RunError as exc:
                logger.warning("the restarted worker did not come up: %s", exc)
                continue
            self.restarts += 1
            logger.info("worker restarted (restart %d)", self.restarts)
