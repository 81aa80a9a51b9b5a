"""Check 6, ``pipeline``: the worker's pipelines, whether the chosen one is there, and,
from the test session, whether it was loaded or cold (the worker says ``loading`` while
a first call runs long: a model loads), how long its load took, and its time per frame
as the worker reports it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.doctor.report import Check

NAME = "pipeline"


@dataclass
class PipelineSeen:
    """What the test session showed of its pipeline."""

    loading_seen: bool = False  # the worker said it was loading (it was cold)
    load_s: float | None = None  # how long the load took, or has taken so far
    state: str | None = None  # the last state: loading, ready or error
    error: str | None = None  # the pipeline's error, while it fails
    worker_ms: float | None = None  # its median time per frame
    fps_sent: float | None = None

    def see(self, state: Any, error: str | None) -> None:
        """A sample of the session's pipeline state (``protocol.PipelineState``)."""
        self.error = error
        if state is None:
            return
        self.state = state.state
        if state.state == "loading":
            self.loading_seen = True
        if state.elapsed_s is not None and (self.loading_seen or state.state == "loading"):
            self.load_s = state.elapsed_s


def available(catalog: list[dict[str, Any]]) -> list[str]:
    return [str(p.get("name")) for p in catalog if p.get("name")]


def check_listed(catalog: list[dict[str, Any]], chosen: str) -> Check | None:
    """A failing Check when the worker lacks the chosen pipeline, else None."""
    names = available(catalog)
    if chosen in names:
        return None
    return Check.fail(
        NAME,
        f"the worker has no pipeline {chosen!r} (it has: {', '.join(names) or 'none'})",
        f"install the package that provides {chosen!r} on the worker and restart it, or "
        f"choose one of: {', '.join(names)}",
        pipelines=names,
        chosen=chosen,
    )


def check_pipeline(catalog: list[dict[str, Any]], chosen: str, seen: PipelineSeen | None) -> Check:
    numbers: dict[str, Any] = {"pipelines": available(catalog), "chosen": chosen}
    entry = next((p for p in catalog if p.get("name") == chosen), {})
    for key in ("state", "load_s", "frame_ms"):  # where a worker reports them itself
        if entry.get(key) is not None:
            numbers[f"reported_{key}"] = entry[key]
    listed = f"{len(numbers['pipelines'])} pipelines ({', '.join(numbers['pipelines'])})"
    if seen is None:
        there = f"{listed}; {chosen!r} is there (not run: no test session)"
        return Check.ok(NAME, there, **numbers)
    numbers |= {
        "cold": seen.loading_seen,
        "load_s": None if seen.load_s is None else round(seen.load_s, 1),
        "frame_ms": None if seen.worker_ms is None else round(seen.worker_ms, 1),
    }
    if seen.error:
        return Check.fail(
            NAME,
            f"{chosen!r} fails on frames: {seen.error}",
            "the pipeline raises on the worker: check the worker's log and the plugin's "
            "installation (model files, GPU memory)",
            **numbers,
        )
    if seen.state == "loading":
        return Check.warn(
            NAME,
            f"{chosen!r} is cold: its model is still loading after {seen.load_s or 0:.0f} s",
            "wait until it has loaded (the page shows its progress) and run the doctor again",
            **numbers,
        )
    timing = f", {seen.worker_ms:.1f} ms per frame" if seen.worker_ms is not None else ""
    loaded = (
        f"was cold, loaded in {seen.load_s:.1f} s during this test"
        if seen.loading_seen and seen.load_s is not None
        else "loaded"
    )
    if seen.worker_ms is not None and seen.fps_sent and seen.fps_sent >= 1:
        most = 1000.0 / seen.worker_ms if seen.worker_ms > 0 else float("inf")
        if most < 0.9 * seen.fps_sent:
            return Check.warn(
                NAME,
                f"{chosen!r} {loaded}{timing}: at most {most:.1f} fps of the "
                f"{seen.fps_sent:.0f} sent",
                "the model, not the network, limits the frame rate: a lighter pipeline, a "
                "smaller picture or a faster GPU",
                **numbers,
            )
    return Check.ok(NAME, f"{listed}; {chosen!r} {loaded}{timing}", **numbers)
