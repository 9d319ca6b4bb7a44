import math

import numpy as np
import pytest

from skingen.analysis.colour import (OutlierConfig, channel_histogram, fit_histogram_gmm, flag_outliers,
                                     hsv_saturation, image_stats)
from skingen.errors import SkingenError


def test_stats_of_a_two_colour_image():
    image = np.zeros((16, 16, 3), np.uint8)
    image[:, :8] = (200, 100, 50)
    image[:, 8:] = (100, 50, 25)
    stats, hist = image_stats(image)
    assert stats["rgb_r_mean"] == 150 and stats["rgb_g_mean"] == 75 and stats["rgb_b_mean"] == 37.5
    assert stats["rgb_r_std"] == 50 and stats["rgb_g_std"] == 25 and stats["rgb_b_std"] == 12.5
    assert abs(stats["saturation_mean"] - 0.75) < 1e-6  # (max - min) / max of both colours
    assert hist.shape == (3, 256) and hist[0, 200] == 128 and hist[0, 100] == 128 and hist.sum() == 3 * 256
    assert math.isnan(stats["lesion_fraction"])


def test_contrast_sharpness_and_lab_of_a_single_bright_pixel():
    image = np.zeros((16, 16, 3), np.uint8)
    image[5, 7] = 255
    stats, _ = image_stats(image, np.zeros((16, 16), bool))
    # Laplacian: -4*255 at the pixel, +255 at its 4 neighbours, 0 elsewhere; its mean is 0.
    assert abs(stats["sharpness"] - (1020**2 + 4 * 255**2) / 256) < 0.5
    assert abs(stats["contrast"] - 255 * math.sqrt(1 / 256 - 1 / 256**2)) < 0.01
    assert abs(stats["lab_L_mean"] - 100 / 256) < 1e-3  # black is L* 0, white L* 100
    assert stats["lesion_fraction"] == 0 and math.isnan(stats["ita"])  # black and white are not skin


def test_saturation_matches_scikit_image():
    from skimage.color import rgb2hsv

    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    image[0, 0] = 0
    assert np.allclose(hsv_saturation(image), rgb2hsv(image)[..., 1], atol=1e-6)
    with pytest.raises(SkingenError):
        image_stats(image.astype(np.float32))


def test_mixture_recovers_planted_gaussians():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(60, 10, 30000), rng.normal(130, 12, 50000), rng.normal(200, 8, 20000)])
    image = np.clip(np.round(values), 0, 255).astype(np.uint8).reshape(-1, 100, 1).repeat(3, axis=2)
    comps = fit_histogram_gmm(channel_histogram(image)[0], 3, n_samples=20000, seed=0)
    for c, (w, m, s) in zip(comps, [(0.3, 60, 10), (0.5, 130, 12), (0.2, 200, 8)]):
        assert abs(c.mean - m) < 1.5 and abs(c.std - s) < 1.5 and abs(c.weight - w) < 0.03, comps
    assert fit_histogram_gmm(channel_histogram(image)[0], 3, seed=0) == comps  # seeded


@pytest.mark.parametrize("cfg", [OutlierConfig(), OutlierConfig(method="iqr")])
def test_outliers_flag_planted_values_and_nothing_on_a_clean_set(cfg):
    clean = np.random.default_rng(2).normal(50, 5, 200)
    low, high, _ = flag_outliers(clean, cfg)
    assert not low.any() and not high.any()
    planted = np.concatenate([clean, [5.0, 110.0, 120.0, np.nan]])
    low, high, (lo, hi) = flag_outliers(planted, cfg)
    assert np.flatnonzero(low).tolist() == [200] and np.flatnonzero(high).tolist() == [201, 202]
    assert 5 < lo < 40 and 60 < hi < 110
    with pytest.raises(SkingenError, match="outliers.method"):
        OutlierConfig(method="zscore")
