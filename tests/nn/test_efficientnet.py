import pytest
import torch

from skingen.errors import SkingenError
from skingen.nn.efficientnet import FEATURE_DIM, WEIGHTS_FILENAME, EfficientNetLite0, read_weights, weights_file


@pytest.fixture(scope="module")
def imagenet_net():
    return EfficientNetLite0().eval()  # shipped weights, ImageNet head kept


def test_shipped_weights_load_with_every_key_matched(imagenet_net):
    path = weights_file()
    assert path.name == WEIGHTS_FILENAME
    state = read_weights(path)
    mine = imagenet_net.net.state_dict()
    assert set(mine) == set(state)  # strict: nothing missing, nothing left over
    for k, v in state.items():
        assert torch.equal(mine[k], v), k
    assert sum(p.numel() for p in imagenet_net.parameters()) == 4_652_008  # + BN statistics = 4,694,073 values


def test_imagenet_head_recognises_a_cat(imagenet_net):
    """Right weights *and* right preprocessing ([-1, 1]): skimage's Chelsea photo is a cat class."""
    from skimage import data

    x = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 127.5 - 1
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        probs = imagenet_net(x).softmax(-1)[0]
    assert int(probs.argmax()) in range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert float(probs[281:286].sum()) > 0.8


def test_new_head_keeps_the_backbone_and_features_are_penultimate(imagenet_net):
    torch.manual_seed(0)
    net = EfficientNetLite0(classes=3).eval()
    assert net.head.out_features == 3
    head_ids = {id(p) for p in net.head.parameters()}
    assert not head_ids & {id(p) for p in net.backbone_parameters()}
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        f = net.features(x)
        assert f.shape == (2, FEATURE_DIM) and (f >= 0).all()  # after ReLU6
        torch.testing.assert_close(f, imagenet_net.features(x))  # same pretrained backbone
        torch.testing.assert_close(net(x), net.head(f))  # eval: dropout is the identity
        torch.testing.assert_close(net.features(x[:1]), f[:1])  # per image, not per batch
    assert net(torch.zeros(1, 3, 128, 128)).shape == (1, 3)


def test_truncated_or_wrong_weights_file_is_a_one_line_error(tmp_path):
    good = weights_file().read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good[: len(good) // 2])
    wrong = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 512)}, wrong)
    reshaped = tmp_path / "reshaped.pth"
    state = read_weights(weights_file())
    state["_fc.weight"] = torch.zeros(10, FEATURE_DIM)
    torch.save(state, reshaped)
    for path, says in ((cut, "not a readable"), (wrong, "keys missing"), (reshaped, "wrong shape"),
                       (tmp_path / "absent.pth", "not found")):
        with pytest.raises(SkingenError) as err:
            EfficientNetLite0(classes=3, weights=path)
        msg = str(err.value)
        assert str(path) in msg and says in msg and "\n" not in msg
