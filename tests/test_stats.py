import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

from skingen.stats import (auroc, balanced_accuracy, bootstrap_metrics, macro_f1, metric_values,
                                      wilson_interval)


def test_wilson_interval_by_hand():
    # 8 of 10: centre = (p + z^2/2n) / (1 + z^2/n), half = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2)
    z = 1.959963984540054
    n, p = 10, 0.8
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert wilson_interval(8, 10) == pytest.approx((centre - half, centre + half))
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # the textbook values
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    assert all(np.isnan(wilson_interval(0, 0)))


def test_vectorised_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    for k in (2, 3, 5):
        y = rng.integers(0, k, 60)
        probs = rng.dirichlet(np.ones(k), 60)
        probs[np.arange(60), y] += rng.uniform(0, 0.6, 60)  # informative but imperfect
        probs /= probs.sum(1, keepdims=True)
        pred = probs.argmax(1)
        assert balanced_accuracy(y, pred, k)[0] == pytest.approx(balanced_accuracy_score(y, pred))
        assert macro_f1(y, pred, k)[0] == pytest.approx(f1_score(y, pred, average="macro"))
        expected = roc_auc_score(y, probs[:, 1]) if k == 2 else roc_auc_score(y, probs, multi_class="ovr")
        assert auroc(y, probs)[0] == pytest.approx(expected)  # binary: one-vs-rest twice = the binary AUROC
    # ties count one half: all scores equal -> 0.5
    assert auroc(np.array([0, 1, 0, 1]), np.full((4, 2), 0.5))[0] == pytest.approx(0.5)


def test_bootstrap_interval_of_accuracy_matches_binomial_quantiles():
    """For a binary task with a perfectly calibrated chooser, balanced accuracy on a resample of 200 images
    with 160 right is ~ Binomial(200, 0.8)/200 per class: percentile interval ~ [0.745, 0.855]."""
    y = np.array([0, 1] * 100)
    pred = y.copy()
    wrong = np.r_[np.arange(0, 200, 2)[:20], np.arange(1, 200, 2)[:20]]  # 20 wrong per class
    pred[wrong] = 1 - pred[wrong]
    probs = np.eye(2)[pred] * 0.8 + 0.1
    out = bootstrap_metrics(y, probs, n_boot=4000, seed=0)
    assert out["balanced_accuracy"]["value"] == pytest.approx(0.8)
    # hand computation: per class p = 0.8, n = 100; mean of the two class recalls has sd sqrt(0.16/100/2)
    sd = np.sqrt(0.8 * 0.2 / 100 / 2)
    assert out["balanced_accuracy"]["low"] == pytest.approx(0.8 - 1.96 * sd, abs=0.012)
    assert out["balanced_accuracy"]["high"] == pytest.approx(0.8 + 1.96 * sd, abs=0.012)


def test_paired_delta_and_seed_averaging():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 50)
    probs = rng.dirichlet(np.ones(3), (4, 50))
    same = bootstrap_metrics(y, probs, baseline=probs, n_boot=200)
    for m in ("balanced_accuracy", "macro_f1", "auroc"):
        assert same[f"delta_{m}"] == {"value": 0.0, "low": 0.0, "high": 0.0}
        mean = np.mean([metric_values(y, p)[m] for p in probs])
        assert same[m]["value"] == pytest.approx(mean)
        assert same[m]["low"] <= same[m]["value"] <= same[m]["high"]
    assert bootstrap_metrics(y, probs, n_boot=200, seed=3) == bootstrap_metrics(y, probs, n_boot=200, seed=3)


def test_paired_accuracy_delta_by_hand():
    from skingen.stats import paired_accuracy_delta

    base = np.array([[1, 0, 1, 0, 1, 0, 1, 0]] * 3)  # 3 seeds, 8 images: half right
    same = paired_accuracy_delta(base, base)
    assert same == (0.0, 0.0, 0.0)  # identical arms: no difference on any resample
    better = base.copy()
    better[:, 1] = 1  # one more image right on every seed: +1/8
    d, low, high = paired_accuracy_delta(better, base, n_boot=2000)
    assert d == 0.125 and 0.0 <= low <= d <= high <= 0.375
    all_right = np.ones_like(base)
    d, low, high = paired_accuracy_delta(all_right, base, n_boot=2000)
    assert d == 0.5 and low > 0.1  # four more images right: the interval excludes 0
    with pytest.raises(ValueError):
        paired_accuracy_delta(base, base[:2])
