"""Masks: skin detection, the training-free auto lesion mask, and coloured masks.

All functions take ``uint8 [H,W,3]`` sRGB images and return ``bool [H,W]`` masks (True = skin /
lesion) or ``uint8 [H,W,3]`` coloured masks. CIELAB is ``skimage.color.rgb2lab`` (D65; L* 0..100).

Auto lesion mask (erythema), a training-free method
---------------------------------------------------
1. Work on a copy whose long side is at most ``work_size`` px (speed; the mask is upsampled back).
2. **Skin**: pixels with skin-like chroma and hue in CIELAB (chroma >= ``skin_min_chroma``, hue angle
   in ``skin_hue``, L* in ``skin_L``) and a YCbCr red-difference Cr >= ``skin_min_cr``; closed, small
   specks removed and holes filled (strongly red lesions inside skin count as skin). If less than
   ``skin_min_fraction`` of the image is skin (colour casts, extreme exposure) the whole image is used.
3. **Redness**: CIELAB a* (or log(R/G), or their z-scored mean), lightly smoothed.
4. **Local background**: redness of the surrounding *skin only*, a normalised Gaussian blur
   ``blur(a*·skin) / blur(skin)`` with sigma = ``background_sigma`` × short side. Subtracting it removes
   shading, global colour casts and the person's skin tone, so fine macules stand out.
5. **Per-image normalisation**: robust z-score of the difference over skin pixels (median, 1.4826·MAD).
6. **Threshold**: lesion where z > ``z_threshold`` *and* the difference exceeds ``min_delta`` (so clean
   skin with tiny noise stays clean), inside skin; components smaller than ``min_area`` px removed.
Known limits: lips, knuckles and sunburn are red too; the method does not know about faces; pigmented
(brown) lesions such as naevi are not erythema and are mostly missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np

from skingen.config import Fraction, NonNegative, NonNegativeInt, Positive, Range
from skingen.imageio import resize_image


@dataclass(frozen=True)
class AutoMaskConfig:
    feature: str = "a"  # "a" (CIELAB a*), "logrg" (log R/G) or "both"
    work_size: Annotated[int, Range(16, 8192)] = 512
    background_sigma: Positive = 0.06
    z_threshold: NonNegative = 2.0
    min_delta: NonNegative = 3.0  # in a* units (log R/G is rescaled to comparable units)
    min_area: NonNegativeInt = 4
    skin_min_chroma: NonNegative = 6.0
    skin_hue: tuple[float, float] = (-10.0, 80.0)
    skin_L: tuple[float, float] = (12.0, 98.0)
    skin_min_cr: Annotated[float, Range(0, 255)] = 132.0
    skin_min_fraction: Fraction = 0.05


def _lab(image: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(image.astype(np.float32) / 255.0).astype(np.float32)


def skin_mask(image: np.ndarray, cfg: AutoMaskConfig = AutoMaskConfig(), lab: np.ndarray | None = None) -> np.ndarray:
    """Rule-based skin detection on ``uint8 [H,W,3]`` -> ``bool [H,W]`` (step 2 of the module docstring)."""
    from skimage import morphology
    from skimage.color import rgb2ycbcr

    lab = _lab(image) if lab is None else lab
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    chroma = np.hypot(a, b)
    hue = np.degrees(np.arctan2(b, a))
    cr = rgb2ycbcr(image)[..., 2]
    skin = (
        (chroma >= cfg.skin_min_chroma)
        & (hue >= cfg.skin_hue[0]) & (hue <= cfg.skin_hue[1])
        & (L >= cfg.skin_L[0]) & (L <= cfg.skin_L[1])
        & (cr >= cfg.skin_min_cr)
    )
    area = skin.size
    skin = morphology.closing(skin, morphology.disk(2))  # grayscale closing: no loss at the borders
    skin = morphology.remove_small_objects(skin, max_size=max(int(0.002 * area), 8))
    skin = morphology.remove_small_holes(skin, max_size=max(int(0.01 * area), 16))
    return skin


def _redness(image: np.ndarray, lab: np.ndarray, feature: str) -> np.ndarray:
    a = lab[..., 1]
    if feature == "a":
        return a
    rgb = image.astype(np.float32) + 1.0
    logrg = np.log(rgb[..., 0] / rgb[..., 1]) * 40.0  # ~ a* units: log(R/G)=0.25 maps to ~10
    if feature == "logrg":
        return logrg
    if feature == "both":
        return 0.5 * (a + logrg)
    raise ValueError(f"unknown auto-mask feature '{feature}' (use a, logrg or both)")


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize ``bool [H,W]`` to ``shape`` (H, W): area average (bilinear when enlarging), then >= 0.5."""
    if mask.shape == shape:
        return mask
    return resize_image(mask.astype(np.float32), shape, "box" if shape[0] <= mask.shape[0] else "bilinear") >= 0.5


