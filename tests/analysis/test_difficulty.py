import numpy as np
import pytest

from skingen.analysis.difficulty import AutoencoderConfig, build_autoencoder, train_and_score
from skingen.errors import SkingenError

TINY = dict(size=16, channels=(8, 16), latent_channels=8, batch_size=4, lr=3e-3)


def smooth_images(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    """Skin-like images with a random linear shading: uint8 [n, size, size, 3]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    out = []
    for _ in range(n):
        base = rng.uniform([150, 90, 70], [230, 170, 140])
        shade = 1 + rng.uniform(-0.25, 0.25) * xx + rng.uniform(-0.25, 0.25) * yy
        out.append(np.clip(base * shade[..., None], 0, 255))
    return np.stack(out).astype(np.uint8)


def test_shapes_and_range():
    import torch

    model = build_autoencoder(AutoencoderConfig(**TINY))
    y = model(torch.rand(2, 3, 16, 16) * 2 - 1)
    assert y.shape == (2, 3, 16, 16) and y.abs().max() <= 1
    with pytest.raises(SkingenError, match="divisible"):
        AutoencoderConfig(size=20, channels=(8, 16, 32))


def test_error_on_four_images_drops_tenfold_and_is_seeded():
    images = smooth_images(4)
    cfg = AutoencoderConfig(**TINY, epochs=100)  # measured: error drops ~60x
    res = train_and_score(images, cfg)
    assert res.errors.mean() < res.initial_errors.mean() / 10, (res.initial_errors.mean(), res.errors.mean())
    assert res.steps == 100 and len(res.epoch_losses) == 100
    short = AutoencoderConfig(**TINY, epochs=3)
    assert np.array_equal(train_and_score(images, short).errors, train_and_score(images, short).errors)


def test_planted_noise_image_ranks_hardest():
    images = smooth_images(12, seed=1)
    images[7] = np.random.default_rng(3).integers(0, 256, images[7].shape, dtype=np.uint8)
    res = train_and_score(images, AutoencoderConfig(**TINY, epochs=20))
    assert int(np.argmax(res.errors)) == 7
    assert res.errors[7] > 3 * np.median(np.delete(res.errors, 7))
