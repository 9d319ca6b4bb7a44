"""The crossed rater x image bootstrap interval (the report's interval to quote)."""

import numpy as np

from skingen.stats import cluster_interval, proportion


def test_needs_two_raters_and_is_deterministic():
    y, units = [1, 0, 1, 1], ["a", "b", "c", "d"]
    assert cluster_interval(y, ["r1"] * 4, units) == (None, None)
    assert cluster_interval([], [], []) == (None, None)
    two = ["r1", "r1", "r2", "r2"]
    assert cluster_interval(y, two, units, seed=3) == cluster_interval(y, two, units, seed=3)
    assert cluster_interval([4] * 6, ["r1", "r2"] * 3, list("aabbcc")) == (4.0, 4.0)  # no spread: a point


def test_raters_who_disagree_widen_it_where_wilson_does_not_see_it():
    # 4 raters x 20 images: two raters always right, two always wrong. Accuracy 0.5 either way, but a
    # new study's raters could be mostly good or mostly bad judges: rater spread dominates.
    raters = np.repeat(np.arange(4), 20)
    units = np.tile(np.arange(20), 4)
    y = (raters < 2).astype(float)
    w = proportion(int(y.sum()), len(y))
    low, high = cluster_interval(y, raters, units)
    assert w["ci_high"] - w["ci_low"] < 0.23
    # resampling 4 raters: the share of good ones among 4 draws is 0/4 with probability 1/16 > 2.5%
    assert low == 0.0 and high == 1.0
    # the same answers spread evenly over raters (each rater right on the same 10 images): no rater effect,
    # only the image effect remains, and the interval is the image-resampling one (narrower)
    y_img = (units < 10).astype(float)
    low_i, high_i = cluster_interval(y_img, raters, units)
    assert 0 < low_i < 0.5 < high_i < 1 and high_i - low_i < high - low


def test_it_covers_the_truth_where_wilson_does_not():
    """Planted rater and image effects (logit sd 1 each, 10 raters x 40 images, true accuracy 0.5): over 60
    seeded studies the crossed interval covers 0.5 in most, Wilson in far fewer (bench/rate_stats.py has
    the full table)."""
    rng = np.random.default_rng(0)
    raters, units = np.repeat(np.arange(10), 40), np.tile(np.arange(40), 10)
    covered = {"wilson": 0, "cluster": 0}
    for s in range(60):
        z = rng.normal(0, 1, 10)[raters] + rng.normal(0, 1, 40)[units]
        y = (rng.random(len(z)) < 1 / (1 + np.exp(-z))).astype(float)
        w = proportion(int(y.sum()), len(y))
        low, high = cluster_interval(y, raters, units, n_boot=500, seed=s)
        covered["wilson"] += w["ci_low"] <= 0.5 <= w["ci_high"]
        covered["cluster"] += low <= 0.5 <= high
    assert covered["cluster"] >= 0.8 * 60 and covered["wilson"] <= 0.7 * 60, covered
