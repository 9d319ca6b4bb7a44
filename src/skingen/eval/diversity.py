"""Diversity: mean MS-SSIM over random pairs of distinct images of one set (torchmetrics).

High mean MS-SSIM between *different* samples means a set of look-alikes (mode collapse); compare it
with the same number for the real set at the same size. Pairs depend only on (seed, set size).
Standard MS-SSIM has 5 scales and needs images of at least 176 px with torchmetrics' 11×11 window;
smaller images use the first scales only (weights renormalised to sum 1), recorded as ``scales``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skingen.errors import SkingenError
from skingen.seeding import numpy_rng

MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
KERNEL = 11


@dataclass(frozen=True)
class DiversityConfig:
    pairs: int = 200  # MS-SSIM costs ~0.1 s per 256 px pair on a CPU core; the std error of the mean is ~0.01


def ms_ssim_betas(size: int, kernel: int = KERNEL) -> tuple[float, ...]:
    """The most MS-SSIM scales (≤ 5) that torchmetrics accepts at ``size`` px, with renormalised weights."""
    for scales in range(len(MS_SSIM_BETAS), 0, -1):
        fits = (size >= 2 ** scales and size // max(1, scales - 1) ** 2 > kernel - 1
                and size // 2 ** (scales - 1) >= kernel)
        if fits:
            betas = np.asarray(MS_SSIM_BETAS[:scales])
            return tuple(float(b) for b in betas / betas.sum())
    raise SkingenError(f"MS-SSIM needs images of at least {kernel} px, got {size}")


def random_pairs(n: int, count: int, seed: int) -> np.ndarray:
    """``[count, 2]`` index pairs (i, j), i != j, uniform over ordered pairs of ``n`` items."""
    if n < 2:
        raise SkingenError(f"diversity needs at least 2 images, got {n}")
    rng = numpy_rng(seed, "ms-ssim-pairs", n)
    i = rng.integers(0, n, count)
    j = (i + rng.integers(1, n, count)) % n
    return np.stack([i, j], axis=1)


@dataclass(frozen=True)
class DiversityResult:
    mean: float
    std: float
    pairs: int
    scales: int


def ms_ssim_diversity(images, size: int, cfg: DiversityConfig = DiversityConfig(), seed: int = 0,
                      batch_size: int = 32, device: str = "cpu", progress=None) -> DiversityResult:
    """Mean and std of MS-SSIM over ``cfg.pairs`` random pairs of an :class:`ImageSet`, at ``size`` px."""
    import torch
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as ms_ssim

    pairs = random_pairs(len(images), cfg.pairs, seed)
    betas = ms_ssim_betas(size)
    values = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        a = images.load(chunk[:, 0], size).to(device).float() / 255.0
        b = images.load(chunk[:, 1], size).to(device).float() / 255.0
        with torch.no_grad():
            values.append(ms_ssim(a, b, betas=betas, kernel_size=KERNEL, data_range=1.0, reduction="none").cpu())
        if progress:
            progress(min(start + batch_size, len(pairs)), len(pairs))
    v = torch.cat(values).double().numpy()
    return DiversityResult(float(v.mean()), float(v.std()), len(v), len(betas))
