"""Skin tone from CIELAB: the Individual Typology Angle (ITA) and its categories.

ITA = arctan((L* - 50) / b*) * 180 / pi (Chardon et al. 1991), with L*, b* from CIE 1976 L*a*b*
(D65, as computed by ``skimage.color.rgb2lab`` on sRGB in [0, 1]: L* in [0, 100], *not* OpenCV's
8-bit scaling where L is 0..255 and a/b are offset by 128). We evaluate it as ``atan2(L*-50, b*)``,
which equals the formula for b* > 0 and stays finite when b* is ~0 (it tends to +-90 deg).
"""

from __future__ import annotations

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


def ita_degrees(L: np.ndarray | float, b: np.ndarray | float) -> np.ndarray | float:
    """ITA in degrees from CIELAB L* (0..100) and b*."""
    out = np.degrees(np.arctan2(np.asarray(L, dtype=np.float64) - 50.0, np.asarray(b, dtype=np.float64)))
    return float(out) if np.ndim(out) == 0 else out


def ita_category(ita: float) -> str:
    """Six ITA categories: very light > 55, light 41-55, intermediate 28-41, tan 10-28, brown -30-10, dark < -30."""
    for lower, name, _ in ITA_CATEGORIES:
        if ita > lower:
            return name
    return ITA_CATEGORIES[-1][1]


def fitzpatrick_approx(ita: float) -> str:
    """The commonly used *approximate* ITA -> Fitzpatrick I-VI mapping (not a clinical Fitzpatrick type)."""
    for lower, _, fitz in ITA_CATEGORIES:
        if ita > lower:
            return fitz
    return ITA_CATEGORIES[-1][2]
