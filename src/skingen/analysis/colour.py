"""Per-image colour statistics, per-channel Gaussian mixtures and outlier rules for ``skingen analyze``.

Colour spaces: CIELAB is ``skimage.color.rgb2lab`` on sRGB floats in [0, 1] (D65 white point; L* in
0..100, a*/b* roughly -100..100) — never OpenCV's 8-bit Lab, where L is scaled to 0..255 and a/b are
offset by 128. HSV saturation is ``skimage.color.rgb2hsv`` (0..1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from skingen.config import Positive
from skingen.data.skintone import measure_skin_tone
from skingen.data.crops import crop_quality
from skingen.errors import SkingenError

# Columns of stats.csv computed per image (in this order), after id/image/label/split.
STAT_COLUMNS = ("rgb_r_mean", "rgb_g_mean", "rgb_b_mean", "rgb_r_std", "rgb_g_std", "rgb_b_std",
                "saturation_mean", "lab_L_mean", "lab_a_mean", "lab_b_mean", "contrast", "sharpness",
                "lesion_fraction", "healthy_fraction", "skin_L", "skin_a", "skin_b", "ita")


def image_stats(image: np.ndarray, lesion: np.ndarray | None = None, min_healthy_fraction: float = 0.05,
                exclude_lesion: bool = True) -> tuple[dict[str, float], np.ndarray]:
    """Statistics of one ``uint8 [H,W,3]`` sRGB image with an optional lesion mask ``bool [H,W]``.

    Returns ({column: value} for :data:`STAT_COLUMNS`, NaN where not measurable) and the per-channel
    histogram ``int64 [3, 256]`` of its 8-bit values. RGB means/stds are in 0..255, saturation in 0..1,
    L*/a*/b* means over all pixels; contrast and sharpness are the gray-level std and the variance of
    the Laplacian (:func:`skingen.data.crops.crop_quality`); ``skin_*``/``ita`` come from healthy skin only
    (:func:`skingen.data.skintone.measure_skin_tone`).
    """
    from skimage.color import rgb2lab

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise SkingenError(f"image_stats expects uint8 [H,W,3], got {image.dtype} {image.shape}")
    rgb = image.astype(np.float32) / 255.0
    lab = rgb2lab(rgb)
    tone = measure_skin_tone(image, lesion, lab=lab, min_healthy_fraction=min_healthy_fraction,
                             exclude_lesion=exclude_lesion)
    contrast, sharpness = crop_quality(image)
    hist = channel_histogram(image)
    # Moments from the histogram: exact for 8-bit values and faster than on the float image.
    values = np.arange(256, dtype=np.float64)
    n = hist.sum(1)
    means = hist @ values / n
    stds = np.sqrt(np.maximum(hist @ values**2 / n - means**2, 0.0))
    lab_means = [float(lab[..., c].mean(dtype=np.float64)) for c in range(3)]  # per channel: ~15x faster than mean(0)
    stats = {
        "rgb_r_mean": means[0], "rgb_g_mean": means[1], "rgb_b_mean": means[2],
        "rgb_r_std": stds[0], "rgb_g_std": stds[1], "rgb_b_std": stds[2],
        "saturation_mean": float(hsv_saturation(image).mean()),
        "lab_L_mean": lab_means[0], "lab_a_mean": lab_means[1], "lab_b_mean": lab_means[2],
        "contrast": contrast, "sharpness": sharpness,
        "lesion_fraction": float(lesion.mean()) if lesion is not None else math.nan,
        "healthy_fraction": tone.healthy_fraction,
        "skin_L": tone.L, "skin_a": tone.a, "skin_b": tone.b, "ita": tone.ita,
    }
    return {k: float(v) for k, v in stats.items()}, hist


def hsv_saturation(image: np.ndarray) -> np.ndarray:
    """HSV saturation ``float32 [H,W]`` in [0, 1] of ``uint8 [H,W,3]``.

    Written out because it is one line and ``skimage.color.rgb2hsv`` also computes hue and value,
    which made it a third of the analysis time per image; the test checks the two agree."""
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    hi = np.maximum(np.maximum(r, g), b).astype(np.float32)  # 40x faster than image.max(axis=2)
    lo = np.minimum(np.minimum(r, g), b).astype(np.float32)
    return np.divide(hi - lo, hi, out=np.zeros_like(hi), where=hi > 0)


def channel_histogram(image: np.ndarray) -> np.ndarray:
    """Counts of each 8-bit value per channel: ``uint8 [H,W,3]`` -> ``int64 [3, 256]``."""
    return np.stack([np.bincount(image[..., c].ravel(), minlength=256) for c in range(3)]).astype(np.int64)


@dataclass(frozen=True)
class GaussianComponent:
    weight: float
    mean: float
    std: float


def fit_histogram_gmm(counts: np.ndarray, n_components: int = 3, n_samples: int = 20000,
                      seed: int = 0) -> list[GaussianComponent]:
    """Fit a 1-D Gaussian mixture (scikit-learn) to the values counted in ``counts`` ``[256]``.

    scikit-learn cannot weight samples, so we draw ``n_samples`` values from the histogram (the same as
    drawing pixels at random with replacement), each jittered uniformly within its 8-bit bin so the
    mixture does not lock onto integer values. Components are sorted by mean.
    """
    from sklearn.mixture import GaussianMixture

    counts = np.asarray(counts, dtype=np.float64)
    if counts.sum() <= 0:
        raise SkingenError("cannot fit a mixture to an empty histogram")
    rng = np.random.default_rng(seed)
    values = rng.choice(len(counts), size=n_samples, p=counts / counts.sum()) + rng.uniform(-0.5, 0.5, n_samples)
    gmm = GaussianMixture(n_components=n_components, random_state=seed, n_init=2).fit(values[:, None])
    comps = [GaussianComponent(float(w), float(m[0]), float(math.sqrt(c.ravel()[0])))
             for w, m, c in zip(gmm.weights_, gmm.means_, gmm.covariances_)]
    return sorted(comps, key=lambda c: c.mean)


@dataclass(frozen=True)
class OutlierConfig:
    method: str = "robust_z"  # "robust_z": |x - median| / (1.4826 MAD) > z;  "iqr": outside Tukey fences
    z: Positive = 3.5  # Iglewicz & Hoaglin's cut-off for the modified z-score
    iqr_k: Positive = 3.0  # Tukey's "far out" fences: Q1 - k IQR, Q3 + k IQR

    def __post_init__(self) -> None:
        if self.method not in ("robust_z", "iqr"):
            raise SkingenError(f"outliers.method must be robust_z or iqr, got '{self.method}'")


def outlier_bounds(values: np.ndarray, cfg: OutlierConfig = OutlierConfig()) -> tuple[float, float]:
    """(low, high) limits; values strictly outside are outliers. NaNs are ignored.

    A robust rule (median/MAD or quartiles) so the outliers themselves do not widen the limits. When
    the spread is zero (most values identical) the limits collapse onto the median, so any differing
    value is flagged: on such data that is the honest answer.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return (-math.inf, math.inf)
    if cfg.method == "robust_z":
        med = float(np.median(v))
        spread = 1.4826 * float(np.median(np.abs(v - med)))  # MAD scaled to the std of a normal
        return med - cfg.z * spread, med + cfg.z * spread
    q1, q3 = (float(q) for q in np.percentile(v, [25, 75]))
    return q1 - cfg.iqr_k * (q3 - q1), q3 + cfg.iqr_k * (q3 - q1)


def flag_outliers(values: np.ndarray, cfg: OutlierConfig = OutlierConfig()) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """(low ``bool [N]``, high ``bool [N]``, (low limit, high limit)) by :func:`outlier_bounds`; NaN is never flagged."""
    v = np.asarray(values, dtype=np.float64)
    lo, hi = outlier_bounds(v, cfg)
    with np.errstate(invalid="ignore"):
        return v < lo, v > hi, (lo, hi)
