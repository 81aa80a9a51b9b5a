"""The doctor inside a running process (the studio's "Test connection"): one run at a
time, in a task this object owns (cancelled and awaited on close), with its progress
readable while it runs: which check is running, the checks done so far, and the
report once there is one."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from tether.doctor.report import Check
from tether.doctor.runner import STAGES, Doctor, DoctorOptions, Progress
from tether.doctor.target import shown_url
from tether.tasks import TaskOwner

logger = logging.getLogger(__name__)


class DoctorRuns:
    def __init__(self) -> None:
        self._tasks = TaskOwner("doctor-runs")
        self._task: asyncio.Task[Any] | None = None
        self.run_id = 0
        self.current: str | None = None  # the check running now
        self.checks: list[Check] = []
        self.result: dict[str, Any] | None = None
        self.error: str | None = None
        self.started_at: float | None = None
        self.worker_url: str | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, options: DoctorOptions) -> bool:
        """Start a run; False (nothing started) while one is running."""
        if self.running:
            return False
        self.run_id += 1
        self.current, self.checks, self.result, self.error = None, [], None, None
        self.started_at, self.worker_url = time.time(), shown_url(options.worker_url)
        self._task = self._tasks.spawn(self._run(options), f"run-{self.run_id}")
        return True

    async def _run(self, options: DoctorOptions) -> None:
        progress = Progress(started=self._started, finished=self._finished)
        try:
            report = await Doctor(options, progress).run()
        except Exception as exc:  # a bug must not leave the page waiting for ever
            logger.exception("doctor run failed")
            self.error = f"the test stopped: {type(exc).__name__}"
        else:
            self.result = report.as_dict()
        finally:
            self.current = None

    def _started(self, name: str) -> None:
        self.current = name

    def _finished(self, check: Check) -> None:
        self.checks.append(check)

    def snapshot(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "running": self.running,
            "worker_url": self.worker_url,
            "started_at": self.started_at,
            "stages": list(STAGES),
            "current": self.current,
            "checks": [c.as_dict() for c in self.checks],
            "result": self.result,
            "error": self.error,
        }

    async def close(self) -> None:
        await self._tasks.close()
