"""Synthesised lesion layouts: plausible maculopapular rash masks on a chosen healthy-skin colour.

A layout is what the mask-conditioned models (``dermgan``, ``dermdiff``) take as their condition: a
binary lesion mask and the coloured mask made from it (lesion filled with one lesion colour, the rest
with one healthy-skin colour, as :func:`skingen.data.masks.coloured_mask` does for real crops).
Making them from parameters instead of copying real crops is what lets a user vary lesion size,
density, location and — most useful here — skin tone, producing darker skin than the data holds.

The rash model: discrete small macules (ellipses of random size, aspect and rotation) plus a share
(``confluence``) of confluent patches (clusters of overlapping ellipses), scattered around a random
centre with a given spread, added until the lesion fraction reaches a target drawn from ``coverage``.
A shape that would overshoot the target by more than half its own area is skipped, so the fraction
ends within about one macule of the target.

Colours: the healthy colour gets an ITA drawn from ``ita`` (the angle fixes L* from b*:
L* = 50 + b*·tan ITA), b* and a* drawn from typical skin ranges; the lesion colour is the healthy one
plus ``lesion_delta`` in CIELAB. The default delta is the median (lesion − healthy) over the measles
crops' coloured masks (505 crops, auto masks): ΔL* −6.6, Δa* +9.1, Δb* +2.2. How erythema looks on
dark skin is not in that data (few dark crops): treat dark-skin lesion colours as a guess to set.

Everything is drawn from one ``numpy`` generator per seed: a layout depends only on (seed, size, params).
Written by hand because no library generates rash layouts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from skingen.config import Fraction, Positive
from skingen.errors import SkingenError


@dataclass(frozen=True)
class LayoutParams:
    """Parameters of :func:`make_layout`; ranges are (min, max), drawn uniformly per seed.
    Sizes are fractions of the image side."""

    ita: tuple[float, float] = (-30.0, 60.0)            #: healthy-skin ITA in degrees (see data/skintone.py)
    coverage: tuple[float, float] = (0.03, 0.13)        #: lesion fraction (10th-90th percentile of the measles crops)
    confluence: Fraction = 0.3                              #: share of the coverage made of confluent patches
    macule_radius: tuple[float, float] = (0.008, 0.025)  #: macule radius (at least 1 px)
    patch_radius: tuple[float, float] = (0.04, 0.1)     #: radius of a confluent patch (a cluster of macules)
    spread: Positive = 0.3                                  #: s.d. of lesion positions around the centre (>= 1: anywhere)
    skin_b: tuple[float, float] = (12.0, 20.0)           #: healthy-skin b*
    skin_a: tuple[float, float] = (8.0, 16.0)            #: healthy-skin a*
    lesion_delta: tuple[float, float, float] = (-6.6, 9.1, 2.2)  #: lesion − healthy colour in CIELAB

    def __post_init__(self) -> None:
        for name in ("ita", "coverage", "macule_radius", "patch_radius", "skin_b", "skin_a"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise SkingenError(f"layout {name}: min {lo} > max {hi}")
        if not (-90 <= self.ita[0] and self.ita[1] <= 90):
            raise SkingenError(f"layout ita must lie in -90..90 degrees, got {self.ita}")
        if not (0 <= self.coverage[0] and self.coverage[1] <= 0.9):
            raise SkingenError(f"layout coverage must lie in 0..0.9, got {self.coverage}")
        if not 0 <= self.confluence <= 1:
            raise SkingenError(f"layout confluence must lie in 0..1, got {self.confluence}")
        if self.macule_radius[0] <= 0 or self.patch_radius[0] <= 0 or self.spread <= 0:
            raise SkingenError("layout macule_radius, patch_radius and spread must be positive")
        if self.skin_b[0] <= 0:
            raise SkingenError("layout skin_b must be positive (ITA needs b* > 0)")


#: degrees that ``--layouts`` may ask beyond the training masks' healthy-skin tones before ``sample`` warns. Measured
#: (docs/tone.md): a DermDiff whose masks reached -62 painted -59 for -61 targets, one whose masks spanned 6..82 painted
#: +16 for -31 targets; where between the two the limit lies is not measured, so 10 is a guess on the safe side
TONE_MARGIN = 10.0


def tone_range_warning(ita: tuple[float, float], trained: np.ndarray) -> str | None:
    """The warning for layouts of healthy-skin ITA range ``ita`` (degrees) painted by a model whose training masks
    had the tones ``trained`` (``float [N]`` degrees, NaN ignored), or None when the range lies within
    :data:`TONE_MARGIN` of the trained tones' minimum and maximum."""
    tones = trained[np.isfinite(trained)]
    if not len(tones):
        return None
    lo, hi = float(tones.min()), float(tones.max())
    if ita[0] >= lo - TONE_MARGIN and ita[1] <= hi + TONE_MARGIN:
        return None
    inside = int(((tones >= ita[0]) & (tones <= ita[1])).sum())
    return (f"--layouts ask for healthy-skin ITA {ita[0]:g}..{ita[1]:g} degrees, but the run's training masks span "
            f"{lo:.0f}..{hi:.0f} ({inside} of {len(tones)} in the asked range): beyond them the model extrapolates "
            f"and may paint the tones it saw instead (docs/tone.md); train on crops that include the tones you ask for")


