"""Real models on the worker, measured: one JSON line per case.

Through the studio (real studio and worker processes, a measuring client from
tether.tools.probe), each line has the load time, the pipeline's frame rate and
per-frame latency, the worker's CPU, and the studio's view: the link's state and its
transitions, the pipeline's state, the quality factor, and the rate sent upstream.

    python -m bench.models                          # segment, slow, switch, fail, diffusion
    python -m bench.models --case segment --seconds 20
    python -m bench.models --case slow --seconds 600          # the 10-minute target
    python -m bench.models --case switch --load-s 8 60

Cases: ``segment`` (the shipped CPU model, examples/tether-segment, on a real portrait),
``slow`` (150 ms a frame), ``switch`` (mid-stream to a model that loads for --load-s;
needs the test models' ``slow_load``), ``fail`` (a load that raises: ``fail_load``),
``diffusion`` (examples/tether-diffusion on a random-weight build; CPU numbers say so).

``--pipeline-only`` calls a pipeline in this process, no studio or worker: it needs
only numpy, pydantic, torch and diffusers + transformers (no aiortc, no av), so it runs
on a GPU host with no registry, with the wheels carried over::

    pip download -d wheels diffusers transformers pydantic   # where a registry is
    pip install --no-index --find-links wheels diffusers transformers pydantic
    python bench/models.py --pipeline-only --case diffusion --shape sd-turbo --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "examples/tether-diffusion/src", ROOT / "examples/tether-segment/src"):
    if _path.is_dir() and str(_path) not in sys.path:
        sys.path.append(str(_path))  # run as a script from a checkout, installed or not
for _path in (ROOT / "src", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

CASES = ["segment", "slow", "switch", "fail", "diffusion"]


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def quantiles(values: list[float]) -> dict[str, float | None]:
    if len(values) < 2:
        return {"p50_ms": None, "p95_ms": None}
    q = statistics.quantiles(values, n=100)
    return {"p50_ms": round(statistics.median(values), 1), "p95_ms": round(q[94], 1)}


# --- In this process: the pipeline alone -------------------------------------------


def diffusion_pipeline(opts: argparse.Namespace, directory: Path) -> tuple[Any, Any]:
    from tether_diffusion import Diffusion, DiffusionParams, DiffusionSettings
    from tether_diffusion.build import build

    if not (directory / "model_index.json").is_file():
        dtype = "float16" if opts.device.startswith("cuda") else "float32"
        build(directory, opts.shape, dtype, device=opts.device)
    settings = DiffusionSettings.from_env(diffusion_env(opts, directory))
    return Diffusion(settings), DiffusionParams(steps=opts.steps)


def model_dir(opts: argparse.Namespace, workdir: Path) -> Path:
    return opts.model_dir or workdir / f"model-{opts.shape}"


def diffusion_env(opts: argparse.Namespace, directory: Path) -> dict[str, str]:
    env = {
        "TETHER_DIFFUSION_MODEL": str(directory),
        "TETHER_DIFFUSION_DEVICE": opts.device,
        "TETHER_DIFFUSION_SIZE": str(diffusion_size(opts)),
        "HF_HUB_OFFLINE": "1",
    }
    if opts.compile:
        env["TETHER_DIFFUSION_COMPILE"] = "1"
    return env


def diffusion_size(opts: argparse.Namespace) -> int:
    return 512 if opts.shape == "sd-turbo" else 64


def pipeline_only(opts: argparse.Namespace, case: str, workdir: Path) -> dict[str, Any]:
    """Load, then call ``process`` back to back for --seconds: the model's own numbers."""
    import numpy as np

    if case == "segment":
        from tether_segment import Segment, SegmentParams, portrait

        pipeline, params, frame = Segment(), SegmentParams(), portrait(opts.size, opts.size)
    elif case == "diffusion":
        pipeline, params = diffusion_pipeline(opts, model_dir(opts, workdir))
        frame = np.random.default_rng(0).integers(0, 255, (opts.size, opts.size, 3), np.uint8)
    else:
        return {"case": case, "error": "--pipeline-only runs segment and diffusion"}
    cpu0, started = _cpu_self(), time.perf_counter()
    pipeline.load()
    load_s = time.perf_counter() - started
    latencies, end = [], time.perf_counter() + opts.seconds
    cpu1 = _cpu_self()
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        pipeline.process(frame, params)
        latencies.append((time.perf_counter() - t0) * 1000)
    took = sum(latencies) / 1000
    return {
        "case": case,
        "mode": "pipeline-only",
        "load_s": round(load_s, 2),
        "load_cpu_s": round(cpu1 - cpu0, 2),
        "fps": round(len(latencies) / took, 2) if took else None,
        "frames": len(latencies),
        **quantiles(latencies),
        "cpu_cores_used": round((_cpu_self() - cpu1) / took, 2) if took else None,
    }


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def device_label(opts: argparse.Namespace) -> str:
    if not opts.device.startswith("cuda"):
        return f"CPU ({machine()})"
    import torch

    return f"GPU {torch.cuda.get_device_name(0)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--seconds", type=float, default=None, help="per case (slow: 600)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--load-s", type=float, nargs="+", default=[8, 60])
    parser.add_argument("--device", default="cpu", help="diffusion: cpu or cuda")
    parser.add_argument("--shape", choices=["tiny", "sd-turbo"], default=None)
    parser.add_argument("--steps", type=int, default=2, help="diffusion: denoising steps")
    parser.add_argument("--compile", action="store_true", help="diffusion: torch.compile")
    parser.add_argument("--pipeline-only", action="store_true")
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="diffusion: built here once, then reused"
    )
    opts = parser.parse_args()
    if opts.shape is None:
        opts.shape = "sd-turbo" if opts.device.startswith("cuda") else "tiny"
    cases = CASES if opts.case == "all" else [opts.case]
    with tempfile.TemporaryDirectory(prefix="tether-bench-models-") as tmp:
        for case in cases:
            seconds = opts.seconds or (600 if case == "slow" else 20)
            case_opts = argparse.Namespace(**{**vars(opts), "seconds": seconds})
            if opts.pipeline_only:
                line = pipeline_only(case_opts, case, Path(tmp))
            else:
                from bench.models_studio import run_case

                line = run_case(case_opts, case, Path(tmp))
            if case == "diffusion":
                line["device"] = device_label(opts)
                line["shape"] = opts.shape
            line = {"bench": "models", "machine": machine(), "seconds": seconds, **line}
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
