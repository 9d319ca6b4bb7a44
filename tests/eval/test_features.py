import urllib.error

import numpy as np
import pytest
import torch

from skingen.errors import SkingenError
from skingen.eval.features import (ColourExtractor, FeaturesUnavailable, InceptionExtractor, PixelExtractor,
                                   clean_resize, find_inception_weights, make_extractor,
                                   write_random_inception_weights)
from tests.eval.conftest import skin_images


def _batch(images):
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def test_pixel_features_are_area_means_in_unit_range():
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2, :2] = 255  # top-left quarter white
    f = PixelExtractor(side=2)(_batch([img]))
    assert f.shape == (1, 12) and f.dtype == np.float32
    assert np.allclose(f.reshape(3, 2, 2), [[[1, 0], [0, 0]]] * 3)


def test_colour_features_of_a_flat_image_are_its_lab_colour():
    from skimage.color import rgb2lab

    img = np.full((32, 32, 3), (200, 120, 100), np.uint8)
    f = ColourExtractor()(_batch([img]))[0]
    lab = rgb2lab(np.array([[[200, 120, 100]]]) / 255.0)[0, 0] / 100
    assert f.shape == (21,)
    assert np.allclose(f[0:3], lab, atol=1e-5) and np.allclose(f[3:6], 0, atol=1e-5)  # mean, std
    assert np.allclose(f[6:].reshape(5, 3), lab, atol=1e-5)  # every percentile


def test_features_do_not_depend_on_the_batch():
    images = _batch(skin_images(6, 32))
    for ex in (PixelExtractor(8), ColourExtractor()):
        whole = ex(images)
        assert np.array_equal(whole, np.concatenate([ex(images[:2]), ex(images[2:])]))


def test_make_extractor_specs_and_the_classifier_hook():
    assert make_extractor("pixels").name == "pixels16" and make_extractor("pixels:64").name == "pixels64"
    assert make_extractor("colour").name == "colour" and make_extractor("inception").name == "inception"
    with pytest.raises(SkingenError, match="not a skingen classifier checkpoint"):
        make_extractor("classifier:runs/x").load()
    with pytest.raises(SkingenError, match="give the best_classifier"):
        make_extractor("classifier")
    with pytest.raises(SkingenError, match="unknown feature space 'vgg'"):
        make_extractor("vgg")
    with pytest.raises(SkingenError, match="resize mode"):
        InceptionExtractor(mode="bilinear")


def test_missing_inception_weights_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("SKINGEN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache
    with pytest.raises(FeaturesUnavailable, match="--inception-weights PATH or set SKINGEN_INCEPTION_WEIGHTS"):
        InceptionExtractor(allow_download=False).load()

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url", offline)
    with pytest.raises(FeaturesUnavailable, match="download failed.*Name or service not known"):
        InceptionExtractor(allow_download=True).load()
    with pytest.raises(SkingenError, match="weights file not found"):
        find_inception_weights(tmp_path / "nope.pth")
    monkeypatch.setenv("SKINGEN_INCEPTION_WEIGHTS", str(tmp_path / "nope.pth"))
    with pytest.raises(SkingenError, match="SKINGEN_INCEPTION_WEIGHTS: Inception weights file not found"):
        find_inception_weights()


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    return write_random_inception_weights(tmp_path_factory.mktemp("inception") / "random.pth", seed=0)


def test_inception_plumbing_with_random_weights(random_weights, tmp_path):
    """The real loading and forward code with random weights (the real ones cannot be downloaded here)."""
    images = _batch(skin_images(2, 32))
    legacy = InceptionExtractor(random_weights, mode="legacy-tf")
    f = legacy(images)
    assert f.shape == (2, 2048) and np.isfinite(f).all() and f.std(axis=0).max() > 0
    scale = np.abs(f).max()  # random weights shrink activations layer by layer: compare relative to it
    assert np.abs(f - np.concatenate([legacy(images[:1]), legacy(images[1:])])).max() < 1e-4 * scale
    clean = InceptionExtractor(random_weights, mode="clean")(images)
    assert np.abs(f - clean).max() > 1e-2 * scale  # the resize mode matters, so it is recorded
    d = legacy.describe()
    assert d["mode"] == "legacy-tf" and len(d["weights_sha256"]) == 64
    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, bad)
    with pytest.raises(SkingenError, match="cannot load Inception weights"):
        InceptionExtractor(bad).load()


def test_clean_resize_is_the_identity_at_299_and_antialiases_when_shrinking():
    img = torch.randint(0, 256, (1, 3, 299, 299), dtype=torch.uint8)
    assert torch.equal(clean_resize(img, 299), img)
    stripes = torch.zeros(1, 3, 598, 598, dtype=torch.uint8)
    stripes[..., ::2, :] = 255  # one-pixel stripes: averaged to mid-grey, not aliased to black or white
    assert abs(float(clean_resize(stripes, 299).float().mean()) - 127.5) < 2
    assert float(clean_resize(stripes, 299).float().std()) < 10


@pytest.mark.inception_weights
def test_real_inception_features():
    try:
        path = find_inception_weights()
    except SkingenError as exc:
        pytest.skip(str(exc))
    if path is None:
        pytest.skip("real Inception weights not found (set SKINGEN_INCEPTION_WEIGHTS or put "
                    "pt_inception-2015-12-05-6726825d.pth in the torch hub cache)")
    from skingen.eval.fid import frechet_distance

    ex = InceptionExtractor(path, allow_download=False)
    a, b = _batch(skin_images(24, 64, seed=0)), _batch(skin_images(24, 64, seed=1))
    shifted = _batch(skin_images(24, 64, seed=1, shift=(40, -20, -20)))
    fa, fb, fs = ex(a), ex(b), ex(shifted)
    assert fa.shape == (24, 2048) and (fa >= 0).all()  # pool3 follows a ReLU
    assert frechet_distance(fa, fb) < frechet_distance(fa, fs)
