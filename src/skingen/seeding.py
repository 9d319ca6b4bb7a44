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

MAX_SEEDS = 1_000_000  #: seeds per call: a million images is days of sampling; more is a typo
MAX_SEED = 2**32 - 1  #: the largest seed (numpy's legacy seeding, and so many tools, take 32 bits)



def parse_seeds(text: str) -> list[int]:
    """``'0-3,10'`` -> ``[0, 1, 2, 3, 10]``. Ranges are inclusive; order is kept, duplicates dropped.
    At most :data:`MAX_SEEDS` seeds (counted before any list is built, so a typo cannot exhaust memory)."""
    seeds: list[int] = []
    count = 0
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part, re.ASCII)  # not other scripts' digits
        if m is None:
            raise SkingenError(f"cannot parse seed list '{text}' (expected non-negative seeds like 0-63,100)")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        if b < a:
            raise SkingenError(f"seed range '{part}' runs backwards")
        count += b - a + 1
        if count > MAX_SEEDS:
            raise SkingenError(f"seed list '{text}' names more than {MAX_SEEDS:,} seeds; give at most "
                               f"{MAX_SEEDS:,} seeds per call (split the work into several calls)")
        if b > MAX_SEED:
            raise SkingenError(f"seed {b} in '{part}' is above the largest seed, {MAX_SEED:,}")
        seeds.extend(range(a, b + 1))
    if not seeds:
        raise SkingenError(f"seed list '{text}' is empty")
    return list(dict.fromkeys(seeds))


def seeds_of(n: int | None, seeds: str | None) -> list[int]:
    """The seeds of ``--n N`` (``0..N-1``) or ``--seeds LIST``; exactly one must be given."""
    if (n is None) == (seeds is None):
        raise SkingenError("give exactly one of --n N or --seeds LIST")
    if n is not None and not 1 <= n <= MAX_SEEDS:
        raise SkingenError(f"--n must be 1..{MAX_SEEDS:,} (split more images into several calls), got {n}")
    return list(range(n)) if n is not None else parse_seeds(seeds)


def generators(seeds: list[int], device: str = "cpu"):
    """One ``torch.Generator`` per seed, on ``device``."""
    import torch

    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


def seeded_normal(rows, shape: tuple[int, ...], device="cpu"):
    """``[len(rows), *shape]`` standard normal noise, row i drawn from its own generator: ``rows[i]`` is a
    CPU ``torch.Generator``, or a seed (then a fresh generator seeded with it).

    The one place per-sample noise is drawn. On the CPU, so an image depends only on (weights, seed,
    condition), not on the device or the batch it was drawn in."""
    import torch

    gens = [r if isinstance(r, torch.Generator) else torch.Generator().manual_seed(int(r)) for r in rows]
    return torch.stack([torch.randn(shape, generator=g) for g in gens]).to(device)


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
