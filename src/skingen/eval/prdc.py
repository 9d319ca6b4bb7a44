"""Precision, recall, density and coverage (Naeem et al. 2020) on k-NN manifolds, in any feature space.

Uses the authors' `prdc` package (the reference implementation, small and exact); torchmetrics has no
equivalent. Inputs: real ``float [N,D]``, fake ``float [M,D]``.
"""

from __future__ import annotations

from typing import Annotated

import contextlib
import io
from dataclasses import dataclass

import numpy as np

from skingen.config import Range
from skingen.errors import SkingenError


@dataclass(frozen=True)
class PrdcConfig:
    k: Annotated[int, Range(1, 1000)] = 5  # the authors' recommended neighbourhood size


def precision_recall_density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict:
    """``{'precision','recall','density','coverage','k','note'}``; ``k`` shrinks (and says so) for tiny sets."""
    from prdc import compute_prdc

    k_used = min(k, len(real) - 2, len(fake) - 2)  # compute_prdc partitions at k+1, which must be < N
    if k_used < 1:
        raise SkingenError(f"precision/recall need at least 3 images per set, got {len(real)} and {len(fake)}")
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the set sizes
        out = compute_prdc(np.asarray(real, np.float32), np.asarray(fake, np.float32), nearest_k=k_used)
    result = {name: float(value) for name, value in out.items()}
    result["k"] = k_used
    result["note"] = f"PRDC k reduced from {k} to {k_used} (set too small)" if k_used < k else ""
    return result
