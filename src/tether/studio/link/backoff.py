"""The reconnect schedule: a pure object, unit-tested on its own."""

from __future__ import annotations

import random
from collections.abc import Sequence


class BackoffSchedule:
    """Delays before each try of one outage episode, with a little jitter.

    Default: an immediate try, then 1 s, 2 s, 4 s: 4 tries in all."""

    def __init__(
        self,
        delays: Sequence[float] = (0.0, 1.0, 2.0, 4.0),
        jitter: float = 0.1,
        rng: random.Random | None = None,
    ) -> None:
        if not delays or any(d < 0 for d in delays):
            raise ValueError("delays must be one or more non-negative numbers")
        if not 0 <= jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")
        self.delays = tuple(float(d) for d in delays)
        self.jitter = jitter
        self._rng = rng or random.Random()

    @property
    def tries(self) -> int:
        return len(self.delays)

    def delay(self, index: int) -> float:
        """The wait before try ``index`` (0-based). An immediate try stays immediate."""
        if not 0 <= index < self.tries:
            raise IndexError(f"try {index + 1} is past the schedule's {self.tries} tries")
        base = self.delays[index]
        return base * (1 + self._rng.uniform(-self.jitter, self.jitter))
