"""A Tether pipeline plugin for diffusion img2img (sd-turbo class, diffusers): every
frame is redrawn from a prompt, a step or two of denoising from the camera's picture.

Weights come from a local directory in diffusers' layout (``save_pretrained``), never
from a hub: the load runs with ``HF_HUB_OFFLINE=1`` and ``local_files_only=True``.
Where and how it runs is set by environment variables, read when the worker loads it
(see ``DiffusionSettings``). Importing this module does not import torch: the worker
lists the pipeline at start-up, and only a stream that picks it pays for torch.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from tether.pipelines.base import PipelineParams

__all__ = ["Diffusion", "DiffusionParams", "DiffusionSettings"]


@dataclass(frozen=True)
class DiffusionSettings:
    """What the load needs, from the environment (a load runs once per worker process,
    so these are settings of the worker, not parameters of a stream)."""

    model: Path | None  # TETHER_DIFFUSION_MODEL: the model's directory
    device: str  # TETHER_DIFFUSION_DEVICE: cuda when there is one, else cpu
    dtype: str  # TETHER_DIFFUSION_DTYPE: float16 on a GPU, float32 on the CPU
    compile: bool  # TETHER_DIFFUSION_COMPILE=1: torch.compile the UNet and the VAE decoder
    size: int  # TETHER_DIFFUSION_SIZE: the model's picture size (512 for sd-turbo)
    warmup: int  # TETHER_DIFFUSION_WARMUP: frames run at load (compiles, allocates)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> DiffusionSettings:
        env = dict(os.environ if env is None else env)
        device = env.get("TETHER_DIFFUSION_DEVICE") or _default_device()
        gpu = device.startswith("cuda")
        model = env.get("TETHER_DIFFUSION_MODEL")
        return cls(
            model=Path(model).expanduser() if model else None,
            device=device,
            dtype=env.get("TETHER_DIFFUSION_DTYPE") or ("float16" if gpu else "float32"),
            compile=env.get("TETHER_DIFFUSION_COMPILE", "0") == "1",
            size=int(env.get("TETHER_DIFFUSION_SIZE") or 512),
            warmup=int(env.get("TETHER_DIFFUSION_WARMUP") or 2),
        )


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class DiffusionParams(PipelineParams):
    prompt: str = Field(default="a watercolor painting", description="What to draw")
    strength: float = Field(
        default=0.5, ge=0.1, le=1.0, multiple_of=0.05, description="How far from the camera"
    )
    steps: int = Field(default=2, ge=1, le=8, description="Denoising steps (sd-turbo: 1 to 4)")
    seed: int = Field(default=42, ge=0, le=2**31 - 1, description="Noise seed (same: steadier)")


class Diffusion:
    """Redraws each frame from a prompt with a diffusion img2img model (sd-turbo class)."""

    name = "diffusion"
    params_model = DiffusionParams

    def __init__(self, settings: DiffusionSettings | None = None) -> None:
        self._settings = settings
        self.load_stage = ""
        self.pipe: Any = None
        self._embeds: dict[str, Any] = {}  # prompt -> its text embedding, on the device
        self._lock = threading.Lock()  # one frame at a time on the model

    @property
    def settings(self) -> DiffusionSettings:
        if self._settings is None:
            self._settings = DiffusionSettings.from_env()
        return self._settings

    def load(self) -> None:
        """Reads the weights from the local directory, moves them to the device, compiles
        if asked, and warms up (the first frames allocate, pick kernels, compile)."""
        settings = self.settings
        if settings.model is None or not (settings.model / "model_index.json").is_file():
            raise RuntimeError(
                "set TETHER_DIFFUSION_MODEL to a local directory holding an img2img model "
                f"in diffusers' layout (model_index.json); got {settings.model}"
            )
        os.environ["HF_HUB_OFFLINE"] = "1"  # never a hub, whatever a component asks
        self.load_stage = "importing torch"  # seconds on its own, before any weight
        import torch
        from diffusers import AutoPipelineForImage2Image

        if settings.device == "cpu":
            # Leave a core to the worker's event loop and media: a model that takes every
            # core delays heartbeats, and the studio would see a lost link.
            torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
        self.load_stage = "loading weights"
        pipe = AutoPipelineForImage2Image.from_pretrained(
            str(settings.model),
            dtype=getattr(torch, settings.dtype),
            local_files_only=True,
            safety_checker=None,
        )
        pipe = pipe.to(settings.device)
        pipe.set_progress_bar_config(disable=True)
        if settings.compile:
            self.load_stage = "compiling"
            pipe.unet = torch.compile(pipe.unet, mode="reduce-overhead", fullgraph=True)
            pipe.vae.decode = torch.compile(pipe.vae.decode, mode="reduce-overhead")
        self.pipe = pipe
        self.load_stage = "warming up"
        blank = np.zeros((settings.size, settings.size, 3), np.uint8)
        for _ in range(settings.warmup):
            self.process(blank, DiffusionParams())
        self.load_stage = ""

    def process(self, frame: np.ndarray, params: DiffusionParams) -> np.ndarray:
        import torch

        if self.pipe is None:
            self.load()
        settings = self.settings
        with self._lock, torch.inference_mode():
            picture = _to_model(frame, settings)
            # img2img runs int(steps * strength) steps: keep at least one.
            steps = max(params.steps, math.ceil(1 / params.strength))
            generator = torch.Generator(settings.device).manual_seed(params.seed)
            out = self.pipe(
                prompt_embeds=self._embedding(params.prompt),
                image=picture,
                strength=params.strength,
                num_inference_steps=steps,
                guidance_scale=0.0,  # turbo models are distilled to run without guidance
                generator=generator,
                output_type="pt",
            ).images
            return _to_frame(out, frame.shape[:2])

    def _embedding(self, prompt: str) -> Any:
        if prompt not in self._embeds:
            if len(self._embeds) >= 16:  # a user typing: keep the newest few
                self._embeds.pop(next(iter(self._embeds)))
            embeds, _ = self.pipe.encode_prompt(prompt, self.pipe.device, 1, False)
            self._embeds[prompt] = embeds
        return self._embeds[prompt]


def _to_model(frame: np.ndarray, settings: DiffusionSettings) -> Any:
    """The frame as the model takes it: 1x3xSxS in 0..1, resized on the device."""
    import torch
    import torch.nn.functional as F

    pixels = torch.from_numpy(frame).to(settings.device, non_blocking=True)
    picture = pixels.permute(2, 0, 1).unsqueeze(0).to(getattr(torch, settings.dtype)) / 255
    if picture.shape[-2:] != (settings.size, settings.size):
        picture = F.interpolate(picture, size=(settings.size, settings.size), mode="bilinear")
    return picture


def _to_frame(images: Any, shape: tuple[int, int]) -> np.ndarray:
    """The model's 1x3xSxS output (0..1) as an H x W x 3 uint8 frame of ``shape``."""
    import torch.nn.functional as F

    if images.shape[-2:] != shape:
        images = F.interpolate(images.float(), size=shape, mode="bilinear")
    pixels = (images[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0)
    return pixels.cpu().numpy()
