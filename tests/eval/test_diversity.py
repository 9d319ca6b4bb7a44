import numpy as np
import torch

from skingen.eval.diversity import DiversityConfig, ms_ssim_diversity, sibling_pairs


class Images:
    """The part of an ImageSet the diversity metric reads: rows and ``load``."""

    def __init__(self, images: torch.Tensor, parents: list[str]):
        self.images, self.rows = images, tuple({"parent_id": p} for p in parents)

    def __len__(self) -> int:
        return len(self.images)

    def load(self, indices, size: int) -> torch.Tensor:
        return self.images[torch.as_tensor(indices)]


def test_sibling_pairs_are_distinct_images_of_one_parent():
    parents = ["a", "b", "a", "", "c", "a", "b"]
    pairs = sibling_pairs(parents, 50, seed=0)
    assert pairs.shape == (50, 2)
    assert all(i != j and parents[i] == parents[j] != "" for i, j in pairs)
    assert {parents[i] for i, _ in pairs} == {"a", "b"}            # c has one image, "" is no parent
    assert sibling_pairs(["a", "b", ""], 10, 0).shape == (0, 2)
    assert np.array_equal(sibling_pairs(parents, 20, 3), sibling_pairs(parents, 20, 3))


def test_runs_that_made_the_same_image_score_one_between_runs():
    g = torch.Generator().manual_seed(0)
    distinct = (torch.rand(4, 3, 64, 64, generator=g) * 255).to(torch.uint8)
    images = distinct.repeat_interleave(2, 0)                       # two identical "runs" of each of 4 crops
    parents = [f"crop{i // 2}" for i in range(8)]
    r = ms_ssim_diversity(Images(images, parents), 64, DiversityConfig(pairs=12))
    assert r.sibling_pairs == 12 and abs(r.siblings_mean - 1.0) < 1e-6
    assert r.mean < 0.9                                             # random pairs include different crops
    plain = ms_ssim_diversity(Images(images, [""] * 8), 64, DiversityConfig(pairs=12))
    assert plain.siblings_mean is None and plain.mean == r.mean
