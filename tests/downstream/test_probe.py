import numpy as np
import pytest
import torch

from skingen.data.manifest import read_manifest
from skingen.downstream.probe import C_GRID, ProbeFeatures, make_probe_extractor, train_probe
from skingen.downstream.views import augmented_view
from skingen.downstream.study import StudyConfig, load_images, run_study
from skingen.downstream.train import TrainConfig
from skingen.errors import SkingenError
from skingen.eval.cache import FeatureCache

from .conftest import write_planted


def test_probe_recovers_planted_separable_classes():
    """Three classes that differ only along 3 of 50 noisy feature dimensions (10 sd apart): the probe finds them (test BA 1),
    and its val-chosen C is one of the grid; a probe on pure noise stays near chance."""
    rng = np.random.default_rng(0)

    def draw(n):
        y = np.repeat(np.arange(3), n)
        x = rng.normal(0, 1, (3 * n, 50))
        x[np.arange(3 * n), y] += 10.0  # class c: +10 on dimension c
        return x.astype(np.float32), y

    (x, y), (xv, yv), (xt, yt) = draw(40), draw(10), draw(30)
    probe = train_probe(x, y, xv, yv, 3)
    assert probe.C in C_GRID and probe.val_balanced_accuracy == 1.0
    p = probe.predict(xt)
    assert p.shape == (90, 3) and np.allclose(p.sum(1), 1)
    assert (p.argmax(1) == yt).mean() == 1.0
    noise = train_probe(rng.normal(0, 1, (120, 50)), y, xv, yv, 3)
    assert (noise.predict(xt).argmax(1) == yt).mean() < 0.6
    with pytest.raises(SkingenError, match="at least 2 classes"):
        train_probe(x[:20], y[:20], xv, yv, 3)


def test_probe_study_on_frozen_efficientnet_features_uses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SKINGEN_CACHE_DIR", str(tmp_path / "cache"))
    data = write_planted(tmp_path / "data", {"a": 18, "b": 18, "c": 18}, size=32)
    cfg = StudyConfig(fractions=(1.0,), seeds=2, ratios=(0,), n_boot=50,
                      train=TrainConfig(arch="probe:efficientnet-lite0", size=32, views=2))
    first = run_study(data, [], cfg)
    by_arm = {(r["arm"], r["seed"]): r for r in first.runs}
    assert by_arm[("real", 0)]["test_balanced_accuracy"] >= 0.9  # planted colour squares, frozen ImageNet features
    assert by_arm[("real+classical", 0)]["test_balanced_accuracy"] >= 0.8
    assert first.best is None and first.feature_seconds > 0
    # deterministic: the second seed at fraction 1 is the same fit; a rerun reads every feature from the cache
    assert np.array_equal(first.probs[("real", 1.0)][0], first.probs[("real", 1.0)][1])
    again = run_study(data, [], cfg)
    assert again.feature_seconds == 0.0
    assert np.array_equal(again.probs[("real+classical", 1.0)], first.probs[("real+classical", 1.0)])


def test_classical_views_are_seeded_by_pixels_and_view(tmp_path):
    data = write_planted(tmp_path / "data", {"a": 3, "b": 3}, size=32)
    x = load_images(data, read_manifest(data), ("a", "b"), 32).x
    v0, v0b, v1 = augmented_view(x, 0, 32), augmented_view(x, 0, 32), augmented_view(x, 1, 32)
    assert torch.equal(v0, v0b) and not torch.equal(v0, v1) and not torch.equal(v0, x)
    assert torch.equal(augmented_view(x[2:4], 0, 32), v0[2:4])  # per image, not per batch
    fx = ProbeFeatures(make_probe_extractor("probe:efficientnet-lite0"), FeatureCache(tmp_path / "cache"))
    f = fx.features(x)
    assert f.shape == (len(x), 1280) and fx.cache.misses == 1
    assert np.array_equal(fx.features(x.clone()), f) and fx.cache.hits == 1  # same pixels -> cached
