"""Seeds: parse seed lists and make one independent generator per seed.

One ``torch.Generator`` per sample means an image depends only on its own seed, never on the
batch it was drawn in or how many devices shared the work.
"""

from __future__ import annotations

import hashlib
import random
import re

import numpy as np

from skingen.errors import SkingenError


def parse_seeds(text: str) -> list[int]:
    """``'0-3,10'`` -> ``[0, 1, 2, 3, 10]``. Ranges are inclusive; order is kept, duplicates dropped."""
    seeds: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise SkingenError(f"cannot parse seed list '{text}' (expected non-negative seeds like 0-63,100)")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        if b < a:
            raise SkingenError(f"seed range '{part}' runs backwards")
        seeds.extend(range(a, b + 1))
    if not seeds:
        raise SkingenError(f"seed list '{text}' is empty")
    return list(dict.fromkeys(seeds))


def generators(seeds: list[int], device: str = "cpu"):
    """One ``torch.Generator`` per seed, on ``device``."""
    import torch

    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


def numpy_rng(*keys: int | str) -> np.random.Generator:
    """A numpy generator determined by ``keys`` (e.g. ``numpy_rng(seed, index)``)."""
    material = [k if isinstance(k, int) else int.from_bytes(hashlib.sha256(str(k).encode()).digest()[:8], "little")
                for k in keys]
    return np.random.default_rng(np.random.SeedSequence(material))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch global generators (for code we do not control)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def format_seeds(seeds: list[int]) -> str:
    """The inverse of :func:`parse_seeds`: ``[0, 1, 2, 3, 10]`` -> ``'0-3,10'`` (order kept)."""
    parts: list[str] = []
    i = 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(str(seeds[i]) if i == j else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(parts)