def layout_options(layouts: bool, ita: str | None, coverage: str | None, extra: list[str]):
    """The ``--layouts``, ``--ita``, ``--coverage`` and ``--layout KEY=VALUE`` options of ``sample`` / ``plan`` ->
    LayoutParams (None without ``--layouts``)."""
    from skingen.config import comma_list, load_config, with_options
    from skingen.data.skintone import ita_range

    if not layouts:
        if ita or coverage or extra:
            raise SkingenError("--ita, --coverage and --layout only apply with --layouts")
        return None
    if coverage is not None and ".." not in coverage:
        raise SkingenError(f"--coverage '{coverage}' must be MIN..MAX, e.g. 0.05..0.2")
    return load_config(LayoutParams, None, with_options(
        extra, ita=ita and list(ita_range(ita)), coverage=comma_list(coverage and coverage.replace("..", ","))))


@dataclass
class Layout:
    """``lesion`` bool ``[H,W]`` (True = ill skin); ``coloured`` uint8 ``[H,W,3]``; ``ita`` the healthy colour's
    ITA in degrees and ``coverage`` the lesion fraction, both measured on the rendered result;
    ``target_coverage`` the fraction aimed at."""

    lesion: np.ndarray
    coloured: np.ndarray
    ita: float
    coverage: float
    target_coverage: float


def make_layout(seed: int, size: int, params: LayoutParams = LayoutParams()) -> Layout:
    """The layout of ``seed`` at ``size``×``size`` px."""
    from skimage.color import rgb2lab

    from skingen.data.skintone import ita_degrees
    from skingen.data.masks import lab_to_rgb8

    if size < 8:
        raise SkingenError(f"layout size must be at least 8 px, got {size}")
    rng = np.random.default_rng([int(seed), 0x1A70])
    healthy = _healthy_lab(rng, params)
    target = rng.uniform(*params.coverage)
    lesion = _rash(rng, size, target, params)
    colours = lab_to_rgb8(np.stack([healthy, healthy + np.asarray(params.lesion_delta)]))
    rendered = rgb2lab(colours[:1][None].astype(np.float64) / 255.0)[0, 0]
    return Layout(lesion=lesion, coloured=colours[lesion.astype(np.intp)],
                  ita=float(ita_degrees(rendered[0], rendered[2])), coverage=float(lesion.mean()),
                  target_coverage=float(target))


def _healthy_lab(rng: np.random.Generator, p: LayoutParams) -> np.ndarray:
    """A healthy-skin CIELAB colour with ITA in ``p.ita``: L* = 50 + b*·tan(ITA), L* kept in 15..92
    by moving b* along the same ITA line when needed."""
    ita = math.radians(rng.uniform(*p.ita))
    b = rng.uniform(*p.skin_b)
    a = rng.uniform(*p.skin_a)
    L = 50 + b * math.tan(ita)
    if not 15 <= L <= 92:
        L = min(92.0, max(15.0, L))
        b = (L - 50) / math.tan(ita)
    return np.array([L, a, b])


def _rash(rng: np.random.Generator, size: int, target: float, p: LayoutParams) -> np.ndarray:
    lesion = np.zeros((size, size), bool)
    centre = rng.uniform(0.2, 0.8, 2) * size
    budget = target * size * size
    patch_budget = p.confluence * budget
    for _ in range(2000):  # a safety bound; the targets are reached long before
        area = lesion.sum()
        if area >= budget - 0.5 * math.pi * max(1.0, p.macule_radius[0] * size) ** 2:
            break
        in_patch_phase = area < patch_budget
        shape = _patch(rng, size, centre, p) if in_patch_phase else _macule(rng, size, centre, p)
        added = (shape & ~lesion).sum()
        if area + added > budget + 0.5 * shape.sum():
            if in_patch_phase:
                patch_budget = 0  # patches too big for what is left: finish with macules
            continue
        lesion |= shape
    return lesion


def _position(rng: np.random.Generator, size: int, centre: np.ndarray, spread: float) -> np.ndarray:
    if spread >= 1:
        return rng.uniform(0, size, 2)
    for _ in range(100):
        pos = rng.normal(centre, spread * size)
        if (pos >= 0).all() and (pos < size).all():
            return pos
    return centre


def _ellipse(rng: np.random.Generator, size: int, pos: np.ndarray, radius: float) -> np.ndarray:
    from skimage.draw import ellipse

    radius = max(1.0, radius)
    shape = np.zeros((size, size), bool)
    rr, cc = ellipse(pos[0], pos[1], radius, radius * rng.uniform(0.6, 1.0), shape=shape.shape,
                     rotation=rng.uniform(0, math.pi))
    shape[rr, cc] = True
    if not shape.any():  # sub-pixel ellipse: one pixel
        shape[int(pos[0]), int(pos[1])] = True
    return shape


def _macule(rng: np.random.Generator, size: int, centre: np.ndarray, p: LayoutParams) -> np.ndarray:
    return _ellipse(rng, size, _position(rng, size, centre, p.spread), rng.uniform(*p.macule_radius) * size)


def _patch(rng: np.random.Generator, size: int, centre: np.ndarray, p: LayoutParams) -> np.ndarray:
    """Confluent patch: 4-8 overlapping ellipses within ``patch_radius`` of a point."""
    pos = _position(rng, size, centre, p.spread)
    radius = rng.uniform(*p.patch_radius) * size
    shape = np.zeros((size, size), bool)
    for _ in range(int(rng.integers(4, 9))):
        offset = rng.normal(0, radius / 2, 2)
        shape |= _ellipse(rng, size, np.clip(pos + offset, 0, size - 1), rng.uniform(0.3, 0.6) * radius)
    return shape
