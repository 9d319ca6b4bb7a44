import numpy as np

from skingen.eval.prdc import precision_recall_density_coverage as prdc


def _cloud(n, seed, mean=0.0, scale=1.0, d=8):
    return np.random.default_rng(seed).normal(mean, scale, (n, d))


def test_planted_gaussian_clouds():
    real = _cloud(600, 0)
    same = prdc(real, _cloud(600, 1), k=5)
    collapsed = prdc(real, _cloud(600, 2, scale=0.3), k=5)  # inside the real support, covers little of it
    spread = prdc(real, _cloud(600, 3, scale=2.5), k=5)  # covers the real support, mostly outside it
    far = prdc(real, _cloud(600, 4, mean=10.0), k=5)
    assert same["precision"] > 0.7 and same["recall"] > 0.7 and same["coverage"] > 0.8
    assert collapsed["precision"] > 0.95 and collapsed["recall"] < 0.3 and collapsed["coverage"] < same["coverage"]
    assert spread["precision"] < 0.2 and spread["recall"] > same["recall"] - 0.1
    assert far["precision"] == far["recall"] == far["density"] == far["coverage"] == 0.0
    assert same["k"] == 5 and same["note"] == ""


def test_k_shrinks_for_tiny_sets():
    r = prdc(_cloud(5, 0), _cloud(10, 1), k=5)
    assert r["k"] == 3 and "reduced from 5 to 3" in r["note"]
    assert 0 <= r["precision"] <= 1
