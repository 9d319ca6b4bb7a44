"""Build a tiny Stable Diffusion *inpainting* pipeline with random weights, offline, and save it.

Usage: python scripts/make_tiny_sd.py DIR [--text-to-image] [--seed 0] [--full-size]

For tests and smoke runs of ``skingen inpaint DIR --backend sd`` without downloading anything: the
same components as SD 1.5 inpainting (``UNet2DConditionModel`` with 9 input channels = 4 latents +
1 mask + 4 masked-image latents, ``AutoencoderKL``, ``CLIPTextModel``, ``CLIPTokenizer``), each a few
channels wide. Native resolution 32 px (UNet sample size 16 x VAE scale factor 2). The tokenizer
reads a minimal vocabulary written here: the 256 byte symbols of CLIP's byte-level BPE, each also
with the end-of-word mark, and no merges (one token per character). Its images are noise: it
checks the plumbing, never quality. ``--text-to-image`` writes a 4-input-channel text-to-image
pipeline instead (what the sd backend must refuse); ``--full-size`` the architecture of SD 1.5
inpainting with random weights (cost checks: ``bench/sd_inpaint.py``). Needs diffusers and transformers
(``pip install 'skingen[sd]'``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

NATIVE = 32  #: UNet sample size 16 x VAE scale factor 2 (two VAE blocks)


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's (GPT-2's) printable stand-in for every byte; written by hand because transformers keeps it private."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for b in range(256):
        if b in keep:
            chars.append(b)
        else:
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(range(256), chars)}


def make_tokenizer(max_length: int = 77):
    """A ``CLIPTokenizer`` over one token per byte (with and without the end-of-word mark) + the specials."""
    from transformers import CLIPTokenizer

    symbols = list(_bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"])}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab))
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n")
        return CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"), model_max_length=max_length)


def build_pipeline(inpainting: bool = True, full_size: bool = False, seed: int = 0):
    """The pipeline in memory: tiny, or with ``full_size`` SD 1.5 inpainting's architecture (UNet 860 M
    parameters, 512 px; the CLIP text encoder is ViT-L/14's but reads the minimal vocabulary)."""
    import torch
    from diffusers import (AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, StableDiffusionPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    tokenizer = make_tokenizer()
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id, "max_position_embeddings": tokenizer.model_max_length}
    in_channels = 9 if inpainting else 4
    if full_size:  # the configs of stable-diffusion-v1-5/stable-diffusion-inpainting
        text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                                                    num_attention_heads=12, num_hidden_layers=12, **ids))
        unet = UNet2DConditionModel(sample_size=64, in_channels=in_channels, out_channels=4, cross_attention_dim=768)
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            sample_size=512)
    else:
        text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37,
                                                    num_attention_heads=4, num_hidden_layers=2, **ids))
        unet = UNet2DConditionModel(
            sample_size=NATIVE // 2, in_channels=in_channels, out_channels=4, block_out_channels=(16, 32),
            layers_per_block=1, norm_num_groups=8, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32, attention_head_dim=4)
        vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8, 16), layers_per_block=1,
                            norm_num_groups=8, down_block_types=("DownEncoderBlock2D",) * 2,
                            up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, sample_size=NATIVE)
    # SD 1.5's scheduler settings (the sd backend swaps in DPM-Solver++ with this config)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    cls = StableDiffusionInpaintPipeline if inpainting else StableDiffusionPipeline
    return cls(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
               safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def make_tiny_sd(folder: str | Path, inpainting: bool = True, seed: int = 0, full_size: bool = False) -> Path:
    """Write the pipeline of :func:`build_pipeline` to ``folder`` (``save_pretrained``)."""
    build_pipeline(inpainting, full_size, seed).save_pretrained(folder)
    return Path(folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path, help="folder to write (save_pretrained layout)")
    ap.add_argument("--text-to-image", action="store_true", help="a 4-input-channel text-to-image pipeline instead")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    ap.add_argument("--full-size", action="store_true",
                    help="SD 1.5 inpainting's architecture (512 px, ~1.1 B parameters, ~4 GB in fp32) for cost checks")
    args = ap.parse_args()
    if args.dir.exists() and any(args.dir.iterdir()):
        raise SystemExit(f"error: {args.dir} exists and is not empty")
    folder = make_tiny_sd(args.dir, inpainting=not args.text_to_image, seed=args.seed, full_size=args.full_size)
    print(f"wrote a {'full-size' if args.full_size else 'tiny'} random-weight "
          f"{'text-to-image' if args.text_to_image else 'inpainting'} pipeline "
          f"({512 if args.full_size else NATIVE} px) to {folder}")


if __name__ == "__main__":
    main()
