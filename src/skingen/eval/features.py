"""Feature spaces for FID/KID/precision-recall/memorisation, behind one interface.

A :class:`FeatureExtractor` maps ``uint8 [N,3,S,S]`` images to ``float32 [N,D]`` features, one image
at a time (the result never depends on the batch). ``describe()`` returns everything that changes
its output (mode, weights hash, ...): it is recorded next to every value and keys the feature cache.

- ``inception``: the FID InceptionV3 (pool3, 2048-d) from torch-fidelity, TF-ported weights
  ``pt_inception-2015-12-05``. Resize mode ``legacy-tf`` feeds the S×S images to torch-fidelity,
  which resizes them to 299 with TF1-compatible bilinear interpolation without antialiasing (the
  mode of the original FID code and of published numbers); ``clean`` first resizes to 299 with PIL
  bicubic (antialiased, as clean-fid recommends) and rounds to uint8, because torch-fidelity only
  takes uint8 (its own resize is then the identity).
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

import contextlib
import io
import os
from pathlib import Path

import numpy as np

from skingen.errors import SkingenError
from skingen.runs import atomic_path, file_sha256

WEIGHTS_ENV = "SKINGEN_INCEPTION_WEIGHTS"
INCEPTION_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                 "weights-inception-2015-12-05-6726825d.pth")
# torch-fidelity's and pytorch-fid's names for the same TF-ported FID weights (same sha256 prefix).
WEIGHTS_FILES = ("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth")
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
    def __init__(self, side: int = 16):
        if side < 1:
            raise SkingenError(f"pixels:{side}: the side must be a positive number of pixels")
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


def find_inception_weights(explicit: str | Path | None = None) -> Path | None:
    """The weights file to use: ``explicit``, else ``$SKINGEN_INCEPTION_WEIGHTS``, else a copy in the torch
    hub cache; ``None`` when there is none (then the standard download is tried)."""
    for source, value in (("--inception-weights", explicit), (WEIGHTS_ENV, os.environ.get(WEIGHTS_ENV))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise SkingenError(f"{source}: Inception weights file not found: {path}")
            return path
    import torch

    hub = Path(torch.hub.get_dir()) / "checkpoints"
    return next((hub / f for f in WEIGHTS_FILES if (hub / f).is_file()), None)


class InceptionExtractor(FeatureExtractor):
    """FID InceptionV3 through torch-fidelity (module docstring). ``device`` is chosen by the caller."""

    name = "inception"

    def __init__(self, weights: str | Path | None = None, mode: str = "legacy-tf", device: str = "cpu",
                 allow_download: bool = True):
        if mode not in INCEPTION_MODES:
            raise SkingenError(f"unknown Inception resize mode '{mode}' (use one of {', '.join(INCEPTION_MODES)})")
        self.weights, self.mode, self.device, self.allow_download = weights, mode, device, allow_download
        self._net = None
        self._weights_sha = ""

    def load(self) -> None:
        if self._net is not None:
            return
        import torch
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = find_inception_weights(self.weights)
        if path is None and not self.allow_download:
            raise FeaturesUnavailable(self._missing("no local weights and downloading is off"))
        if path is not None:
            try:  # refuse anything that is not a plain tensor dict before torch-fidelity unpickles it
                torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise SkingenError(f"{path}: not a loadable Inception state dict ({exc.__class__.__name__})") from None
        try:
            # torch.hub reports the download on stderr; library code stays silent
            with contextlib.redirect_stderr(io.StringIO()):
                net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                  feature_extractor_weights_path=str(path) if path else None)
        except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError
            if path is not None:
                raise SkingenError(f"{path}: cannot load Inception weights ({exc})") from None
            raise FeaturesUnavailable(self._missing(f"download failed: {exc}")) from None
        if path is None:
            path = find_inception_weights()
        self._weights_sha = file_sha256(path) if path is not None else "downloaded"
        self._net = net.to(self.device)

    @staticmethod
    def _missing(reason: str) -> str:
        return (f"Inception weights unavailable ({reason}); Inception FID/KID/PR skipped. To get them, download "
                f"{INCEPTION_URL} once and pass --inception-weights PATH or set {WEIGHTS_ENV}=PATH")

    def describe(self) -> dict:
        return {"name": self.name, "kind": "inception", "layer": "pool3 (2048)", "mode": self.mode,
                "weights_sha256": self._weights_sha, "impl": "torch-fidelity FeatureExtractorInceptionV3"}

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


def write_random_inception_weights(path: str | Path, seed: int = 0) -> Path:
    """Save randomly initialised weights in the FID Inception layout: for plumbing tests and timing the
    network without the real weights. Features computed with them are meaningless."""
    import tempfile

    import torch
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class _KeepInit(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # keep the random init
            return None

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp, torch.random.fork_rng():
        torch.manual_seed(seed)
        empty = Path(tmp) / "empty.pt"
        torch.save({}, empty)
        net = _KeepInit("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty))
    with atomic_path(path) as tmp_path:
        torch.save(net.state_dict(), tmp_path)
    return path


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
            from skingen.downstream.classifiers import load_classifier

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
                   device: str = "cpu", allow_download: bool = True) -> FeatureExtractor:
    """``'inception'``, ``'pixels'`` / ``'pixels:64'``, ``'colour'``, ``'classifier:PATH'`` -> an extractor (not yet loaded)."""
    kind, _, arg = spec.partition(":")
    if kind == "inception" and not arg:
        return InceptionExtractor(inception_weights, inception_mode, device, allow_download)
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
    raise SkingenError(f"unknown feature space '{spec}' (use inception, pixels[:SIDE], colour or classifier:PATH)")
