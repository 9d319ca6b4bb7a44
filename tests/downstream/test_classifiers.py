import pytest
import torch

from skingen.downstream.classifiers import ClassifierSpec, build_classifier, load_classifier, save_classifier
from skingen.errors import SkingenError


def test_resnet18_loads_a_local_state_dict_and_round_trips(tmp_path):
    from torchvision.models import resnet18

    torch.manual_seed(0)
    imagenet = resnet18(weights=None)
    torch.save(imagenet.state_dict(), tmp_path / "resnet18.pth")
    net = build_classifier(ClassifierSpec("resnet18", ("a", "b", "c"), 32, str(tmp_path / "resnet18.pth"))).eval()
    assert torch.equal(net.net.conv1.weight, imagenet.conv1.weight)  # the local weights were used
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert net(x).shape == (2, 3) and net.features(x).shape == (2, 512)
    save_classifier(tmp_path / "ckpt", net, ClassifierSpec("resnet18", ("a", "b", "c"), 32))
    again, spec = load_classifier(tmp_path / "ckpt")
    assert spec.labels == ("a", "b", "c") and torch.equal(again(x), net(x))
    torch.save({"nope": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(SkingenError, match="not a torchvision ResNet-18 state dict"):
        build_classifier(ClassifierSpec("resnet18", ("a", "b"), 32, str(tmp_path / "bad.pth")))
    with pytest.raises(SkingenError, match="unknown classifier 'vgg'"):
        ClassifierSpec("vgg", ("a", "b"))
