import pytest
import torch

from skingen.errors import SkingenError
from skingen.inpaint.regions import (Region, blob, edit_counts, place, plan_regions, random_regions, region_side,
                                     torch_rand, window_box)


def rand(seed: int = 0):
    return torch_rand(torch.Generator().manual_seed(seed))


def test_region_side_fraction_or_pixels():
    assert region_side(0.25, 64) == 16 and region_side(12, 64) == 12 and region_side(1.0, 64) == 64
    with pytest.raises(SkingenError, match="larger than"):
        region_side(80, 64)


@pytest.mark.parametrize("side", [5, 16, 33])
def test_blob_is_inscribed_in_its_square(side):
    for seed in range(5):
        b = blob(side, rand(seed))
        assert b.shape == (side, side) and b[side // 2, side // 2]
        edges = torch.cat([b[0], b[-1], b[:, 0], b[:, -1]])
        assert edges.any()  # grown until it touches the square
        assert 0.2 < b.float().mean() < 0.9


def test_least_covered_place_avoids_painted_pixels():
    counts = torch.zeros(16, 16, dtype=torch.int32)
    counts[:, :12] = 1  # only the 4 right-most columns are fresh
    for seed in range(10):
        top, left = place(counts, 4, "least-covered", rand(seed))
        assert left == 12
    assert place(counts, 13, "random", rand(), cap=1) is None  # every 13 px square holds a capped pixel


def test_least_covered_gives_lower_repeats_than_random_for_the_same_coverage():
    """Property over seeds: both policies run until 60% of the pixels were repainted."""
    least, rnd = [], []
    for seed in range(12):
        for policy, out in (("least-covered", least), ("random", rnd)):
            regions = plan_regions(48, 200, rand(seed), "box", 12, placement=policy, coverage=0.6)
            counts = edit_counts(regions, 48)
            assert (counts > 0).float().mean() >= 0.6  # the coverage target is met ...
            before = edit_counts(regions[:-1], 48)
            assert (before > 0).float().mean() < 0.6  # ... and the run ends as soon as it is
            out.append(int(counts.max()))
    assert all(a <= b for a, b in zip(least, rnd)), (least, rnd)
    assert sum(least) < sum(rnd)


def test_repeat_cap_and_shrinking_size():
    regions = plan_regions(32, 30, rand(), "mixed", 16, 4, placement="random", cap=2)
    assert int(edit_counts(regions, 32).max()) <= 2
    sides = [r.side for r in plan_regions(32, 5, rand(), "box", 16, 8)]
    assert sides == [16, 14, 12, 10, 8]
    assert {r.kind for r in plan_regions(64, 20, rand(), "mixed", 8)} == {"box", "blob"}


def test_window_box_is_centred_inside_the_image_and_a_multiple():
    r = Region(10, 20, 8, "box", torch.ones(8, 8, dtype=torch.bool))
    assert window_box(r, 64, 2.0, 1) == (6, 16, 16)
    assert window_box(r, 64, 2.0, 12) == (2, 12, 24)  # 16 rounded up to 24, still centred
    corner = Region(0, 56, 8, "box", torch.ones(8, 8, dtype=torch.bool))
    assert window_box(corner, 64, 3.0, 1) == (0, 40, 24)  # moved inside the image
    assert window_box(r, 64, None) == (0, 0, 64) and window_box(r, 64, 100.0) == (0, 0, 64)


def test_random_regions_share_one_side_in_range():
    for seed in range(5):
        regions = random_regions(6, 32, rand(seed), 4, 16, ("box", "blob"))
        assert len({r.side for r in regions}) == 1 and 4 <= regions[0].side <= 16
        for r in regions:
            assert 0 <= r.top <= 32 - r.side and 0 <= r.left <= 32 - r.side
