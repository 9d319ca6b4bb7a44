"""Diversity: mean MS-SSIM over random pairs of distinct images of one set (torchmetrics).

High mean MS-SSIM between *different* samples means a set of look-alikes (mode collapse); compare it
with the same number for the real set at the same size. Pairs depend only on (seed, set size).
A set with several images per ``parent_id`` (``skingen inpaint --runs R``, ``sample --from``) also gets the
mean MS-SSIM between images of one parent: 1 means every run of a crop made the same image.
Standard MS-SSIM has 5 scales and needs images of at least 176 px with torchmetrics' 11×11 window;
smaller images use the first scales only (weights renormalised to sum 1), recorded as ``scales``.
"""

from __future__ import annotations

from typing import Annotated

from dataclasses import dataclass

import numpy as np

from skingen.config import Range
from skingen.errors import SkingenError
from skingen.seeding import numpy_rng

MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
KERNEL = 11


@dataclass(frozen=True)
class DiversityConfig:
    pairs: Annotated[int, Range(1, 1_000_000)] = 200  # MS-SSIM costs ~0.1 s per 256 px pair on a CPU core; the std error of the mean is ~0.01


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


def sibling_pairs(parents: list[str], count: int, seed: int) -> np.ndarray:
    """``[≤count, 2]`` pairs (i, j), i != j, of images with the same non-empty parent: a random parent with at
    least two images, then two distinct images of it (``[0, 2]`` when no parent has two)."""
    by_parent: dict[str, list[int]] = {}
    for i, p in enumerate(parents):
        if p:
            by_parent.setdefault(p, []).append(i)
    groups = [g for g in by_parent.values() if len(g) >= 2]
    if not groups:
        return np.zeros((0, 2), dtype=np.int64)
    rng = numpy_rng(seed, "ms-ssim-siblings", len(parents))
    out = []
    for g in rng.integers(0, len(groups), count):
        members = groups[g]
        a = rng.integers(0, len(members))
        b = (a + rng.integers(1, len(members))) % len(members)
        out.append((members[a], members[b]))
    return np.asarray(out, dtype=np.int64)


@dataclass(frozen=True)
class DiversityResult:
    mean: float
    std: float
    pairs: int
    scales: int
    siblings_mean: float | None = None  #: mean MS-SSIM between images of one parent (None: no parent has two)
    sibling_pairs: int = 0


def ms_ssim_diversity(images, size: int, cfg: DiversityConfig = DiversityConfig(), seed: int = 0,
                      batch_size: int = 32, device: str = "cpu", progress=None) -> DiversityResult:
    """Mean and std of MS-SSIM over ``cfg.pairs`` random pairs of an :class:`ImageSet`, at ``size`` px, and the
    mean over ``cfg.pairs`` pairs of images with the same ``parent_id`` where the set has such pairs."""
    parents = [r.get("parent_id") or "" for r in images.rows] if images.rows else [""] * len(images)
    siblings = sibling_pairs(parents, cfg.pairs, seed)
    pairs = random_pairs(len(images), cfg.pairs, seed)
    betas = ms_ssim_betas(size)
    total = len(pairs) + len(siblings)
    v = _ms_ssim(images, pairs, size, betas, batch_size, device, progress, 0, total)
    s = _ms_ssim(images, siblings, size, betas, batch_size, device, progress, len(pairs), total)
    return DiversityResult(float(v.mean()), float(v.std()), len(v), len(betas),
                           float(s.mean()) if len(s) else None, len(s))


def _ms_ssim(images, pairs: np.ndarray, size: int, betas, batch_size: int, device: str, progress, done: int,
             total: int) -> np.ndarray:
    """MS-SSIM of every pair ``[P,2]`` of ``images`` (float64 ``[P]``)."""
    import torch
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as ms_ssim

    values = [torch.zeros(0, dtype=torch.float64)]
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        a = images.load(chunk[:, 0], size).to(device).float() / 255.0
        b = images.load(chunk[:, 1], size).to(device).float() / 255.0
        with torch.no_grad():
            values.append(ms_ssim(a, b, betas=betas, kernel_size=KERNEL, data_range=1.0, reduction="none").cpu().double())
        if progress:
            progress(done + min(start + batch_size, len(pairs)), total)
    return torch.cat(values).numpy()
