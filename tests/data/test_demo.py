import csv

import numpy as np

from skingen.data.skintone import ita_category, ita_degrees
from skingen.data.demo import render_demo_photo


def test_same_seed_same_photo():
    a, b = render_demo_photo(3, (64, 80)), render_demo_photo(3, (64, 80))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.lesion, b.lesion)
    assert not np.array_equal(a.image, render_demo_photo(4, (64, 80)).image)
    assert a.image.shape == (64, 80, 3) and a.image.dtype == np.uint8


def test_truth_csv_matches_rendered_skin(demo_raw):
    rows = list(csv.DictReader(open(demo_raw / "truth.csv")))
    assert len(rows) == 12
    diffs = [abs(float(r["true_ita"]) - float(r["rendered_ita"])) for r in rows]
    assert np.median(diffs) < 6  # what an estimator sees agrees with the base colour
    for r in rows:
        assert r["true_ita_category"] == ita_category(float(r["true_ita"]))
        assert 0 < float(r["lesion_fraction"]) < 0.9
        assert (demo_raw / r["image"]).is_file() and (demo_raw / r["lesion"]).is_file()


def test_skin_tones_span_light_to_dark():
    itas = [ita_degrees(*render_demo_photo(s, (32, 32)).skin_lab[::2]) for s in range(40)]
    cats = {ita_category(i) for i in itas}
    assert min(itas) < -30 and max(itas) > 41 and len(cats) >= 5


def test_ita_hand_values():
    assert ita_degrees(50, 20) == 0
    assert abs(ita_degrees(70, 20) - 45) < 1e-9
    assert ita_category(56) == "very light" and ita_category(-31) == "dark" and ita_category(20) == "tan"
    assert abs(ita_degrees(60, 0.0) - 90) < 1e-9  # b* ~ 0 guarded
