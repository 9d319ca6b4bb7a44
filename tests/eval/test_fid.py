import numpy as np
import pytest
import scipy.linalg

from skingen.errors import SkingenError
from skingen.eval.fid import KidConfig, frechet_distance, grouped_kid_subsets, kernel_distance


def _gauss(n, d, seed, mean=0.0, scale=1.0):
    mix = np.random.default_rng(1234).normal(0, 1, (d, d)) / np.sqrt(d)  # correlated features, like embeddings
    return np.random.default_rng(seed).normal(0, 1, (n, d)) @ mix * scale + mean


def _scipy_fid(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")  # inside pytorch-fid
def test_fid_matches_direct_scipy_and_independent_implementations():
    from pytorch_fid.fid_score import calculate_frechet_distance
    import torch
    from torchmetrics.image.fid import _compute_fid

    a, b = _gauss(300, 12, 0), _gauss(250, 12, 1, mean=0.3, scale=1.4)
    ours = frechet_distance(a, b)
    stats = [(x.mean(0), np.cov(x, rowvar=False)) for x in (a, b)]
    assert ours == pytest.approx(_scipy_fid(a, b), rel=1e-7)
    assert ours == pytest.approx(calculate_frechet_distance(*stats[0], *stats[1]), rel=1e-7)  # pytorch-fid
    tm = _compute_fid(*(torch.from_numpy(v) for v in (*stats[0], *stats[1])))  # torchmetrics
    assert ours == pytest.approx(float(tm), rel=1e-6)


def test_fid_zero_symmetric_and_a_shift_adds_its_squared_norm():
    a, b = _gauss(200, 8, 2), _gauss(200, 8, 3, mean=0.5)
    assert abs(frechet_distance(a, a)) < 1e-8
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    d = np.array([0.5, -1.0, 2.0, 0, 0, 0.25, 0, 1.0])
    assert frechet_distance(a, a + d) == pytest.approx(float(d @ d), rel=1e-7)  # same covariance: only ‖d‖² remains


def test_kid_near_zero_for_one_distribution_and_clearly_positive_when_shifted():
    a, b = _gauss(400, 16, 4), _gauss(400, 16, 5)
    same = kernel_distance(a, b, KidConfig(subsets=50, subset_size=200))
    shifted = kernel_distance(a, b + 0.5, KidConfig(subsets=50, subset_size=200))
    assert abs(same.mean) < 3 * same.std + 1e-3
    assert shifted.mean > 10 * shifted.std and shifted.mean > 20 * abs(same.mean)
    assert same.subset_size == 200 and same.note == ""


def test_kid_subset_size_adapts_and_says_so():
    r = kernel_distance(_gauss(30, 4, 6), _gauss(80, 4, 7), KidConfig(subsets=10))
    assert r.subset_size == 30 and "reduced from 1000 to 30" in r.note


def test_fid_needs_two_images_and_matching_dims():
    with pytest.raises(SkingenError, match="at least 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(SkingenError, match="same D"):
        frechet_distance(np.zeros((4, 3)), np.zeros((5, 2)))


def _poly(x, y):
    return (x @ y.T / x.shape[1] + 1) ** 3


def test_grouped_kid_with_singleton_groups_is_torch_fidelity_kid_subset_for_subset():
    a, b = _gauss(60, 8, 8), _gauss(50, 8, 9, mean=0.2)
    cfg = KidConfig(subsets=7, subset_size=40)
    plain = kernel_distance(a, b, cfg, seed=3)
    grouped = grouped_kid_subsets(a, b, [str(i) for i in range(50)], cfg, 40, seed=3)
    assert grouped.mean() == pytest.approx(plain.mean, rel=1e-9) and grouped.std() == pytest.approx(plain.std, rel=1e-7)


def test_copies_of_one_image_raise_plain_kid_and_grouped_kid_removes_exactly_that():
    x, y = _gauss(20, 6, 10), _gauss(60, 6, 11, mean=0.1)
    copies, groups = np.repeat(x, 3, axis=0), np.repeat([f"crop{i}" for i in range(20)], 3)
    cfg = KidConfig(subsets=2, subset_size=60)  # every subset is the whole set: one value, computable by hand
    k_yy, k_xx = _poly(y, y), _poly(x, x)
    by_hand = ((k_yy.sum() - np.trace(k_yy)) / (60 * 59) + (k_xx.sum() - np.trace(k_xx)) / (20 * 19)
               - 2 * _poly(y, x).mean())  # MMD² of y against the 20 distinct images
    grouped = kernel_distance(y, copies, cfg, parents_b=list(groups))
    assert grouped.mean == pytest.approx(by_hand, rel=1e-9) and grouped.std == pytest.approx(0, abs=1e-12)
    assert grouped.parents == 20 and kernel_distance(y, y, cfg).parents is None
    assert kernel_distance(y, copies, cfg).mean > by_hand + 0.1 * abs(by_hand)  # the copies' pairs inflate plain KID


def test_grouped_kid_errors():
    a = _gauss(10, 4, 12)
    with pytest.raises(SkingenError, match="3 parent ids for 10"):
        kernel_distance(a, a, KidConfig(subsets=2), parents_b=["a", "b", "c"])
    with pytest.raises(SkingenError, match="at least 2 different parents"):
        kernel_distance(a, a, KidConfig(subsets=2), parents_b=["same"] * 10)
