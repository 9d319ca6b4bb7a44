"""Fréchet distance (FID) and kernel distance (KID) between two feature matrices, in any feature space.

Both use torch-fidelity's own functions on our features (the same code as its Inception FID/KID), so
a number here equals torch-fidelity's for the same features. Inputs: ``float [N,D]`` and ``[M,D]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skingen.errors import SkingenError


@dataclass(frozen=True)
class KidConfig:
    subsets: int = 100
    subset_size: int = 1000  # reduced to the smaller set's size when that is smaller (and said so)
    degree: int = 3


@dataclass(frozen=True)
class KidResult:
    mean: float
    std: float  # over subsets
    subset_size: int
    subsets: int
    note: str = ""


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


def kernel_distance(a: np.ndarray, b: np.ndarray, cfg: KidConfig = KidConfig(), seed: int = 0) -> KidResult:
    """Unbiased MMD² with the cubic polynomial kernel, mean and std over random subsets (Bińkowski et al.)."""
    import torch
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    _check(a, b, "KID")
    size = min(cfg.subset_size, len(a), len(b))
    note = (f"KID subset size reduced from {cfg.subset_size} to {size} (the smaller set has {size} images)"
            if size < cfg.subset_size else "")
    out = kid_features_to_metric(torch.from_numpy(np.asarray(a, np.float64)), torch.from_numpy(np.asarray(b, np.float64)),
                                 kid_subsets=cfg.subsets, kid_subset_size=size, kid_kernel_poly_degree=cfg.degree,
                                 verbose=False, rng_seed=seed)
    return KidResult(float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD]), size, cfg.subsets, note)
