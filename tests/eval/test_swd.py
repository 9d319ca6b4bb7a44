import numpy as np
import pytest
import torch

from skingen.eval.swd import SwdConfig, SwdDescriptors, laplacian_pyramid, resolutions, swd
from tests.eval.conftest import skin_images


def _batch(images):
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def _swd(a, b, cfg=SwdConfig(per_image=64), batch=8):
    size = a.shape[-1]
    descs = []
    for x in (a, b):
        d = SwdDescriptors(size, cfg, seed=0)
        for start in range(0, len(x), batch):
            d.add(start, x[start:start + batch])
        descs.append(d.finish())
    return swd(descs[0], descs[1], resolutions(size, cfg.min_resolution), cfg, seed=0)


def test_pyramid_levels_and_flat_image():
    assert resolutions(64) == [64, 32, 16] and resolutions(100) == [100, 50, 25]
    flat = np.full((2, 3, 32, 32), 77.0, np.float32)
    pyr = laplacian_pyramid(flat, 2)
    assert [p.shape[-1] for p in pyr] == [32, 16]
    assert np.abs(pyr[0]).max() < 1e-4  # no detail in a flat image, borders included
    assert np.allclose(pyr[1], 77.0)  # the low-pass residual keeps the colour


def test_identical_sets_give_zero_and_batch_size_does_not_matter():
    a = _batch(skin_images(12, 32, seed=0))
    assert _swd(a, a)["mean"] == 0.0
    b = _batch(skin_images(12, 32, seed=1))
    assert _swd(a, b, batch=5) == _swd(a, b, batch=12)


def test_swd_grows_with_a_colour_shift_and_karras_normalisation_hides_it():
    a = _batch(skin_images(16, 32, seed=0))
    real = _batch(skin_images(16, 32, seed=1))
    shifted = [_batch(skin_images(16, 32, seed=0, shift=(s, -s / 2, 0))) for s in (0, 8, 24)]
    ref = [_swd(real, x)["mean"] for x in shifted]
    assert ref[0] < ref[1] < ref[2] and ref[2] > 2 * ref[0]
    # Karras normalises each set by its own channel mean/std: a uniform colour cast of the whole set vanishes.
    per_set = SwdConfig(per_image=64, normalise="per-set")
    assert _swd(a, shifted[2], per_set)["mean"] < 0.05 * _swd(a, shifted[2])["mean"]


def test_blur_shows_at_the_finest_level():
    from scipy.ndimage import gaussian_filter

    imgs = skin_images(16, 32, seed=0)
    real = _batch(skin_images(16, 32, seed=1))
    blurred = _batch([np.clip(gaussian_filter(i.astype(float), (1.2, 1.2, 0)), 0, 255).astype(np.uint8) for i in imgs])
    sharp_all, soft_all = _swd(real, _batch(imgs)), _swd(real, blurred)
    sharp, soft = sharp_all["levels"], soft_all["levels"]
    assert soft[32] > 3 * sharp[32]  # fine detail gone
    assert soft[32] - sharp[32] > soft[16] - sharp[16]
    # the summary that ranks sets is the worst level, which rises with any level
    assert soft_all["worst"] == max(soft.values()) and soft_all["worst_level"] == 32
    assert soft_all["worst"] > sharp_all["worst"]


def test_bad_settings_are_clear_errors():
    from skingen.errors import SkingenError

    with pytest.raises(SkingenError, match="normalise"):
        SwdConfig(normalise="own")
    with pytest.raises(SkingenError, match="at least 16 px"):
        resolutions(8)
