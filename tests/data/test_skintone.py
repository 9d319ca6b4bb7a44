import math

import numpy as np

from skingen.data.skintone import fitzpatrick_approx, ita_category, ita_degrees, measure_skin_tone


def lab_by_hand(rgb8):
    """CIE L*a*b* (D65) of an 8-bit sRGB colour from the textbook formulas (independent of scikit-image)."""
    c = np.asarray(rgb8, float) / 255
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
    xyz = m @ lin / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def flat(rgb, h=32, w=32):
    return np.tile(np.array(rgb, np.uint8), (h, w, 1))


def test_constant_skin_colours_give_hand_computed_lab_and_ita():
    for rgb, category in (((224, 172, 140), "light"), ((141, 85, 61), "brown"), ((70, 42, 30), "dark")):
        L, a, b = lab_by_hand(rgb)
        tone = measure_skin_tone(flat(rgb))
        assert abs(tone.L - L) < 0.05 and abs(tone.a - a) < 0.05 and abs(tone.b - b) < 0.05, (rgb, tone, (L, a, b))
        expected = math.degrees(math.atan((L - 50) / b))
        assert abs(tone.ita - expected) < 0.1 and tone.category == category == ita_category(expected)
        assert tone.healthy_fraction == 1.0


def test_lesion_and_background_pixels_are_excluded():
    healthy, ill, cloth = (224, 172, 140), (200, 90, 90), (40, 60, 160)
    image = flat(healthy)
    image[:, :18] = ill  # 56% lesion: without excluding it the median would be the lesion colour
    image[:6] = cloth  # blue background, rejected by the skin detector
    lesion = np.zeros((32, 32), bool)
    lesion[6:, :18] = True
    L, _, b = lab_by_hand(healthy)
    tone = measure_skin_tone(image, lesion)
    assert abs(tone.ita - ita_degrees(L, b)) < 0.1
    assert abs(tone.healthy_fraction - (26 * 14) / 1024) < 0.02
    Lx, _, bx = lab_by_hand(ill)
    with_lesion = measure_skin_tone(image, lesion, exclude_lesion=False)
    assert abs(with_lesion.ita - ita_degrees(Lx, bx)) < 0.1


def test_too_little_healthy_skin_is_unknown():
    image = flat((40, 60, 160))
    image[:4, :4] = (224, 172, 140)  # 1.6% skin
    tone = measure_skin_tone(image, min_healthy_fraction=0.05)
    assert math.isnan(tone.ita) and tone.category == "unknown" and tone.fitzpatrick == "unknown"
    assert ita_category(float("nan")) == "unknown" and fitzpatrick_approx(float("nan")) == "unknown"
    assert fitzpatrick_approx(56) == "I" and fitzpatrick_approx(-31) == "VI" and fitzpatrick_approx(20) == "IV"


def test_pinkish_skin_with_negative_b_has_no_ita():
    from skimage.color import lab2rgb, rgb2lab

    rgb = np.round(lab2rgb(np.array([[[55.0, 30.0, -3.0]]])) * 255).astype(np.uint8)[0, 0]
    assert rgb2lab(rgb[None, None] / 255.0)[0, 0, 2] < 0
    tone = measure_skin_tone(flat(rgb))
    assert tone.healthy_fraction == 1.0 and tone.b < 0  # taken as skin, colour measured ...
    assert math.isnan(tone.ita) and tone.category == "unknown"  # ... but ITA is undefined
