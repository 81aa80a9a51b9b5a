"""Random-weight builds of an img2img model in diffusers' layout, for tests and speed
runs where real weights cannot be fetched: ``tiny`` (a few MB, seconds on a CPU) and
``sd-turbo`` (sd-turbo's published shapes: the same UNet, VAE and text encoder work as
the real model, so its frame rate is a true one; only the pictures are noise).

    python -m tether_diffusion.build DIR [--shape tiny|sd-turbo] [--dtype float16]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

SHAPES: dict[str, dict[str, Any]] = {
    "tiny": {
        "unet": {
            "block_out_channels": (32, 64),
            "layers_per_block": 1,
            "sample_size": 32,
            "in_channels": 4,
            "out_channels": 4,
            "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
            "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
            "cross_attention_dim": 32,
            "attention_head_dim": 4,
            "norm_num_groups": 8,
        },
        "vae": {
            "block_out_channels": (16, 32),
            "in_channels": 3,
            "out_channels": 3,
            "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
            "up_block_types": ("UpDecoderBlock2D", "UpDecoderBlock2D"),
            "latent_channels": 4,
            "norm_num_groups": 8,
            "sample_size": 64,
        },
        "text": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "projection_dim": 32,
        },
    },
    # Stable Diffusion 2.1's architecture, which sd-turbo distils into (512x512).
    "sd-turbo": {
        "unet": {
            "block_out_channels": (320, 640, 1280, 1280),
            "layers_per_block": 2,
            "sample_size": 64,
            "in_channels": 4,
            "out_channels": 4,
            "down_block_types": (
                "CrossAttnDownBlock2D",
                "CrossAttnDownBlock2D",
                "CrossAttnDownBlock2D",
                "DownBlock2D",
            ),
            "up_block_types": (
                "UpBlock2D",
                "CrossAttnUpBlock2D",
                "CrossAttnUpBlock2D",
                "CrossAttnUpBlock2D",
            ),
            "cross_attention_dim": 1024,
            "attention_head_dim": (5, 10, 20, 20),
            "use_linear_projection": True,
        },
        "vae": {
            "block_out_channels": (128, 256, 512, 512),
            "in_channels": 3,
            "out_channels": 3,
            "down_block_types": ("DownEncoderBlock2D",) * 4,
            "up_block_types": ("UpDecoderBlock2D",) * 4,
            "latent_channels": 4,
            "layers_per_block": 2,
            "sample_size": 768,
        },
        "text": {
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_attention_heads": 16,
            "num_hidden_layers": 23,
            "projection_dim": 512,
            "hidden_act": "gelu",
        },
    },
}


def write_tokenizer(directory: Path) -> int:
    """A CLIP tokenizer with a byte-level vocabulary and no merges: it turns any text
    into tokens without a downloaded vocabulary. Returns its vocabulary's size."""
    from transformers import CLIPTokenizer

    symbols = _byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    directory.mkdir(parents=True, exist_ok=True)
    vocab, merges = directory / "vocab.json", directory / "merges.txt"
    vocab.write_text(json.dumps({token: i for i, token in enumerate(tokens)}))
    merges.write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(
        str(vocab), str(merges), pad_token="<|endoftext|>", model_max_length=77
    )
    tokenizer.save_pretrained(str(directory))
    return len(tokens)


def _byte_symbols() -> list[str]:
    """GPT-2's and CLIP's printable stand-in for each of the 256 byte values."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    extra = (b for b in range(256) if b not in printable)
    mapping = {b: chr(b) for b in printable}
    mapping.update({b: chr(256 + n) for n, b in enumerate(extra)})
    return [mapping[b] for b in range(256)]


def build(
    directory: Path, shape: str = "tiny", dtype: str = "float32", seed: int = 0, device: str = "cpu"
) -> Path:
    """Writes a random-weight StableDiffusionImg2ImgPipeline of ``shape`` to ``directory``
    with save_pretrained; it loads back with from_pretrained(local_files_only=True).
    ``device``: where the random weights are made (a GPU makes sd-turbo's in seconds,
    a small CPU takes minutes)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionImg2ImgPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    spec = SHAPES[shape]
    torch.manual_seed(seed)
    vocab_size = write_tokenizer(directory / "tokenizer")
    from transformers import CLIPTokenizer

    text_config = CLIPTextConfig(
        vocab_size=vocab_size,
        max_position_embeddings=77,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
        **spec["text"],
    )
    with torch.device(device):
        vae = AutoencoderKL(**spec["vae"])
        text_encoder = CLIPTextModel(text_config)
        unet = UNet2DConditionModel(**spec["unet"])
    pipe = StableDiffusionImg2ImgPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=CLIPTokenizer.from_pretrained(str(directory / "tokenizer")),
        unet=unet,
        # sd-turbo's scheduler: Euler with trailing timesteps (1 to 4 steps).
        scheduler=EulerDiscreteScheduler(
            beta_schedule="scaled_linear",
            beta_start=0.00085,
            beta_end=0.012,
            timestep_spacing="trailing",
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if dtype != "float32":
        pipe.to(dtype=getattr(torch, dtype))
    pipe.save_pretrained(str(directory))
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    parser.add_argument("--device", default="cpu", help="where to make the weights")
    opts = parser.parse_args()
    print(build(opts.directory, opts.shape, opts.dtype, device=opts.device))


if __name__ == "__main__":
    main()