def downscale(image: np.ndarray, work_size: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = work_size / max(h, w)
    if scale >= 1:
        return image
    return resize_image(image, (max(1, round(h * scale)), max(1, round(w * scale))), "box")


def auto_lesion_mask(image: np.ndarray, cfg: AutoMaskConfig = AutoMaskConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Training-free erythema mask (module docstring). ``uint8 [H,W,3]`` -> (lesion, skin), both ``bool [H,W]``."""
    from scipy.ndimage import gaussian_filter
    from skimage import morphology

    small = downscale(image, cfg.work_size)
    lab = _lab(small)
    skin = skin_mask(small, cfg, lab)
    if skin.mean() < cfg.skin_min_fraction:
        skin = np.ones_like(skin)
    red = gaussian_filter(_redness(small, lab, cfg.feature), 0.7)
    sigma = cfg.background_sigma * min(small.shape[:2])
    w = skin.astype(np.float32)
    background = gaussian_filter(red * w, sigma) / np.maximum(gaussian_filter(w, sigma), 1e-3)
    diff = red - background
    d = diff[skin]
    med = float(np.median(d))
    mad = float(np.median(np.abs(d - med))) * 1.4826
    z = (diff - med) / max(mad, 0.5)
    lesion = (z > cfg.z_threshold) & (diff - med > cfg.min_delta) & skin
    lesion = morphology.remove_small_objects(lesion, max_size=max(cfg.min_area - 1, 0))
    shape = image.shape[:2]
    return resize_mask(lesion, shape), resize_mask(skin, shape)


def dominant_colours(image: np.ndarray, lesion: np.ndarray, skin: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Median CIELAB colour of lesion pixels and of healthy-skin pixels -> two ``float [3]`` Lab colours.

    Healthy skin is ``skin & ~lesion`` when ``skin`` is given and covers at least 1% of the image,
    otherwise ``~lesion``. A region with no pixels falls back to the other region's colour (so a crop
    without lesion gets a uniform healthy colour)."""
    lab = _lab(image)
    healthy = ~lesion
    if skin is not None and (skin & ~lesion).mean() >= 0.01:
        healthy = skin & ~lesion
    h_col = np.median(lab[healthy], axis=0) if healthy.any() else np.median(lab.reshape(-1, 3), axis=0)
    l_col = np.median(lab[lesion], axis=0) if lesion.any() else h_col
    return l_col, h_col


def lab_to_rgb8(lab: np.ndarray) -> np.ndarray:
    """CIELAB ``float [...,3]`` -> sRGB ``uint8 [...,3]`` (out-of-gamut values clipped)."""
    from skimage.color import lab2rgb

    arr = np.asarray(lab, dtype=np.float64)
    rgb = lab2rgb(arr.reshape(-1, 1, 3)).reshape(arr.shape)
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def coloured_mask(image: np.ndarray, lesion: np.ndarray, skin: np.ndarray | None = None) -> np.ndarray:
    """DermGAN's coloured mask: lesion filled with its median Lab colour, the rest with healthy skin's.

    ``image uint8 [H,W,3]``, ``lesion bool [H,W]`` -> ``uint8 [H,W,3]``."""
    l_col, h_col = dominant_colours(image, lesion, skin)
    colours = lab_to_rgb8(np.stack([h_col, l_col]))
    return colours[lesion.astype(np.intp)]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
