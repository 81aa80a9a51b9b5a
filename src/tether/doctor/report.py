"""What ``tether doctor`` finds: one ``Check`` per stage, each ok, warn, fail or skipped,
with its measured numbers and, for anything not ok, one fix; and the ``Report`` that
sums them up in a verdict and an exit code (0 works, 1 works degraded, 2 fails)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"  # not run: a check it depends on did not pass


EXIT_CODES = {Status.OK: 0, Status.WARN: 1, Status.FAIL: 2}


@dataclass
class Check:
    """One stage's finding. ``fix`` is set exactly when the status is warn or fail."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    numbers: dict[str, Any] = field(default_factory=dict)
    took_s: float | None = None

    @classmethod
    def ok(cls, name: str, detail: str, **numbers: Any) -> Check:
        return cls(name, Status.OK, detail, None, numbers)

    @classmethod
    def warn(cls, name: str, detail: str, fix: str, **numbers: Any) -> Check:
        return cls(name, Status.WARN, detail, fix, numbers)

    @classmethod
    def fail(cls, name: str, detail: str, fix: str, **numbers: Any) -> Check:
        return cls(name, Status.FAIL, detail, fix, numbers)

    @classmethod
    def skipped(cls, name: str, reason: str) -> Check:
        return cls(name, Status.SKIPPED, reason)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
        }
        if self.took_s is not None:
            out["took_s"] = round(self.took_s, 2)
        out.update(self.numbers)
        return out

    def line(self) -> str:
        """The check in one line, for a terminal."""
        text = f"[{self.status.value:>7}] {self.name}: {self.detail}"
        return f"{text}\n          fix: {self.fix}" if self.fix else text


@dataclass
class Report:
    worker_url: str
    checks: list[Check] = field(default_factory=list)
    took_s: float = 0.0

    @property
    def status(self) -> Status:
        ran = [c.status for c in self.checks if c.status is not Status.SKIPPED]
        if Status.FAIL in ran:
            return Status.FAIL
        if Status.WARN in ran:
            return Status.WARN
        return Status.OK

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def first(self, status: Status) -> Check | None:
        return next((c for c in self.checks if c.status is status), None)

    def verdict(self) -> str:
        """One line: whether the path works, and what to fix first."""
        worst = self.first(self.status)
        if self.status is Status.OK or worst is None:
            media = next((c for c in self.checks if c.name == "media"), None)
            how = f": {media.detail}" if media and media.status is Status.OK else ""
            return f"OK: the path to {self.worker_url} works{how}"
        word = "FAIL" if self.status is Status.FAIL else "WARN"
        return f"{word}: {worst.name}: {worst.detail}. Fix: {worst.fix}"

    def as_dict(self) -> dict[str, Any]:
        failed = self.first(Status.FAIL) or self.first(Status.WARN)
        return {
            "ok": self.status is not Status.FAIL,
            "status": self.status.value,
            "exit_code": self.exit_code,
            "verdict": self.verdict(),
            "failed_check": failed.name if failed else None,
            "worker_url": self.worker_url,
            "took_s": round(self.took_s, 2),
            "checks": [c.as_dict() for c in self.checks],
        }
