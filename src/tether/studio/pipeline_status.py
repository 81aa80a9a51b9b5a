"""The worker's pipeline as CloudStatus shows it: which pipeline runs, which loads,
how far, and what failed, in words (from the worker's ``PipelineState``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from tether.protocol import PipelineState


class _Frozen(BaseModel):
    # As CloudStatus's own: unknown keys refused, the schema says exactly what is sent.
    model_config = ConfigDict(
        frozen=True, extra="forbid", serialize_by_alias=True, validate_by_name=True
    )


class PipelineStatus(_Frozen):
    """The worker's pipeline, as the worker says. ``name`` is the one the stream chose:
    ``loading`` (``stage``: what the load is doing; ``elapsed_s``: its time so far;
    ``progress``: 0..1 where the pipeline says), ``ready`` (``elapsed_s``: how long it
    loaded, if it did), or failing (``error``, in words). ``running`` names the pipeline
    whose frames come back now (the previous one while the chosen one loads; None: none,
    the fallback shows) and ``loading`` the one loading (None: none); ``note`` says why
    the previous one was not kept running during the load."""

    state: Literal["loading", "ready", "error"]
    name: str
    stage: str | None
    elapsed_s: float | None
    progress: float | None = None
    running: str | None = None
    loading: str | None = None
    error: str | None = None
    note: str | None = None

    def words(self) -> str:
        """In words, as shown: 'loading sd-turbo: warming up, 40 %, 3 s (gray runs
        meanwhile)'."""
        if self.state == "loading":
            stage = f"{self.stage}, " if self.stage else ""
            done = f"{self.progress * 100:.0f} %, " if self.progress is not None else ""
            took = f"{self.elapsed_s:.0f} s" if self.elapsed_s is not None else "just begun"
            meanwhile = f" ({self.running} runs meanwhile)" if self.running else ""
            return f"loading {self.name}: {stage}{done}{took}{meanwhile}"
        if self.state == "error":
            return f"{self.name} failed: {self.error}" if self.error else f"{self.name} failed"
        if self.state == "ready" and self.elapsed_s is not None:
            return f"{self.name} ready (loaded in {self.elapsed_s:.1f} s)"
        return f"{self.name} {self.state}"


def pipeline_status(state: PipelineState | None) -> PipelineStatus | None:
    if state is None:
        return None
    return PipelineStatus(
        state=state.state,
        name=state.pipeline,
        stage=state.stage,
        elapsed_s=_round(state.elapsed_s, 1),
        progress=_round(state.progress, 3),
        running=state.running,
        loading=state.pipeline if state.state == "loading" else None,
        error=state.error,
        note=state.note,
    )


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
