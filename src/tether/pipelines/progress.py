"""What a pipeline's load step is handed to say how it goes: ``load(progress)``.

The load runs in a worker thread; ``progress`` may be called from there (or from any
thread) as often as the pipeline likes. It keeps only the latest stage and fraction,
and tells the worker of each change through ``on_change`` (which the worker makes hop
onto its event loop): the status shows them within a moment."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

STAGE_MAX_CHARS = 120  # a stage is a few words on the page, not a log


class LoadProgress:
    """Call it: ``progress("loading weights", 0.4)``, ``progress(fraction=0.5)``,
    ``progress("warming up")``. A fraction is 0..1 (clamped); None keeps the last."""

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._stage: str | None = None
        self._fraction: float | None = None
        self.on_change = on_change

    def __call__(self, stage: str | None = None, fraction: float | None = None) -> None:
        with self._lock:
            if stage is not None:
                self._stage = str(stage)[:STAGE_MAX_CHARS] or None
            if fraction is not None and not math.isnan(float(fraction)):
                self._fraction = min(max(float(fraction), 0.0), 1.0)
        if self.on_change is not None:
            self.on_change()

    report = __call__  # the same, by name

    @property
    def stage(self) -> str | None:
        with self._lock:
            return self._stage

    @property
    def fraction(self) -> float | None:
        with self._lock:
            return self._fraction
