"""Synthetic pictures for the measuring client: the one door for what a test or a
benchmark sends.

- ``still``: one colourful picture (``frame_id.base_planes``), the same every frame. It
  compresses to almost nothing once the encoder has it; use it where a test compares
  the picture it gets back with the one it sent.
- ``desk``: a camera on a desk: the ``still`` picture with fresh sensor noise on every
  frame (uniform, +-12 levels). The picture does not move, so the encoder spends what
  its noise needs, a little less than a start bitrate: the stream that found issue
  19's quarter-size pictures (an estimate that follows what is sent).
- ``camera``: what a camera gives, so the stream needs the bitrate a real one does:
  textured detail (a 1/f pattern with hard edges: it costs bits), a slow pan across it,
  an object crossing the view, and fresh sensor noise every frame. Deterministic from a
  seed: frame ``n`` is the same picture in every run.

Both return yuv420p planes stacked in one array (luma rows, then U and V each reshaped
to ``height // 4`` rows of ``width``), with the top ``2 * BAND`` luma rows left flat, so
the frame number stamped there (``frame_id.stamp_id``) reads back after a low-bitrate
VP8 and a downscale. Everything costly is computed once: a frame is a crop of a
panorama plus a crop of a noise buffer (uint8 adds, no clipping needed)."""

from __future__ import annotations

import numpy as np

from tether.media.frame_id import BAND, base_planes

SCENES = ("camera", "desk", "still")
PAN_PX = 2  # luma pixels the view moves each frame
NOISE_SIGMA = 3.0  # sensor noise, in 8-bit levels (a camera in decent light)
NOISE_PAD = 64  # the noise buffer's margin: each frame crops it at a fresh offset
CALM_ROWS = 2 * BAND  # the frame number's band and a calm margin below it


