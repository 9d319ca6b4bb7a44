"""Memorisation: which synthetic images are near-copies of training images.

Criterion of Gu et al. 2023 ("On memorization in diffusion models", after Yoon et al.): a sample is a
near-copy when its distance to the nearest training image is < 1/3 of its distance to the second
nearest. One change: the "second nearest" is the nearest training image from *another split group*
(``source_id``: another photo or patient) than the nearest one. Clinical training sets hold several
crops and re-encodings of one photo; with the plain rule a copy of such a crop has its own twin as
second neighbour, a ratio near 1, and is missed. Distances are Euclidean in a feature space
(default: 64 px pixels, close to Gu et al.'s pixel space).
"""

from __future__ import annotations

from typing import Annotated

from collections import Counter
from dataclasses import dataclass

import numpy as np

from skingen.config import Range
from skingen.errors import SkingenError


@dataclass(frozen=True)
class MemorisationConfig:
    features: str = "pixels:64"
    ratio: Annotated[float, Range(0, 1, open_lo=True)] = 1 / 3
    sheet_pairs: Annotated[int, Range(0, 1024)] = 16  # closest pairs shown on the contact sheet


@dataclass(frozen=True)
class MemorisationResult:
    fraction: float  # share of synthetic images flagged
    flagged: int
    n: int
    threshold: float
    ratio: np.ndarray  # [M] d1 / d2 (0 when d1 = 0)
    nearest: np.ndarray  # [M] index of the nearest training image
    d1: np.ndarray  # [M]
    d2: np.ndarray  # [M] distance to the nearest training image of another group


def memorisation(fake: np.ndarray, train: np.ndarray, train_groups: list[str] | None = None,
                 threshold: float = 1 / 3) -> MemorisationResult:
    """``fake`` ``float [M,D]`` against ``train`` ``float [N,D]`` (``train_groups``: N group names, or None
    for one group per image)."""
    from sklearn.neighbors import NearestNeighbors

    groups = list(train_groups) if train_groups is not None else [str(i) for i in range(len(train))]
    if len(groups) != len(train):
        raise SkingenError(f"memorisation: {len(groups)} group names for {len(train)} training images")
    if len(set(groups)) < 2:
        raise SkingenError("memorisation needs training images from at least 2 groups (photos)")
    # Among the (largest group + 1) nearest neighbours at least one is from another group than the nearest.
    k = min(len(train), max(Counter(groups).values()) + 1)
    dist, idx = NearestNeighbors(n_neighbors=k).fit(train).kneighbors(fake)
    group_of = np.asarray(groups)[idx]  # [M,k]
    other = group_of != group_of[:, :1]
    first_other = other.argmax(axis=1)  # every row has one (see k above)
    d1 = dist[:, 0]
    d2 = dist[np.arange(len(fake)), first_other]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(d1 == 0, 0.0, d1 / d2)
    flagged = ratio < threshold
    return MemorisationResult(float(flagged.mean()), int(flagged.sum()), len(fake), threshold, ratio,
                              idx[:, 0], d1, d2)


def closest_pairs_sheet(result: MemorisationResult, fake_images, train_images, fake_indices, cell: int = 96) -> np.ndarray:
    """Contact sheet: each synthetic image (``uint8 [n,3,S,S]``) next to its nearest training image, captioned
    with the distance ratio (``COPY`` when flagged). Rows hold 4 pairs."""
    from skingen.viz import contact_sheet

    tiles, captions = [], []
    for j, i in enumerate(fake_indices):
        r = float(result.ratio[i])
        tiles += [fake_images[j].permute(1, 2, 0).numpy(), train_images[j].permute(1, 2, 0).numpy()]
        captions += [f"{'COPY ' if r < result.threshold else ''}r={r:.2f}", "nearest train"]
    return contact_sheet(tiles, captions, columns=8, cell=cell)
