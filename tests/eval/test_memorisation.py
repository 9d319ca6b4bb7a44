import numpy as np
import pytest

from skingen.eval.memorisation import memorisation


def test_planted_copies_are_flagged_and_fresh_samples_are_not():
    rng = np.random.default_rng(0)
    train = rng.normal(0, 1, (80, 64))
    fresh = rng.normal(0, 1, (20, 64))
    copies = train[[3, 10, 42]]
    near = train[[7, 50]] + rng.normal(0, 0.05, (2, 64))  # re-encoded copies
    r = memorisation(np.concatenate([copies, near, fresh]), train)
    assert r.flagged == 5 and r.n == 25 and r.fraction == pytest.approx(0.2)
    assert list(r.nearest[:5]) == [3, 10, 42, 7, 50]
    assert (r.ratio[:3] < 1e-6).all() and (r.ratio[5:] > 1 / 3).all()


def test_disjoint_sets_flag_nothing():
    rng = np.random.default_rng(1)
    r = memorisation(rng.normal(0, 1, (40, 32)), rng.normal(0, 1, (60, 32)))
    assert r.flagged == 0 and r.ratio.min() > 0.5


def test_second_neighbour_comes_from_another_photo():
    """A training set with two crops of one photo: a copy of one crop has the other as second neighbour.
    The plain rule (one group per image) misses the copy; the group-aware rule flags it."""
    rng = np.random.default_rng(2)
    train = rng.normal(0, 1, (30, 32))
    train[1] = train[0] + rng.normal(0, 0.01, 32)  # a re-encoded twin of the same photo
    groups = ["photoA", "photoA"] + [f"p{i}" for i in range(2, 30)]
    copy = train[:1] + rng.normal(0, 0.01, (1, 32))
    assert memorisation(copy, train).flagged == 0
    r = memorisation(copy, train, groups)
    assert r.flagged == 1 and r.nearest[0] == 0
