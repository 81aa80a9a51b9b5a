"""The forms a pipeline may take, run by the worker's runner: ``async def process`` on
the pipeline loop (never the worker's), ``process_batch`` with frames that wait
together, ``session()`` for per-stream state, and ``io = "torch"`` tensors on a device
(torch imported only then); plus the load's progress and the worker's pace meter."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.unit.test_pipeline_loading import frame_of, value_of
from tether.clock import VirtualClock
from tether.pipelines import load_pipelines
from tether.pipelines.builtin import NoParams
from tether.pipelines.progress import LoadProgress
from tether.worker.engine import Engine
from tether.worker.meter import PipelineMeter
from tether.worker.session import MediaSession

PARAMS = NoParams()


class AsyncModel:
    """``async def process``: awaits (a remote call, a GPU stream) on its own loop."""

    name = "async_model"
    params_model = NoParams

    def __init__(self) -> None:
        self.threads: set[str] = set()

    async def process(self, frame: np.ndarray, params: NoParams) -> np.ndarray:
        self.threads.add(threading.current_thread().name)
        await asyncio.sleep(0.01)
        return 255 - frame


async def test_an_async_process_runs_on_the_pipeline_loop_never_the_workers() -> None:
    engine, model = Engine(), AsyncModel()
    out = await engine.runner.run(model, PARAMS, frame_of(10))
    assert value_of(out) == 245
    assert model.threads == {"pipeline-loop"}
    assert threading.current_thread().name not in model.threads
    await engine.close()


class Batched:
    """``process_batch``: several frames in one call, at most ``max_batch``."""

    name = "batched"
    params_model = NoParams
    max_batch = 2

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.gate = threading.Event()
        self.fails = False

    def process_batch(self, frames: list[np.ndarray], params: list[NoParams]) -> list[np.ndarray]:
        self.sizes.append(len(frames))
        assert len(params) == len(frames)
        assert self.gate.wait(10)
        if self.fails:
            raise RuntimeError("batch failed")
        return [np.full_like(f, int(f.mean()) + 1) for f in frames]


async def test_frames_that_wait_together_go_in_one_batch_at_most_max_batch() -> None:
    engine, model = Engine(), Batched()
    first = asyncio.ensure_future(engine.runner.run(model, PARAMS, frame_of(10)))
    await asyncio.to_thread(lambda: _until(lambda: model.sizes == [1]))
    # While the first batch runs, three frames (three streams) arrive: batches of 2, 1.
    rest = [
        asyncio.ensure_future(engine.runner.run(model, PARAMS, frame_of(v))) for v in (20, 30, 40)
    ]
    await asyncio.sleep(0.05)
    model.gate.set()
    outs = await asyncio.gather(first, *rest)
    assert [value_of(o) for o in outs] == [11, 21, 31, 41]  # each frame gets its own
    assert model.sizes == [1, 2, 1]
    model.fails = True
    with pytest.raises(RuntimeError, match="batch failed"):
        await engine.runner.run(model, PARAMS, frame_of(10))
    await engine.close()


def _until(check: Any) -> None:
    for _ in range(500):
        if check():
            return
        threading.Event().wait(0.01)
    raise AssertionError("timed out")


class Temporal:
    """``session()``: one history per stream (here, how many frames it has seen)."""

    name = "temporal"
    params_model = NoParams

    def __init__(self) -> None:
        self.made = 0

    def session(self) -> Any:
        self.made += 1
        return History()


class History:
    def __init__(self) -> None:
        self.seen = 0

    def process(self, frame: np.ndarray, params: NoParams) -> np.ndarray:
        self.seen += 1
        return np.full_like(frame, self.seen * 10)


async def test_each_stream_has_its_own_state_fresh_for_a_new_stream_or_a_switch_back() -> None:
    engine, model = Engine(), Temporal()
    pipelines = {**load_pipelines(), "temporal": model}
    one, two = MediaSession(pipelines, engine), MediaSession(pipelines, engine)
    for session in (one, two):
        session.apply({"pipeline": "temporal"}, 1)
    assert [value_of(await one.process(frame_of())) for _ in range(3)] == [10, 20, 30]
    assert value_of(await two.process(frame_of())) == 10  # its own history
    one.apply({"pipeline": "gray"}, 2)
    while one.describe()["pipeline"] != "gray":  # (temporal runs on while gray loads)
        await one.process(frame_of())
    await one.process(frame_of())
    one.apply({"pipeline": "temporal"}, 3)  # back: the frames between were not seen
    assert value_of(await one.process(frame_of())) == 10
    assert model.made == 3
    third = MediaSession(pipelines, engine)  # a new stream starts afresh
    third.apply({"pipeline": "temporal"}, 1)
    assert value_of(await third.process(frame_of())) == 10
    for session in (one, two, third):
        await session.close()
    await engine.close()


class FakeTensor:
    """Just enough of a torch tensor: where it lives, and the copies made of it."""

    copies: list[str] = []

    def __init__(self, array: np.ndarray, device: str = "cpu") -> None:
        self.array, self.device = array, types.SimpleNamespace(type=device.split(":")[0])
        self.where = device

    def to(self, device: str) -> FakeTensor:
        FakeTensor.copies.append(f"to {device}")
        return FakeTensor(self.array.copy(), device)

    def cpu(self) -> FakeTensor:
        FakeTensor.copies.append("to cpu")
        return FakeTensor(self.array.copy())

    def detach(self) -> FakeTensor:
        return self

    def numpy(self) -> np.ndarray:
        assert self.where == "cpu", "numpy() of a GPU tensor"
        return self.array


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    torch = types.ModuleType("torch")
    torch.from_numpy = lambda array: FakeTensor(array)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    FakeTensor.copies = []
    return torch


class OnDevice:
    """``io = "torch"``: takes and returns uint8 H x W x 3 tensors on ``device``."""

    name = "on_device"
    params_model = NoParams
    io = "torch"

    def __init__(self, device: str, same: bool = False) -> None:
        self.device, self.same = device, same
        self.got: list[Any] = []

    def process(self, frame: Any, params: NoParams) -> Any:
        self.got.append(frame)
        if self.same:
            return frame
        return FakeTensor(255 - frame.array, frame.where)


async def test_a_torch_pipeline_gets_tensors_on_its_device_with_one_copy_each_way(
    fake_torch: types.ModuleType,
) -> None:
    engine, model = Engine(), OnDevice("cuda:0")
    out = await engine.runner.run(model, PARAMS, frame_of(10))
    assert value_of(out) == 245
    (tensor,) = model.got
    assert isinstance(tensor, FakeTensor) and tensor.where == "cuda:0"
    assert tensor.array.shape == (32, 32, 3) and tensor.array.dtype == np.uint8
    assert FakeTensor.copies == ["to cuda:0", "to cpu"]  # no copy it did not ask for
    await engine.close()


async def test_a_cpu_tensor_shares_the_frames_memory_and_handed_back_is_the_frame(
    fake_torch: types.ModuleType,
) -> None:
    engine, model = Engine(), OnDevice("cpu", same=True)
    frame = frame_of(10)
    assert await engine.runner.run(model, PARAMS, frame) is frame  # no conversion back
    assert FakeTensor.copies == []  # from_numpy: the frame's own array, not a copy
    await engine.close()


def test_importing_and_running_the_worker_never_imports_torch(tmp_path: Path) -> None:
    # A torch that any import would find, and say so: the worker must not import it.
    (tmp_path / "torch.py").write_text("import sys\nsys.stderr.write('TORCH IMPORTED')\n")
    script = textwrap.dedent(
        """
        import asyncio, sys
        import av, numpy as np
        import tether.worker.app, tether.worker.worker, tether.cli.commands
        from tether.pipelines import load_pipelines
        from tether.worker.engine import Engine

        async def main():
            engine = Engine()
            frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            await engine.runner.run(load_pipelines()["invert"], None, frame)
            await engine.close()

        asyncio.run(main())
        assert "torch" not in sys.modules, "torch was imported"
        """
    )
    paths = [str(tmp_path), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "TORCH IMPORTED" not in done.stderr


def test_load_progress_keeps_the_latest_clamped_and_tells_each_change() -> None:
    told: list[tuple[str | None, float | None]] = []
    progress = LoadProgress()
    progress.on_change = lambda: told.append((progress.stage, progress.fraction))
    progress("reading weights", 0.25)
    progress(fraction=1.7)  # clamped
    progress(fraction=float("nan"))  # ignored
    progress.report("warming up")
    assert told == [
        ("reading weights", 0.25), ("reading weights", 1.0), ("reading weights", 1.0),
        ("warming up", 1.0),
    ]  # fmt: skip
    thread = threading.Thread(target=progress, args=("x" * 500, -1))
    thread.start()
    thread.join()
    assert progress.fraction == 0.0 and len(progress.stage or "") == 120


def test_the_meter_says_the_rate_and_median_time_of_recent_frames() -> None:
    clock = VirtualClock()
    meter = PipelineMeter(clock, window_s=2.0)
    assert meter.fps() is None and meter.p50_ms() is None
    for took in [0.1, 0.2, 0.15] * 4:  # 12 frames over 1.8 s
        clock._now += 0.15
        meter.add(took)
    assert meter.fps() == pytest.approx(12 / 1.8, abs=0.1)
    assert meter.p50_ms() == 150.0
    clock._now += 5  # nothing lately: no rate to tell
    assert meter.fps() is None
    meter.add(0.05)
    meter.reset()
    assert meter.p50_ms() is None
