"""Waiting on a condition in a benchmark: poll until it holds or a deadline passes."""

from __future__ import annotations

import asyncio
import time
from typing import Any


async def wait_for(check, deadline_s: float, every_s: float = 0.02) -> Any:
    """The first truthy result of ``check()`` (awaited when it is a coroutine) within
    ``deadline_s``, polled every ``every_s``; None when it never held."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(every_s)
    return None
