"""The melanin / haemoglobin skin-colour model of ``skingen.data.tone`` on patches of known pigment densities."""

import numpy as np
import pytest

from skingen.data import tone
from skingen.data.skintone import measure_skin_tone

H = W = 64


def _patch(seed: int = 0):
    """Light skin of known densities (melanin 0.4, haemoglobin 0.3 +- texture; a rash disc with haemoglobin
    0.9) on a blue non-skin band at the top -> (image, skin, lesion, densities [H,W,3])."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    lesion = (yy - 40) ** 2 + (xx - 32) ** 2 < 10 ** 2
    m = 0.4 + rng.normal(0, 0.03, (H, W))
    h = np.where(lesion, 0.9, 0.3) + rng.normal(0, 0.03, (H, W))
    s = 0.05 + rng.normal(0, 0.02, (H, W))
    image = tone.compose(m, h, s)
    skin = np.ones((H, W), bool)
    skin[:12] = False
    image[:12] = (40, 70, 190)
    return image, skin, lesion, np.stack([m, h, s], -1)


def test_decomposition_recovers_known_densities():
    image, skin, _, truth = _patch()
    got = tone.decompose(image)[skin]
    # 8-bit rounding is the only loss; unmixing amplifies it per pixel (the three axes are far from
    # orthogonal), but it averages out: unbiased, and the texture is followed
    assert np.abs(got - truth[skin]).max() < 0.1
    assert np.abs(np.median(got - truth[skin], axis=0)).max() < 0.005
    for c in range(3):
        assert np.corrcoef(got[:, c], truth[skin][:, c])[0, 1] > 0.6


@pytest.mark.parametrize("target", [10.0, -20.0, -40.0])
def test_melanin_reaches_the_target_keeps_the_rash_and_non_skin(target):
    image, skin, lesion, truth = _patch()
    before = measure_skin_tone(image, lesion).ita
    assert before > 45  # a light patch
    result = tone.tone_skin(image, skin, skin & ~lesion, target, "melanin")
    assert np.array_equal(result.image[~skin], image[~skin])  # bit-exact outside the skin
    assert abs(measure_skin_tone(result.image, lesion).ita - target) < 2.0  # the project's own ITA
    inner = skin & (np.arange(H)[:, None] > 16)  # past the feathered edge: the full density was added
    dens = tone.decompose(result.image)
    added = np.median(dens[..., 0][inner] - truth[..., 0][inner])
    assert added == pytest.approx(result.amount, abs=0.05)
    # haemoglobin (the rash) unchanged: the lesion-vs-skin contrast in its density stays within 5%
    healthy = inner & ~lesion
    c0 = np.median(truth[..., 1][lesion]) - np.median(truth[..., 1][healthy])
    c1 = np.median(dens[..., 1][lesion]) - np.median(dens[..., 1][healthy])
    assert c1 == pytest.approx(c0, rel=0.05)


def test_lab_baseline_reaches_the_target_on_its_pixels_and_keeps_non_skin():
    image, skin, lesion, _ = _patch()
    result = tone.tone_skin(image, skin, skin & ~lesion, -20.0, "lab")
    assert np.array_equal(result.image[~skin], image[~skin])
    assert abs(result.ita_after - -20.0) < 2.0
    assert result.amount < -20  # L* went down


def test_a_lighter_target_changes_nothing_and_bad_input_is_refused():
    image, skin, lesion, _ = _patch()
    same = tone.tone_skin(image, skin, skin & ~lesion, 89.0)
    assert np.array_equal(same.image, image) and same.amount == 0.0
    with pytest.raises(ValueError, match="method"):
        tone.tone_skin(image, skin, skin, 0.0, "hsv")
    with pytest.raises(ValueError, match="uint8"):
        tone.tone_skin(image.astype(np.float32), skin, skin, 0.0)
