"""Convolutional blocks: resize-convolution upsampling, strided downsampling, a conv discriminator.

Upsampling is nearest ×2 followed by a 3×3 convolution instead of a transposed convolution, which
avoids checkerboard artefacts (Odena et al., 2016). Normalisation is GroupNorm, never BatchNorm: a
sample must not depend on the other images in its batch (DESIGN.md: one generator per seed).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from skingen.errors import SkingenError


def check_size(size: int, minimum: int = 8) -> int:
    """Number of ×2 steps between 4 px and ``size``; ``size`` must be a power of two ≥ ``minimum``."""
    if size < minimum or size & (size - 1):
        raise SkingenError(f"image size must be a power of two >= {minimum}, got {size}")
    return int(math.log2(size)) - 2


def width(resolution: int, size: int, channels: int, max_channels: int) -> int:
    """Channels at ``resolution``: ``channels`` at full size, doubling per halving, capped."""
    return min(max_channels, channels * size // resolution)


def group_norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, max(1, ch // 4)), ch)


def maybe_sn(module: nn.Module, enabled: bool) -> nn.Module:
    return _spectral_norm(module) if enabled else module


class UpBlock(nn.Module):
    """``[N,cin,H,W]`` -> ``[N,cout,2H,2W]``: nearest ×2, 3×3 conv, GroupNorm, activation."""

    def __init__(self, cin: int, cout: int, act: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.body = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                  nn.Conv2d(cin, cout, 3, padding=1), group_norm(cout), act())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class DownBlock(nn.Module):
    """``[N,cin,H,W]`` -> ``[N,cout,H/2,W/2]``: 4×4 stride-2 conv, optional GroupNorm, LeakyReLU(0.2)."""

    def __init__(self, cin: int, cout: int, norm: bool = True, sn: bool = False):
        super().__init__()
        layers = [maybe_sn(nn.Conv2d(cin, cout, 4, stride=2, padding=1), sn)]
        if norm:
            layers.append(group_norm(cout))
        layers.append(nn.LeakyReLU(0.2))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ConvEncoder(nn.Module):
    """``[N,cin,S,S]`` -> features ``[N,C,4,4]`` by strided conv blocks (a discriminator or VAE body)."""

    def __init__(self, size: int, cin: int, channels: int, max_channels: int, norm: bool, sn: bool = False):
        super().__init__()
        steps = check_size(size)
        blocks, c, res = [], cin, size
        for _ in range(steps):
            cout = width(res // 2, size, channels, max_channels)
            blocks.append(DownBlock(c, cout, norm=norm and c != cin, sn=sn))  # no norm on the input layer
            c, res = cout, res // 2
        self.body = nn.Sequential(*blocks)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ConvDecoder(nn.Module):
    """Vector ``[N,D]`` -> image ``[N,3,S,S]`` in [-1, 1]: dense to 4×4, resize-conv blocks, 3×3 conv, tanh."""

    def __init__(self, size: int, dim: int, channels: int, max_channels: int):
        super().__init__()
        steps = check_size(size)
        c = width(4, size, channels, max_channels)
        self.c0 = c
        self.fc = nn.Sequential(nn.Linear(dim, c * 16), nn.ReLU())
        blocks, res = [], 4
        for _ in range(steps):
            cout = width(res * 2, size, channels, max_channels)
            blocks.append(UpBlock(c, cout))
            c, res = cout, res * 2
        self.body = nn.Sequential(*blocks, nn.Conv2d(c, 3, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.fc(z).view(len(z), self.c0, 4, 4))


class Discriminator(nn.Module):
    """Image ``[N,3,S,S]`` in [-1, 1] -> real/fake logit ``[N]``; optional spectral norm."""

    def __init__(self, size: int, channels: int, max_channels: int, sn: bool = False):
        super().__init__()
        self.features = ConvEncoder(size, 3, channels, max_channels, norm=not sn, sn=sn)
        self.head = maybe_sn(nn.Conv2d(self.features.out_channels, 1, 4), sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten()
