"""The fine-tune recipe's pieces: right-angle views, test-time averaging, learning-rate schedule, last-weights selection."""
import math

import numpy as np
import pytest
import torch

from skingen.nn.classifiers import SmallCNN
from skingen.downstream.train import TrainConfig, _lr_factor, dihedral, predict, train_classifier
from skingen.errors import SkingenError


def test_dihedral_views_are_the_eight_rotations_and_mirror_images():
    x = torch.arange(6).view(1, 1, 2, 3)  # [[0,1,2],[3,4,5]]
    assert torch.equal(dihedral(x, 0), x)
    assert dihedral(x, 1)[0, 0].tolist() == [[2, 5], [1, 4], [0, 3]]  # 90° anticlockwise
    assert dihedral(x, 4)[0, 0].tolist() == [[2, 1, 0], [5, 4, 3]]  # mirror image
    square = torch.arange(9).view(1, 1, 3, 3)
    views = {tuple(dihedral(square, k).flatten().tolist()) for k in range(8)}
    assert len(views) == 8  # all distinct on an asymmetric image: the whole group, no repeats


def test_tta_is_the_mean_over_the_eight_views():
    torch.manual_seed(0)
    net = SmallCNN(3).eval()
    x = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    by_hand = np.mean([predict(net, dihedral(x, k)) for k in range(8)], axis=0)
    assert np.allclose(predict(net, x, tta=True), by_hand)
    assert not np.allclose(predict(net, x), by_hand)  # a random net is not rotation-invariant


def test_learning_rate_schedule_by_hand():
    cos = _lr_factor(10, 0.2, "cosine")  # 2 warm-up steps, then cosine over the remaining 8
    assert [cos(0), cos(1)] == [0.5, 1.0]
    assert cos(2) == 1.0 and math.isclose(cos(6), 0.5) and math.isclose(cos(10), 0.0, abs_tol=1e-12)
    const = _lr_factor(10, 0.2, "constant")
    assert [const(s) for s in (0, 1, 2, 9)] == [0.5, 1.0, 1.0, 1.0]
    with pytest.raises(SkingenError, match="train.schedule"):
        TrainConfig(schedule="step")
    with pytest.raises(SkingenError, match="train.select"):
        TrainConfig(select="best")


def test_select_last_keeps_the_final_weights_of_the_whole_budget(planted):
    from skingen.data.manifest import read_manifest
    from skingen.downstream.study import load_images

    rows = read_manifest(planted)
    train, val = (load_images(planted, [r for r in rows if r["split"] == s], ("a", "b"), 16) for s in ("train", "val"))
    cfg = TrainConfig(arch="small-cnn", size=16, images=96, batch=16, select="last", dihedral=True)
    a = train_classifier(train.x, train.y, val.x, val.y, ("a", "b"), cfg, seed=0)
    b = train_classifier(train.x, train.y, val.x, val.y, ("a", "b"), cfg, seed=0)
    assert a.best_images == 96  # 6 steps of 16: nothing cut short, nothing chosen on val
    assert all(torch.equal(p, q) for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values()))
    longer = train_classifier(train.x, train.y, val.x, val.y, ("a", "b"), TrainConfig(
        arch="small-cnn", size=16, images=112, batch=16, select="last", dihedral=True), seed=0)
    assert not torch.equal(longer.model.head.weight, a.model.head.weight)  # one step more: other final weights
