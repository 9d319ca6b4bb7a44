"""Choosing square crops in a photo and judging their quality.

A box is ``(x0, y0, side)`` in photo pixels. With a lesion mask, candidates are a half-overlapping
grid of boxes at several sides (fractions of the photo's short side) plus boxes centred on the
largest lesion components at a few margins; a candidate is kept when its lesion fraction is at
least ``min_lesion_fraction``, candidates are ranked by lesion fraction (capped at
``target_lesion_fraction`` so crops keep some healthy skin around the lesion, larger box first on
ties) and picked greedily while their overlap (IoU) with already picked boxes stays at most
``max_overlap``, up to ``max_per_photo``. Without a mask: one centred box of the short side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import numpy as np

from skingen.config import Fraction, NonNegative, PositiveInt, Range

Box = tuple[int, int, int]


@dataclass(frozen=True)
class CropConfig:
    scales: tuple[float, ...] = (1.0, 0.65, 0.4)  # box sides as fractions of the short side
    component_margins: tuple[float, ...] = (1.6, 2.6)  # box side / component bbox size
    max_components: PositiveInt = 3
    min_lesion_fraction: Fraction = 0.03
    target_lesion_fraction: Fraction = 0.5
    max_overlap: Fraction = 0.3
    max_per_photo: PositiveInt = 4
    max_upscale: Annotated[float, Range(1, 16)] = 2.0  # a box smaller than size / max_upscale is never used


def box_iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[2], b[1] + b[2]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] ** 2 + b[2] ** 2 - inter)


def centred_box(h: int, w: int) -> Box:
    side = min(h, w)
    return ((w - side) // 2, (h - side) // 2, side)


def _positions(length: int, side: int) -> list[int]:
    if side >= length:
        return [0]
    n = math.ceil((length - side) / (side / 2)) + 1
    return sorted({round(i * (length - side) / (n - 1)) for i in range(n)})


def _clamp_box(cx: float, cy: float, side: int, h: int, w: int) -> Box:
    side = min(side, h, w)
    x0 = int(round(min(max(cx - side / 2, 0), w - side)))
    y0 = int(round(min(max(cy - side / 2, 0), h - side)))
    return (x0, y0, side)


def lesion_boxes(lesion: np.ndarray, min_side: int, cfg: CropConfig) -> list[tuple[Box, float]]:
    """Pick boxes on a ``bool [H,W]`` lesion mask (module docstring) -> [(box, lesion fraction)]."""
    from skimage.measure import label, regionprops

    h, w = lesion.shape
    short = min(h, w)
    integral = np.pad(lesion.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))

    def fraction(b: Box) -> float:
        x0, y0, s = b
        total = integral[y0 + s, x0 + s] - integral[y0, x0 + s] - integral[y0 + s, x0] + integral[y0, x0]
        return float(total) / (s * s)

    sides = sorted({round(f * short) for f in cfg.scales if round(f * short) >= min_side} or {short}, reverse=True)
    candidates: set[Box] = set()
    for side in sides:
        side = min(side, short)
        candidates.update((x, y, side) for y in _positions(h, side) for x in _positions(w, side))
    regions = sorted(regionprops(label(lesion)), key=lambda r: -r.area)[: cfg.max_components]
    for r in regions:
        y0, x0, y1, x1 = r.bbox
        cy, cx = r.centroid
        for m in cfg.component_margins:
            side = int(round(max(y1 - y0, x1 - x0) * m))
            if side >= min_side:
                candidates.add(_clamp_box(cx, cy, side, h, w))
    scored = [(b, fraction(b)) for b in candidates]
    scored = [(b, f) for b, f in scored if f >= cfg.min_lesion_fraction]
    scored.sort(key=lambda t: (-min(t[1], cfg.target_lesion_fraction), -t[0][2], t[0][1], t[0][0]))
    picked: list[tuple[Box, float]] = []
    for b, f in scored:
        if all(box_iou(b, p) <= cfg.max_overlap for p, _ in picked):
            picked.append((b, f))
            if len(picked) >= cfg.max_per_photo:
                break
    return picked


@dataclass(frozen=True)
class QualityConfig:
    # Calibrated on the measles crops, where smooth skin is often low in both yet perfectly usable:
    # these catch only featureless (flat colour, over/under-exposed) and strongly defocused crops.
    min_contrast: NonNegative = 4.0  # std of 8-bit gray levels in the output crop
    min_sharpness: NonNegative = 1.0  # variance of the Laplacian of 8-bit gray levels in the output crop


def crop_quality(crop: np.ndarray) -> tuple[float, float]:
    """(contrast, sharpness) of ``uint8 [H,W,3]``: gray-level std and variance of the Laplacian."""
    from scipy.ndimage import laplace

    gray = crop.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return float(gray.std()), float(laplace(gray).var())


def quality_problem(crop: np.ndarray, cfg: QualityConfig) -> str | None:
    """A reason to drop the crop, or None when it passes."""
    contrast, sharpness = crop_quality(crop)
    if contrast < cfg.min_contrast:
        return f"low contrast ({contrast:.1f} < {cfg.min_contrast})"
    if sharpness < cfg.min_sharpness:
        return f"blurred (Laplacian variance {sharpness:.1f} < {cfg.min_sharpness})"
    return None
