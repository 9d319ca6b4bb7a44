import pytest
import torch

from skingen.nn.classifiers import ClassifierSpec, build_classifier, load_classifier, save_classifier
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


def test_finetuning_efficientnet_improves_val_accuracy_over_the_initial_network(tmp_path):
    """A tiny 3-class task (planted colour squares, 64 px): the ImageNet network with its new, untrained head is
    near chance on val; fine-tuning (the recipe: frozen stages 1-5, AdamW, warm-up then constant, label
    smoothing, rotated / mirrored views, last weights, TTA; but no probe initialisation, so the gain is the
    fine-tune's own, and learning rates 10x the recipe's for a 24-step schedule) gets it right, and the
    checkpoint round-trips into a 1280-d feature extractor."""
    import numpy as np

    from skingen.data.manifest import read_manifest
    from skingen.stats import balanced_accuracy
    from skingen.downstream.study import load_images
    from skingen.downstream.train import TrainConfig, predict, train_classifier
    from skingen.eval.features import make_extractor

    from .conftest import write_planted

    data = write_planted(tmp_path / "data", {"a": 12, "b": 12, "c": 12}, size=64,
                         splits=("train",) * 4 + ("val",) * 2)
    rows = read_manifest(data)
    labels = ("a", "b", "c")
    train, val = (load_images(data, [r for r in rows if r["split"] == s], labels, 64) for s in ("train", "val"))
    cfg = TrainConfig(arch="efficientnet-lite0", size=64, images=384, batch=16, eval_every=96, probe_init=False,
                      lr=5e-3, backbone_lr=1e-3)
    recipe = cfg.resolved()
    assert recipe.freeze == 11 and recipe.label_smoothing == 0.1 and recipe.select == "last" and recipe.tta
    torch.manual_seed(0)
    initial = build_classifier(ClassifierSpec("efficientnet-lite0", labels, 64))
    before = balanced_accuracy(val.y.numpy(), predict(initial, val.x, tta=True).argmax(1), 3)[0]
    trained = train_classifier(train.x, train.y, val.x, val.y, labels, cfg, seed=0)
    after = balanced_accuracy(val.y.numpy(), predict(trained.model, val.x, tta=True).argmax(1), 3)[0]
    assert after == trained.val_balanced_accuracy
    assert before < 0.5 and after >= 0.8
    tuned, start = trained.model.net, initial.net  # same ImageNet start: frozen prefix kept, the rest trained
    assert torch.equal(tuned._blocks[10]._project_conv.weight, start._blocks[10]._project_conv.weight)
    assert not torch.equal(tuned._blocks[11]._project_conv.weight, start._blocks[11]._project_conv.weight)
    save_classifier(tmp_path / "ckpt", trained.model, trained.spec)
    again, spec = load_classifier(tmp_path / "ckpt")
    assert np.array_equal(predict(again, val.x), predict(trained.model, val.x))
    feats = make_extractor(f"classifier:{tmp_path / 'ckpt'}")(val.x)
    assert feats.shape == (len(val.x), 1280)
