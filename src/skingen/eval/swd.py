"""Sliced Wasserstein distance on Laplacian pyramids (Karras et al. 2018, "Progressive growing of GANs").

Written by hand: no maintained library implements this protocol (kornia and scikit-image build
pyramids, but not the descriptors, the per-level normalisation or the sliced distance). It follows the
authors' ``metrics/sliced_wasserstein.py``:

- a Laplacian pyramid per image with the 5×5 binomial filter and mirror borders (= cv2.pyrDown/pyrUp),
  from the evaluation size down to 16 px (64 px images: levels 64, 32, 16);
- per level, 128 random 7×7×3 neighbourhoods per image (positions drawn from the image's index and
  the seed only, so identical sets give identical descriptors and the batch size never matters);
- descriptors normalised per colour channel (mean/std over all neighbourhoods and pixels);
- sliced Wasserstein-1: 4 repeats × 128 random unit directions, sorted projections, mean |difference|;
  reported ×10³ per level, with their maximum and their mean, and (given the real-vs-real floor) each
  level divided by the floor's and the worst such ratio, the summary that ranks sets
  (:func:`relative_to_floor` says why).

One deliberate default differs: Karras normalises the real and the fake descriptors *each by their
own* channel mean/std, which cancels any global per-channel affine colour change (a colour cast or a
contrast change of the whole set is invisible). For skin, colour fidelity matters, so by default
(``normalise='reference'``) both sets are normalised with the *real* set's statistics — identical to
Karras for the real set, and it keeps colour shifts visible. ``normalise='per-set'`` is the exact protocol.
Sets of different sizes are compared on equal descriptor counts (the larger is subsampled, seeded).
"""

from __future__ import annotations

from typing import Annotated

from dataclasses import dataclass

import numpy as np

from skingen.config import Range
from skingen.errors import SkingenError
from skingen.seeding import numpy_rng

NORMALISE = ("reference", "per-set")


@dataclass(frozen=True)
class SwdConfig:
    nhood: Annotated[int, Range(1, 64)] = 7
    per_image: Annotated[int, Range(1, 100_000)] = 128
    repeats: Annotated[int, Range(1, 1000)] = 4
    directions: Annotated[int, Range(1, 100_000)] = 128
    min_resolution: Annotated[int, Range(4, 4096)] = 16
    normalise: str = "reference"

    def __post_init__(self) -> None:
        if self.normalise not in NORMALISE:
            raise SkingenError(f"swd.normalise must be one of {', '.join(NORMALISE)}, got '{self.normalise}'")
        if self.nhood < 1 or self.nhood % 2 == 0 or self.nhood > self.min_resolution:
            raise SkingenError(f"swd.nhood must be odd and at most swd.min_resolution, got {self.nhood}")


def resolutions(size: int, min_resolution: int = 16) -> list[int]:
    """Pyramid level sizes: ``size``, ``size/2``, ... down to ``min_resolution`` (inclusive)."""
    if size < min_resolution:
        raise SkingenError(f"SWD needs images of at least {min_resolution} px, got {size}")
    out = []
    while size >= min_resolution:
        out.append(size)
        size //= 2
    return out


_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32) / 16.0


def _binomial_blur(x: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """5×5 binomial filter ([1,4,6,4,1]/16 outer product; separable, so two 1-D passes), mirror borders,
    over the last two axes of ``float32 [..., H, W]``."""
    from scipy.ndimage import convolve1d

    out = convolve1d(convolve1d(x, _BINOMIAL, axis=-1, mode="mirror"), _BINOMIAL, axis=-2, mode="mirror")
    return out * np.float32(gain) if gain != 1.0 else out


def pyr_down(x: np.ndarray) -> np.ndarray:
    return _binomial_blur(x)[..., ::2, ::2]


def pyr_up(x: np.ndarray) -> np.ndarray:
    up = np.zeros(x.shape[:-2] + (x.shape[-2] * 2, x.shape[-1] * 2), np.float32)
    up[..., ::2, ::2] = x
    return _binomial_blur(up, gain=4.0)


def laplacian_pyramid(images: np.ndarray, levels: int) -> list[np.ndarray]:
    """``float32 [N,3,S,S]`` -> ``levels`` band-pass images ``[N,3,S/2^i,S/2^i]``; the last is the low-pass residual."""
    pyramid = [images]
    for _ in range(1, levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1])
    return pyramid


