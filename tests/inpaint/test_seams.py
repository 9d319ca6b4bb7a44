import numpy as np
import torch

from skingen.inpaint.regions import Region
from skingen.inpaint.seams import boundary_ring, seam_score


def box(top: int, left: int, side: int) -> Region:
    return Region(top, left, side, "box", torch.ones(side, side, dtype=torch.bool))


def test_ring_of_a_corner_box_by_hand():
    # box rows/cols 0-3 on an 8 px image, width 1 (4-connected): dilation adds row 4 and col 4 (not (4,4)); erosion
    # keeps rows/cols 0-2 (the image edge is not a border) -> ring = 24 - 9 = 15 px
    ring = boundary_ring([box(0, 0, 4)], 8, width=1)
    expected = np.zeros((8, 8), dtype=bool)
    expected[3, 0:4] = expected[0:4, 3] = expected[4, 0:4] = expected[0:4, 4] = True
    assert ring.sum() == 15 and np.array_equal(ring, expected)


def textured(size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(3, size, size, generator=g) * 0.4 - 0.2).clamp(-1, 1)


def test_unchanged_image_scores_one_a_pasted_flat_box_scores_high_a_blur_low():
    src = textured() * 0.3    # faint texture: a flat box in it has a strong edge
    regions = [box(8, 8, 12)]
    assert seam_score(src, src, regions) == 1.0
    pasted = src.clone()
    pasted[:, 8:20, 8:20] = 0.8
    assert seam_score(src, pasted, regions) > 3
    from scipy.ndimage import gaussian_filter

    blurred = torch.from_numpy(gaussian_filter(src.numpy(), sigma=(0, 2, 2))).float()
    assert seam_score(src, blurred, regions) < 0.5


def test_no_ring_or_flat_source_is_nan():
    flat = torch.zeros(3, 16, 16)
    assert np.isnan(seam_score(flat, flat, [box(2, 2, 6)]))
    assert np.isnan(seam_score(textured(16), textured(16), []))
