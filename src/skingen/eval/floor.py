"""The real-vs-real floor: what FID and KID give for *real* images that are not the reference set, at the
same N as the synthetic set they stand next to.

FID is biased upwards at small N (the Gaussian fits of a few hundred 2048-d features are noisy, and
rank-deficient below 2048 images), so "FID 150 at N=109" means nothing alone; next to "real crops score
120 at N=109" it does. KID is unbiased, but its floor shows the noise level. The floor set is another
split of the real data folder (by default ``test`` when the reference is another split, else ``train``);
at N below its size, N of its images are drawn ``draws`` times (seeded) and the floor is the mean (and
the spread) over draws. A synthetic set is indistinguishable from real at this N when it scores at the floor.
"""

from __future__ import annotations

from typing import Annotated

from dataclasses import dataclass

import numpy as np

from skingen.config import Range
from skingen.errors import SkingenError
from skingen.eval.fid import KidConfig, frechet_distance, kernel_distance
from skingen.data.imagesets import ImageSet, open_data
from skingen.seeding import numpy_rng

AUTO, NONE = "auto", "none"


@dataclass(frozen=True)
class FloorConfig:
    set: str = AUTO  # auto | none | DATA[:split] of real images that are not in the reference set
    draws: Annotated[int, Range(1, 1000)] = 3  # draws of N floor images per N (one when N >= the floor set's size)

    def __post_init__(self) -> None:
        if self.draws < 1:
            raise SkingenError(f"floor.draws must be >= 1, got {self.draws}")


def floor_set(real: ImageSet, cfg: FloorConfig) -> tuple[ImageSet | None, str]:
    """The floor set for the reference ``real`` and a note ('' when there is one).

    ``auto``: another split of ``real``'s data folder (``test``, or ``train`` when ``real`` is the test split)."""
    if cfg.set == NONE:
        return None, "no real-vs-real floor (floor.set=none)"
    if cfg.set != AUTO:
        from skingen.data.imagesets import open_any

        chosen = open_any(cfg.set)
    elif real.split is None or real.manifest_sha256 is None:
        return None, (f"no real-vs-real floor: {real.label} is not one split of a prepared data folder; give "
                      "--floor DATA:split (real images not in --real) to print one next to every row")
    else:
        other = "train" if real.split == "test" else "test"
        try:
            chosen = open_data(f"{real.root}:{other}")
        except SkingenError as exc:
            return None, f"no real-vs-real floor: {exc}"
    if chosen.fingerprint == real.fingerprint:
        raise SkingenError(f"the floor set {chosen.label} is the reference set itself: give real images not in --real")
    if len(chosen) < 2:
        return None, f"no real-vs-real floor: {chosen.label} has {len(chosen)} image(s)"
    return chosen, ""


def floor_at(real_feats: np.ndarray, floor_feats: np.ndarray, n: int, cfg: FloorConfig, kid: KidConfig,
             seed: int) -> dict:
    """FID and KID of ``n`` floor images (``float [M,D]``, drawn ``cfg.draws`` times) against ``real_feats``.

    Returns ``{'n', 'draws', 'fid': mean, 'fid_std', 'kid': mean, 'kid_std'}`` (std over draws, 0 for one draw)."""
    n = min(n, len(floor_feats))
    draws = 1 if n >= len(floor_feats) else cfg.draws
    fids, kids = [], []
    for d in range(draws):
        pick = (np.arange(n) if draws == 1 else
                np.sort(numpy_rng(seed, "floor", n, d).choice(len(floor_feats), n, replace=False)))
        fids.append(frechet_distance(real_feats, floor_feats[pick]))
        kids.append(kernel_distance(real_feats, floor_feats[pick], kid, seed).mean)
    return {"n": n, "draws": draws, "fid": float(np.mean(fids)), "fid_std": float(np.std(fids)),
            "kid": float(np.mean(kids)), "kid_std": float(np.std(kids))}
