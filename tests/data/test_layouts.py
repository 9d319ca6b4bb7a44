import numpy as np
import pytest
from skimage.color import rgb2lab

from skingen.data.skintone import ita_range
from skingen.data.layouts import LayoutParams, make_layout
from skingen.errors import SkingenError


def test_same_seed_same_layout_and_seeds_differ():
    a, b, c = make_layout(3, 64), make_layout(3, 64), make_layout(4, 64)
    assert np.array_equal(a.lesion, b.lesion) and np.array_equal(a.coloured, b.coloured)
    assert not np.array_equal(a.lesion, c.lesion)


def test_coverage_follows_the_target_within_one_macule():
    for lo, hi in [(0.02, 0.02), (0.1, 0.1), (0.3, 0.3)]:
        fractions = [make_layout(s, 64, LayoutParams(coverage=(lo, hi))).coverage for s in range(5)]
        assert np.allclose(fractions, lo, atol=0.01), (lo, fractions)
    # a range: each layout hits its own drawn target
    for s in range(5):
        lay = make_layout(s, 128, LayoutParams(coverage=(0.05, 0.2)))
        assert 0.05 <= lay.target_coverage <= 0.2
        assert abs(lay.coverage - lay.target_coverage) < 0.005


def test_healthy_colour_has_the_target_ita_and_the_lesion_the_given_delta():
    for lo, hi in [(45.0, 55.0), (0.0, 10.0), (-60.0, -40.0)]:
        for s in range(4):
            lay = make_layout(s, 32, LayoutParams(ita=(lo, hi)))
            assert lo - 1 <= lay.ita <= hi + 1, (lo, hi, lay.ita)
            lab = rgb2lab(lay.coloured.astype(float) / 255)
            healthy, lesion = lab[~lay.lesion].mean(0), lab[lay.lesion].mean(0)
            np.testing.assert_allclose(lesion - healthy, LayoutParams().lesion_delta, atol=1.5)


def test_one_seed_gives_the_same_rash_on_every_skin_tone():
    light = make_layout(7, 64, LayoutParams(ita=(50, 60)))
    dark = make_layout(7, 64, LayoutParams(ita=(-50, -40)))
    assert np.array_equal(light.lesion, dark.lesion)
    assert rgb2lab(light.coloured[:1, :1] / 255)[0, 0, 0] > rgb2lab(dark.coloured[:1, :1] / 255)[0, 0, 0] + 30


def test_spread_controls_how_clustered_the_rash_is():
    def spread(p: LayoutParams) -> float:
        ys, xs = np.nonzero(make_layout(1, 128, p).lesion)
        return float(np.hypot(ys.std(), xs.std()))

    assert spread(LayoutParams(spread=0.08, confluence=0)) < 0.6 * spread(LayoutParams(spread=1.0, confluence=0))


def test_parameter_errors():
    with pytest.raises(SkingenError, match="min 0.2 > max 0.1"):
        LayoutParams(coverage=(0.2, 0.1))
    with pytest.raises(SkingenError, match="ita must lie"):
        LayoutParams(ita=(-100, 0))
    with pytest.raises(SkingenError, match="at least 8 px"):
        make_layout(0, 4)


def test_ita_range_parses_ranges_and_category_names():
    assert ita_range("-50..-30") == (-50.0, -30.0)
    assert ita_range("brown") == (-30.0, 10.0)
    assert ita_range("dark") == (-90.0, -30.0)
    assert ita_range("very light") == (55.0, 90.0)
    for bad in ["10..-10", "dark-ish", "5", "-100..0"]:
        with pytest.raises(SkingenError, match="ITA range"):
            ita_range(bad)
