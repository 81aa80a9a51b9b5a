"""The rules of a switch between pipelines, apart from the stream that follows them:
whether the running pipeline may keep going while the next one loads, and how a load
is said."""

from __future__ import annotations

from typing import Any

from tether import protocol
from tether.worker.models import ModelLoad


def why_not_keep(
    current: Any, new: Any, failing: bool, new_failed: str | None, budget_mb: int | None
) -> str | None:
    """Why ``current`` cannot run on while ``new`` loads, in words (None: it can)."""
    old, name = current.name, new.name
    if failing:
        return f"{old} failed: nothing to keep running while {name} loads"
    if new_failed is not None:
        return f"{name} failed to load before"
    need_old, need_new = memory_mb(current), memory_mb(new)
    if budget_mb is None or need_old is None or need_new is None:
        return None
    if need_old + need_new > budget_mb:
        return (
            f"{old} ({need_old} MB) and {name} ({need_new} MB) do not fit in "
            f"{budget_mb} MB together: {old} stopped while {name} loads"
        )
    return None


def memory_mb(pipeline: Any) -> int | float | None:
    """The memory a pipeline declares it needs loaded (``memory_mb``), if it does."""
    need = getattr(pipeline, "memory_mb", None)
    if isinstance(need, bool) or not isinstance(need, int | float) or need < 0:
        return None
    return need


def loading_state(
    load: ModelLoad, now: float, running: str | None, note: str | None
) -> protocol.PipelineState:
    return protocol.PipelineState(
        state="loading",
        pipeline=load.name,
        stage=load.stage,
        elapsed_s=round(now - load.started_at, 1),
        progress=load.progress.fraction,
        running=running,
        note=note,
    )
