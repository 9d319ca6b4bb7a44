"""A diffusers ``UNet2DModel`` built from a few config values (shared by the diffusion families).

``widths`` gives the channels at each resolution level, full size first; each level after the first
halves the resolution, so an input side must be a multiple of :func:`size_multiple`. The network is
fully convolutional (attention, where enabled, works on any size), so it also runs on crops of the
image it was trained on — what iterative inpainting's context windows rely on. Normalisation is
GroupNorm: a sample never depends on the rest of its batch.
"""

from __future__ import annotations

import math

from skingen.errors import SkingenError


def size_multiple(widths: tuple[int, ...]) -> int:
    """Input sides must be multiples of this (one ×2 downsampling between consecutive levels)."""
    return 2 ** (len(widths) - 1)


def _groups(widths: tuple[int, ...]) -> int:
    """The largest GroupNorm group count ≤ 32 dividing every width (32 for the usual 64/128/256...)."""
    g = math.gcd(*widths)
    return max(d for d in range(1, 33) if g % d == 0)


def make_unet(size: int, in_channels: int, out_channels: int, widths: tuple[int, ...], layers_per_block: int = 2,
              attention: tuple[bool, ...] | None = None, head_dim: int = 32, dropout: float = 0.0):
    """``UNet2DModel`` mapping ``[N,in_channels,H,W]`` (+ timesteps ``[N]``) to ``[N,out_channels,H,W]``.

    ``attention``: per level, whether its blocks have self-attention (default: the lowest two levels
    when there are at least three). The middle block has attention when the lowest level has it.
    """
    from diffusers import UNet2DModel

    widths = tuple(int(w) for w in widths)
    if not widths or min(widths) < 1:
        raise SkingenError(f"UNet widths must be positive channel counts, got {widths}")
    if attention is None:
        attention = tuple(i >= len(widths) - 2 and len(widths) >= 3 for i in range(len(widths)))
    if len(attention) != len(widths):
        raise SkingenError(f"UNet attention has {len(attention)} entries but there are {len(widths)} levels")
    if size % size_multiple(widths):
        raise SkingenError(f"image size {size} is not a multiple of {size_multiple(widths)} "
                           f"({len(widths)} UNet levels halve it {len(widths) - 1} times)")
    attn_widths = [w for w, a in zip(widths, attention) if a]
    head_dim = min([head_dim, *attn_widths])  # at least one head on the narrowest attention level
    down = tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attention)
    up = tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention))
    return UNet2DModel(sample_size=size, in_channels=in_channels, out_channels=out_channels,
                       block_out_channels=widths, layers_per_block=layers_per_block, down_block_types=down,
                       up_block_types=up, add_attention=bool(attention[-1]), attention_head_dim=head_dim,
                       norm_num_groups=_groups(widths), dropout=dropout)
