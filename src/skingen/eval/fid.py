"""Fréchet distance (FID) and kernel distance (KID) between two feature matrices, in any feature space.

Both use torch-fidelity's own functions on our features (the same code as its Inception FID/KID), so
a number here equals torch-fidelity's for the same features; only KID over a set with several images of
one parent has its own estimator (on torch-fidelity's kernel and subsets). Inputs: ``float [N,D]`` and ``[M,D]``.
"""

from __future__ import annotations

from typing import Annotated

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from skingen.config import Range
from skingen.errors import SkingenError


@dataclass(frozen=True)
class KidConfig:
    subsets: Annotated[int, Range(1, 100_000)] = 100
    subset_size: Annotated[int, Range(2, 10_000_000)] = 1000  # reduced to the smaller set's size when that is smaller (and said so)
    degree: Annotated[int, Range(1, 10)] = 3


@dataclass(frozen=True)
class KidResult:
    mean: float
    std: float  # over subsets
    subset_size: int
    subsets: int
    note: str = ""
    parents: int | None = None  # parents (parent_id) of the second set when pairs of one parent were left out, else None


def _check(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise SkingenError(f"{what}: feature matrices must be [N,D] with the same D, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) < 2:
        raise SkingenError(f"{what} needs at least 2 images per set, got {len(a)} and {len(b)}")


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """‖μa − μb‖² + Tr(Σa + Σb − 2(ΣaΣb)^½), Gaussian fits in float64 (torch-fidelity's formula)."""
    import torch
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    _check(a, b, "FID")
    stats = [fid_features_to_statistics(torch.from_numpy(np.asarray(x, np.float64))) for x in (a, b)]
    return float(fid_statistics_to_metric(stats[0], stats[1], verbose=False)[KEY_METRIC_FID])


def kernel_distance(a: np.ndarray, b: np.ndarray, cfg: KidConfig = KidConfig(), seed: int = 0,
                    parents_b: Sequence[str] | None = None) -> KidResult:
    """Unbiased MMD² with the cubic polynomial kernel, mean and std over random subsets (Bińkowski et al.).

    ``parents_b``: the ``parent_id`` of each row of ``b`` (the crop each image was made from). Pairs of ``b`` with
    one parent are left out of its within-set term: several runs of one crop are near-copies, and their large
    kernel values would otherwise raise KID (the 109 measles test crops listed 3 times score 6.1×10⁻³ against
    train, listed once 3.75×10⁻³). With no parent shared this is torch-fidelity's KID, subset for subset."""
    import torch
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    _check(a, b, "KID")
    size = min(cfg.subset_size, len(a), len(b))
    note = (f"KID subset size reduced from {cfg.subset_size} to {size} (the smaller set has {size} images)"
            if size < cfg.subset_size else "")
    if parents_b is not None and len(parents_b) != len(b):
        raise SkingenError(f"KID: {len(parents_b)} parent ids for {len(b)} images")
    if parents_b is not None and len(set(parents_b)) < len(b):
        values = grouped_kid_subsets(np.asarray(a, np.float64), np.asarray(b, np.float64), parents_b, cfg, size, seed)
        return KidResult(float(np.mean(values)), float(np.std(values)), size, cfg.subsets, note, len(set(parents_b)))
    out = kid_features_to_metric(torch.from_numpy(np.asarray(a, np.float64)), torch.from_numpy(np.asarray(b, np.float64)),
                                 kid_subsets=cfg.subsets, kid_subset_size=size, kid_kernel_poly_degree=cfg.degree,
                                 verbose=False, rng_seed=seed)
    return KidResult(float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD]), size, cfg.subsets, note)


def grouped_kid_subsets(a: np.ndarray, b: np.ndarray, parents_b: Sequence[str], cfg: KidConfig, size: int,
                        seed: int) -> np.ndarray:
    """``float [cfg.subsets]`` MMD² values of ``size``-image subsets, pairs of ``b`` with one parent left out.

    Written here because torch-fidelity's estimator has no notion of groups; the subsets are drawn exactly as
    torch-fidelity draws them, and its kernel is used, so singleton groups reproduce its numbers."""
    from torch_fidelity.metric_kid import kernel_poly

    codes = np.unique(np.asarray(parents_b, dtype=object).astype(str), return_inverse=True)[1]
    kernel = {"kid_kernel_poly_degree": cfg.degree, "kid_kernel_poly_gamma": None, "kid_kernel_poly_coef0": 1}
    rng = np.random.RandomState(seed)
    values = np.zeros(cfg.subsets)
    for s in range(cfg.subsets):
        ia = rng.choice(len(a), size, replace=False)
        ib = rng.choice(len(b), size, replace=False)
        k_aa, k_bb = kernel_poly(a[ia], a[ia], **kernel), kernel_poly(b[ib], b[ib], **kernel)
        apart = codes[ib][:, None] != codes[ib][None, :]  # also drops the diagonal
        if not apart.any():
            raise SkingenError("KID needs images of at least 2 different parents in the synthetic set")
        values[s] = ((k_aa.sum() - np.trace(k_aa)) / (size * (size - 1)) + k_bb[apart].mean()
                     - 2 * kernel_poly(a[ia], b[ib], **kernel).mean())
    return values
