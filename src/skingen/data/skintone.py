"""Skin tone from CIELAB: the Individual Typology Angle (ITA) and its categories.

ITA = arctan((L* - 50) / b*) * 180 / pi (Chardon et al. 1991), with L*, b* from CIE 1976 L*a*b*
(D65, as computed by ``skimage.color.rgb2lab`` on sRGB in [0, 1]: L* in [0, 100], *not* OpenCV's
8-bit scaling where L is 0..255 and a/b are offset by 128). We evaluate it as ``atan2(L*-50, b*)``,
which equals the formula for b* > 0 and stays finite when b* is ~0 (it tends to +-90 deg).

The Fitzpatrick types attached to the categories are the commonly used *approximate* mapping, not a
clinical Fitzpatrick phototype (which is about how skin reacts to sun, not its colour in a photo).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# (lower bound in degrees, name, approximate Fitzpatrick type). Ordered from lightest.
ITA_CATEGORIES: tuple[tuple[float, str, str], ...] = (
    (55.0, "very light", "I"),
    (41.0, "light", "II"),
    (28.0, "intermediate", "III"),
    (10.0, "tan", "IV"),
    (-30.0, "brown", "V"),
    (-np.inf, "dark", "VI"),
)
UNKNOWN = "unknown"  # category when ITA is not measurable (too little healthy skin, or b* <= 0)


def ita_degrees(L: np.ndarray | float, b: np.ndarray | float) -> np.ndarray | float:
    """ITA in degrees from CIELAB L* (0..100) and b*."""
    out = np.degrees(np.arctan2(np.asarray(L, dtype=np.float64) - 50.0, np.asarray(b, dtype=np.float64)))
    return float(out) if np.ndim(out) == 0 else out


def coloured_mask_ita(coloured: np.ndarray, lesion: np.ndarray) -> float:
    """Healthy-skin ITA in degrees of a coloured mask ``uint8 [H,W,3]`` (:func:`skingen.data.masks.coloured_mask`,
    a synthesised layout): its median colour outside the lesion ``bool [H,W]`` (all pixels if the lesion is all)."""
    from skimage.color import rgb2lab

    healthy = coloured[~lesion] if (~lesion).any() else coloured.reshape(-1, 3)
    L, _, b = rgb2lab(np.median(healthy, 0)[None, None].astype(np.float64) / 255.0)[0, 0]
    return float(ita_degrees(L, b))


def ita_category(ita: float) -> str:
    """Six ITA categories: very light > 55, light 41-55, intermediate 28-41, tan 10-28, brown -30-10,
    dark < -30; ``'unknown'`` for NaN (not measurable)."""
    return _lookup(ita, 1)


def fitzpatrick_approx(ita: float) -> str:
    """The commonly used *approximate* ITA -> Fitzpatrick I-VI mapping (not a clinical Fitzpatrick type);
    ``'unknown'`` for NaN."""
    return _lookup(ita, 2)


def _lookup(ita: float, column: int) -> str:
    """Column ``column`` of the first ``ITA_CATEGORIES`` row whose lower bound ``ita`` exceeds."""
    if math.isnan(ita):
        return UNKNOWN
    row = next((r for r in ITA_CATEGORIES if ita > r[0]), ITA_CATEGORIES[-1])
    return row[column]


def ita_range(text: str) -> tuple[float, float]:
    """An ITA range from ``'MIN..MAX'`` (degrees, e.g. ``'-50..-30'``) or a category name
    (``'brown'`` -> (-30, 10); the darkest and lightest categories end at -90 and 90)."""
    from skingen.errors import SkingenError

    text = str(text).strip()
    names = [r[1] for r in ITA_CATEGORIES]
    if text.lower() in names:
        i = names.index(text.lower())
        lo = max(-90.0, ITA_CATEGORIES[i][0])
        return lo, (90.0 if i == 0 else ITA_CATEGORIES[i - 1][0])
    lo_text, sep, hi_text = text.partition("..")
    try:
        lo, hi = float(lo_text), float(hi_text)
    except ValueError:
        lo = hi = math.nan
    if not sep or math.isnan(lo) or math.isnan(hi) or not -90 <= lo <= hi <= 90:
        raise SkingenError(f"ITA range '{text}' must be MIN..MAX in degrees with -90 <= MIN <= MAX <= 90 "
                           f"(e.g. -50..-30) or a category: {', '.join(names)}")
    return lo, hi


@dataclass(frozen=True)
class SkinTone:
    """Median CIELAB colour of an image's healthy skin and its ITA (NaN when not measurable)."""

    L: float
    a: float
    b: float
    ita: float
    healthy_fraction: float  # share of the image's pixels used (healthy skin)

    @property
    def category(self) -> str:
        return ita_category(self.ita)

    @property
    def fitzpatrick(self) -> str:
        return fitzpatrick_approx(self.ita)


def measure_skin_tone(image: np.ndarray, lesion: np.ndarray | None = None, lab: np.ndarray | None = None,
                      min_healthy_fraction: float = 0.05, exclude_lesion: bool = True,
                      work_size: int | None = 128) -> SkinTone:
    """Skin tone of ``uint8 [H,W,3]`` sRGB from its healthy-skin pixels.

    Healthy skin = rule-based skin detection (:func:`skingen.data.masks.skin_mask`, which drops
    background such as clothes and walls) minus the lesion mask ``bool [H,W]`` (True = ill skin) when
    ``exclude_lesion``. L*, a*, b* are medians over those pixels (robust to shadows, hair, specular
    highlights); ITA is computed from the median L* and b*. With fewer than ``min_healthy_fraction`` of
    the pixels left, every value is NaN (category ``'unknown'``); with a median b* <= 0 only ITA is NaN.
    ``lab`` (``float [H,W,3]``, from ``skimage.color.rgb2lab`` on [0, 1] floats) can be passed to avoid
    recomputing it. An image whose long side exceeds ``work_size`` is measured on a box-downscaled copy:
    skin detection is most of the cost, and a median over thousands of pixels hardly moves (on the demo
    photos the ITA accuracy is the same, bench/ita_demo.py).
    """
    from skingen.data.masks import downscale, resize_mask, skin_mask

    if work_size and max(image.shape[:2]) > work_size:
        image = downscale(image, work_size)
        lesion = resize_mask(lesion, image.shape[:2]) if lesion is not None else None
        lab = None
    if lab is None:
        from skimage.color import rgb2lab

        lab = rgb2lab(image.astype(np.float32) / 255.0)
    healthy = skin_mask(image, lab=lab)
    if lesion is not None and exclude_lesion:
        healthy &= ~lesion
    fraction = float(healthy.mean())
    if fraction < min_healthy_fraction or not healthy.any():
        return SkinTone(math.nan, math.nan, math.nan, math.nan, fraction)
    L, a, b = (float(np.median(lab[..., c][healthy])) for c in range(3))  # per channel: faster than axis=0
    # ITA assumes yellowish skin (b* > 0). With b* <= 0 (a pink/purple cast or diffuse erythema taken for
    # healthy skin) atan2 leaves [-90, 90] and tiny changes of b* flip it between "very light" and "dark"
    # (seen on measles crops of one photo: 165 and -139 degrees), so it is reported as not measurable.
    return SkinTone(L, a, b, ita_degrees(L, b) if b > 0 else math.nan, fraction)
