"""Hard images: a small convolutional autoencoder trained on the crops ranks them by reconstruction error.

Images the autoencoder reconstructs worst are those least like the rest of the data set (unusual
content, colour, texture or framing) — the ones a generator will also find hard to learn. The network
is deliberately small with a narrow bottleneck (64 px -> 4x4x8 = 128 numbers by default), so it
cannot simply copy its input: it learns what the data set has in common.

Encoder: stride-2 4x4 convolutions; decoder: nearest-neighbour x2 upsampling + 3x3 convolution
(resize-convolution: no checkerboard artefacts). No normalisation layers, so an image's score does
not depend on the batch it was scored in. Images are ``float [N,3,S,S]`` in [-1, 1]; the score is the
per-image mean squared error in that range.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Callable

import numpy as np

from skingen.config import Range, Seed
from skingen.errors import SkingenError
from skingen.imageio import resize_image


@dataclass(frozen=True)
class AutoencoderConfig:
    size: Annotated[int, Range(8, 1024)] = 64  # images are resized to size x size (area average) before training
    channels: tuple[int, ...] = (16, 32, 64, 64)  # one stride-2 convolution each: 64 px -> 4 px
    latent_channels: Annotated[int, Range(1, 1024)] = 8
    epochs: Annotated[int, Range(1, 100_000)] = 30
    max_steps: Annotated[int, Range(1, 10_000_000)] = 1000  # caps the time on large data sets (each step is one batch)
    batch_size: Annotated[int, Range(1, 4096)] = 32
    lr: Annotated[float, Range(0, 1, open_lo=True)] = 2e-3
    seed: Seed = 0

    def __post_init__(self) -> None:
        if self.size % (2 ** len(self.channels)) != 0:
            raise SkingenError(f"autoencoder.size ({self.size}) must be divisible by 2^{len(self.channels)} "
                               f"(one halving per entry of autoencoder.channels)")
        if self.epochs < 0 or self.batch_size < 1 or self.max_steps < 0:
            raise SkingenError("autoencoder.epochs/max_steps must be >= 0 and batch_size >= 1")


def build_autoencoder(cfg: AutoencoderConfig):
    """The network (``torch.nn.Sequential``): ``[N,3,S,S]`` in [-1, 1] -> same shape in [-1, 1]."""
    from torch import nn

    layers: list[nn.Module] = []
    c_in = 3
    for c in cfg.channels:
        layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.SiLU()]
        c_in = c
    layers += [nn.Conv2d(c_in, cfg.latent_channels, 1), nn.Conv2d(cfg.latent_channels, c_in, 1), nn.SiLU()]
    for c in reversed(cfg.channels[:-1]):
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c, 3, padding=1), nn.SiLU()]
        c_in = c
    # The last step goes straight to RGB: a full-resolution hidden layer would double the cost.
    layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, 3, 3, padding=1), nn.Tanh()]
    return nn.Sequential(*layers)


@dataclass
class DifficultyResult:
    errors: np.ndarray  # float [N]: per-image MSE after training (higher = harder)
    initial_errors: np.ndarray  # float [N]: the same before training
    epoch_losses: list[float]  # mean training loss per epoch
    steps: int
    seconds: float
    device: str


def resize_for_autoencoder(image: np.ndarray, size: int) -> np.ndarray:
    """``uint8 [H,W,3]`` -> ``uint8 [size,size,3]`` by area averaging (PIL box filter)."""
    if image.shape[:2] == (size, size):
        return image
    return resize_image(image, size, "box")


def _errors(model, images, batch_size: int, device: str) -> np.ndarray:
    import torch

    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size].to(device).float().div(127.5).sub(1.0)
            out.append((model(x) - x).pow(2).mean(dim=(1, 2, 3)).cpu())
    return torch.cat(out).double().numpy()


def train_and_score(images: np.ndarray, cfg: AutoencoderConfig = AutoencoderConfig(), device: str = "cpu",
                    progress: Callable[[int, int], None] | None = None) -> DifficultyResult:
    """Train the autoencoder on ``uint8 [N,S,S,3]`` (already ``cfg.size``) and score every image.

    Seeded by ``cfg.seed`` (weights and batch order) without touching the global torch generator, so the
    same images, config and device give the same scores. ``progress(epoch, epochs)`` after each epoch.
    """
    import torch

    t0 = time.perf_counter()
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != (cfg.size, cfg.size, 3) or images.dtype != np.uint8:
        raise SkingenError(f"autoencoder expects uint8 [N,{cfg.size},{cfg.size},3], got {images.dtype} {images.shape}")
    if len(images) == 0:
        raise SkingenError("autoencoder: no images to train on")
    data = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()  # uint8 [N,3,S,S]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = build_autoencoder(cfg).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    initial = _errors(model, data, 256, device)
    losses: list[float] = []
    steps = 0
    for epoch in range(cfg.epochs):
        if steps >= cfg.max_steps:
            break
        model.train()
        order = torch.randperm(len(data), generator=gen)
        total, seen = 0.0, 0
        for i in range(0, len(data), cfg.batch_size):
            if steps >= cfg.max_steps:
                break
            x = data[order[i:i + cfg.batch_size]].to(device).float().div(127.5).sub(1.0)
            loss = (model(x) - x).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            total += float(loss.detach()) * len(x)
            seen += len(x)
        losses.append(total / max(seen, 1))
        if progress:
            progress(epoch + 1, cfg.epochs)
    errors = _errors(model, data, 256, device)
    return DifficultyResult(errors=errors, initial_errors=initial, epoch_losses=losses, steps=steps,
                            seconds=time.perf_counter() - t0, device=str(device))
