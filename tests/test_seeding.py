import pytest
import torch

from skingen.errors import SkingenError
from skingen.seeding import generators, numpy_rng, parse_seeds


def test_parse_seeds():
    assert parse_seeds("0-3,10") == [0, 1, 2, 3, 10]
    assert parse_seeds("5, 5,2") == [5, 2]
    for bad in ("a", "3-1", "-1", ""):
        with pytest.raises(SkingenError):
            parse_seeds(bad)


def test_one_generator_per_seed_is_independent_of_batch():
    together = [torch.randn(4, generator=g) for g in generators([1, 2, 3])]
    alone = torch.randn(4, generator=generators([2])[0])
    assert torch.equal(together[1], alone)
    assert not torch.equal(together[0], together[1])


def test_numpy_rng_keys():
    assert numpy_rng(0, "a").random() == numpy_rng(0, "a").random()
    assert numpy_rng(0, "a").random() != numpy_rng(0, "b").random()
    assert numpy_rng(0, 1).random() != numpy_rng(1, 0).random()