def _pink(rng: np.random.Generator, height: int, width: int, slope: float) -> np.ndarray:
    """A 1/f^slope pattern, zero mean, unit spread; periodic, so it tiles seamlessly."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    radius[0, 0] = 1.0
    spectrum = rng.standard_normal((height, fx.shape[1])) + 1j * rng.standard_normal(
        (height, fx.shape[1])
    )
    spectrum /= radius**slope
    spectrum[0, 0] = 0
    pattern = np.fft.irfft2(spectrum, s=(height, width))
    return pattern / (pattern.std() + 1e-9)


def _panorama(rng: np.random.Generator, height: int, width: int, floor: int) -> np.ndarray:
    """The luma world the camera pans across: periodic in x, levels in [floor, 255-floor]."""
    world = 118 + 34 * _pink(rng, height, width, 1.1)
    for _ in range(max(4, width // 96)):  # blocks with hard edges: "buildings", "windows"
        h = rng.integers(height // 10 + 1, height // 3 + 2)
        w = rng.integers(width // 40 + 1, width // 10 + 2)
        y, x = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
        world[y : y + h, x : x + w] += rng.choice([-45.0, 40.0])
    world += 7 * _pink(rng, height, width, 0.3)  # fine grain: leaves, fabric
    return np.clip(world, floor, 255 - floor).astype(np.uint8)


class CameraScene:
    """A camera-like picture per frame number (see the module's docstring)."""

    def __init__(self, width: int, height: int, seed: int = 1) -> None:
        self.width, self.height = width, height
        rng = np.random.default_rng(seed)
        self.seed = seed
        self.amp = int(3 * NOISE_SIGMA)
        self.period = 2 * width  # the pan wraps around after this many pixels
        world = _panorama(rng, height, self.period, self.amp + 1)
        self.luma = np.concatenate([world, world[:, :width]], axis=1)
        ch, cw = height // 2, width // 2
        chroma = []
        for _ in range(2):  # slow colour blobs, half resolution like yuv420p
            plane = np.clip(128 + 22 * _pink(rng, ch, self.period // 2, 2.0), 20, 235)
            plane = plane.astype(np.uint8)
            chroma.append(np.concatenate([plane, plane[:, :cw]], axis=1))
        self.chroma = chroma
        # Noise as uint8 modulo 256: a level in [amp+1, 255-amp-1] plus it never wraps.
        noise = np.clip(
            np.rint(rng.normal(0, NOISE_SIGMA, (height + NOISE_PAD, width + NOISE_PAD))),
            -self.amp,
            self.amp,
        )
        self.noise = noise.astype(np.int16).astype(np.uint8)
        self.ball = self._ball(rng, max(8, min(width, height) // 6))

    @staticmethod
    def _ball(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """A checkered disc (mask and levels): the thing crossing the view."""
        y, x = np.mgrid[0:size, 0:size]
        mask = (y - size / 2) ** 2 + (x - size / 2) ** 2 < (size / 2) ** 2
        check = ((y // 6 + x // 6) % 2).astype(np.uint8)
        return mask, (60 + 140 * check + rng.integers(0, 8, (size, size))).astype(np.uint8)

    def planes(self, index: int) -> np.ndarray:
        """The stacked yuv420p planes of frame ``index`` (no frame number drawn)."""
        w, h = self.width, self.height
        out = np.empty((h * 3 // 2, w), np.uint8)
        luma = out[:h]
        x = (index * PAN_PX) % self.period
        dy, dx = (index * 29 + self.seed) % NOISE_PAD, (index * 53 + 7 * self.seed) % NOISE_PAD
        np.add(self.luma[:, x : x + w], self.noise[dy : dy + h, dx : dx + w], out=luma)
        self._draw_ball(luma, index)
        luma[:CALM_ROWS] = 128
        half = x // 2
        for k, plane in enumerate(self.chroma):
            rows = out[h + k * (h // 4) : h + (k + 1) * (h // 4)].reshape(h // 2, w // 2)
            rows[:] = plane[:, half : half + w // 2]
            rows[: CALM_ROWS // 2] = 128
        return out

    def _draw_ball(self, luma: np.ndarray, index: int) -> None:
        mask, levels = self.ball
        size = mask.shape[0]
        room_y = self.height - CALM_ROWS - size
        room_x = self.width - size
        if room_y <= 0 or room_x <= 0:
            return
        # A Lissajous path: it moves every frame, at a speed a hand-held object might.
        t = index / 30.0
        y = CALM_ROWS + int(room_y * (0.5 + 0.5 * np.sin(1.3 * t)))
        x = int(room_x * (0.5 + 0.5 * np.sin(0.7 * t + 1.0)))
        patch = luma[y : y + size, x : x + size]
        np.copyto(patch, levels, where=mask)


class StillScene:
    """The same colourful picture every frame."""

    def __init__(self, width: int, height: int, seed: int = 1) -> None:
        self.base = base_planes(width, height)

    def planes(self, index: int) -> np.ndarray:
        return self.base.copy()


class DeskScene:
    """The still picture with fresh sensor noise below the calm rows on every frame."""

    def __init__(self, width: int, height: int, seed: int = 1, amplitude: int = 12) -> None:
        self.base = base_planes(width, height).astype(np.int16)
        self.height, self.seed, self.amplitude = height, seed, amplitude

    def planes(self, index: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, index))  # frame n's own, in every run
        out = self.base.copy()
        luma = out[CALM_ROWS : self.height]
        luma += rng.integers(-self.amplitude, self.amplitude + 1, luma.shape, np.int16)
        return np.clip(out, 0, 255).astype(np.uint8)


Scene = CameraScene | StillScene | DeskScene


def make_scene(name: str, width: int, height: int, seed: int = 1) -> Scene:
    """The scene called ``name`` (one of ``SCENES``) at this size."""
    if name == "camera":
        return CameraScene(width, height, seed)
    if name == "still":
        return StillScene(width, height, seed)
    if name == "desk":
        return DeskScene(width, height, seed)
    raise ValueError(f"unknown scene {name!r}; choose one of {', '.join(SCENES)}")