class SwdDescriptors:
    """Collects the per-level neighbourhood descriptors of one image set, batch by batch."""

    def __init__(self, size: int, cfg: SwdConfig = SwdConfig(), seed: int = 0):
        self.cfg, self.seed = cfg, seed
        self.levels = resolutions(size, cfg.min_resolution)
        self._parts: list[list[np.ndarray]] = [[] for _ in self.levels]

    def add(self, start: int, images) -> None:
        """``images``: ``uint8 [n,3,S,S]``, the images ``start .. start+n-1`` of the set."""
        pyramid = laplacian_pyramid(images.numpy().astype(np.float32), len(self.levels))
        half, p, k = self.cfg.nhood // 2, self.cfg.per_image, self.cfg.nhood
        offsets = np.arange(-half, half + 1)
        for li, level in enumerate(pyramid):
            n, _, h, w = level.shape
            pos = np.stack([numpy_rng(self.seed, "swd", li, start + i).integers([half, half], [h - half, w - half],
                                                                                size=(p, 2)) for i in range(n)])
            ys = pos[..., 0][:, :, None] + offsets  # [n,P,k]
            xs = pos[..., 1][:, :, None] + offsets
            img = np.arange(n)[:, None, None, None]
            patches = level[img, :, ys[:, :, :, None], xs[:, :, None, :]]  # [n,P,k,k,3]
            self._parts[li].append(np.ascontiguousarray(patches.transpose(0, 1, 4, 2, 3)).reshape(n * p, 3, k, k))

    def finish(self) -> list[np.ndarray]:
        """One ``float32 [M,3,k,k]`` array per level."""
        return [np.concatenate(parts) for parts in self._parts]


def _channel_stats(desc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = desc.mean(axis=(0, 2, 3), keepdims=True, dtype=np.float64)
    std = desc.std(axis=(0, 2, 3), keepdims=True, dtype=np.float64)
    return mean.astype(np.float32), np.maximum(std, 1e-8).astype(np.float32)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, repeats: int, directions: int,
                       rng: np.random.Generator) -> float:
    """Mean over ``repeats``×``directions`` random unit directions of W1 between the projected point sets
    (equal sizes: sorted projections matched one to one). ``a``, ``b``: ``float32 [M,D]``."""
    import torch

    if a.shape != b.shape:
        raise SkingenError(f"sliced Wasserstein needs equal-sized descriptor sets, got {a.shape} and {b.shape}")
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    results = []
    for _ in range(repeats):
        dirs = rng.standard_normal((a.shape[1], directions))
        dirs /= np.sqrt((dirs ** 2).sum(axis=0, keepdims=True))
        d = torch.from_numpy(dirs.astype(np.float32))
        pa, pb = torch.sort(ta @ d, dim=0).values, torch.sort(tb @ d, dim=0).values
        results.append(float((pa - pb).abs().mean()))
    return float(np.mean(results))


def swd(real: list[np.ndarray], fake: list[np.ndarray], resolutions_: list[int], cfg: SwdConfig = SwdConfig(),
        seed: int = 0) -> dict:
    """SWD ×10³ per level, their maximum and their mean:
    ``{'levels': {res: value}, 'worst': value, 'worst_level': res, 'mean': value, 'descriptors': count}``.
    With a real-vs-real floor, :func:`relative_to_floor` gives the summary that ranks sets."""
    values, count = {}, 0
    for li, (a, b, res) in enumerate(zip(real, fake, resolutions_)):
        ma, sa = _channel_stats(a)
        mb, sb = (ma, sa) if cfg.normalise == "reference" else _channel_stats(b)
        a, b = (a - ma) / sa, (b - mb) / sb
        m = min(len(a), len(b))
        pick = numpy_rng(seed, "swd-subsample", li)
        if len(a) > m:
            a = a[np.sort(pick.choice(len(a), m, replace=False))]
        if len(b) > m:
            b = b[np.sort(pick.choice(len(b), m, replace=False))]
        dist = sliced_wasserstein(a.reshape(m, -1), b.reshape(m, -1), cfg.repeats, cfg.directions,
                                  numpy_rng(seed, "swd-directions", li))
        values[res] = dist * 1e3
        count = m
    worst = max(values, key=values.get)  # raw maximum; levels have different natural scales (see below)
    return {"levels": values, "worst": values[worst], "worst_level": worst, "mean": float(np.mean(list(values.values()))),
            "descriptors": count}


def relative_to_floor(result: dict, floor: dict) -> dict:
    """Each level of ``result`` divided by the same level of the real-vs-real ``floor`` (both from :func:`swd`),
    and the worst ratio: ``{'vs_floor': {res: ratio}, 'worst_vs_floor': ratio, 'worst_vs_floor_level': res}``.

    The summary that ranks sets. A maximum cannot be lowered by trading one level against another (a mean
    can), and dividing by the floor puts the levels on one scale: real crops differ most from each other
    in the 16 px low-pass residual (whole-crop colour and layout), so a raw maximum is that level for every
    set and ignores the fine levels where blur and a change of source show (docs/evaluation.md, measured)."""
    ratios = {res: value / max(floor["levels"][res], 1e-12) for res, value in result["levels"].items()}
    worst = max(ratios, key=ratios.get)
    return {"vs_floor": ratios, "worst_vs_floor": ratios[worst], "worst_vs_floor_level": worst}
