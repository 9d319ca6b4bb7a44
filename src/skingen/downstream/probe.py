"""Linear probes: logistic regression on frozen pretrained features (``--classifier probe:NAME``).

A probe trains in seconds instead of minutes, so studies with many seeds and fractions fit on a laptop.
Features are extracted once per image and kept in the evaluate feature cache
(:class:`skingen.eval.cache.FeatureCache`), keyed by the sha256 of the image pixels at the study size
and the extractor's ``describe()`` (weights hash), so a rerun, another arm or another seed reads them.

- ``probe:inception``: the FID InceptionV3 pool3 features (2048-d) of :mod:`skingen.eval.features`
  (never downloaded; images resized to 299 inside, ``legacy-tf`` mode).
- ``probe:efficientnet-lite0``: the ``efficientnet-lite0`` feature space of :mod:`skingen.eval.features`:
  the global-pooled penultimate layer (1280-d) of the ImageNet EfficientNet-Lite0, images resized to 224.

The classifier: features standardised on the training images, then scikit-learn's
``LogisticRegression`` (L2, lbfgs, classes weighted by inverse training frequency like the CNN's loss),
with the inverse regularisation strength ``C`` chosen from :data:`C_GRID` by balanced accuracy on the
real val split (ties: higher val log-likelihood). It is deterministic, so runs differ only by the real
fraction and the synthetic images a seed draws.

Classical augmentation for a probe: ``views`` augmented copies of every training image (the study's
classical transform, drawn from a generator seeded by the image's pixels and the view number, so the same
for every arm and seed, and cached); the classical arm trains on those views instead of the originals.
"""

from __future__ import annotations

import copy
import hashlib
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from skingen.stats import balanced_accuracy
from skingen.errors import SkingenError
from skingen.eval.cache import FeatureCache
from skingen.eval.features import FeatureExtractor, make_extractor
from skingen.downstream.views import augmented_view

PROBES = ("inception", "efficientnet-lite0")
C_GRID = tuple(float(c) for c in np.logspace(-5, 2, 15))  # 1e-5 .. 1e2, half-decade steps
PREFIX = "probe:"


def is_probe(arch: str) -> bool:
    return arch.startswith(PREFIX)


def probe_name(arch: str) -> str:
    name = arch[len(PREFIX):]
    if name not in PROBES:
        raise SkingenError(f"unknown probe '{arch}' (use {', '.join(PREFIX + p for p in PROBES)})")
    return name


def make_probe_extractor(arch: str, device: str = "cpu") -> FeatureExtractor:
    """The evaluate feature space of the same name (:func:`skingen.eval.features.make_extractor`)."""
    return make_extractor(probe_name(arch), device=device)


class ProbeFeatures:
    """Cached features of image tensors for one extractor: ``features(images uint8 [N,3,S,S]) -> [N,D]``."""

    def __init__(self, extractor: FeatureExtractor, cache: FeatureCache | None = None, chunk: int = 32,
                 progress: Callable[[int, int, str | None], None] | None = None):
        self.extractor, self.cache, self.chunk, self.progress = extractor, cache, chunk, progress
        self.extractor.load()
        self.seconds = 0.0  # spent extracting (cache misses)

    def features(self, images: torch.Tensor, what: str = "images") -> np.ndarray:
        key = FeatureCache.key(_pixels_sha(images), len(images), int(images.shape[-1]), self.extractor.describe())
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None:
            return hit
        t0 = time.perf_counter()
        parts = []
        for i in range(0, len(images), self.chunk):
            parts.append(self.extractor(images[i:i + self.chunk]))
            if self.progress:
                self.progress(min(i + self.chunk, len(images)), len(images), f"{self.extractor.name} features of {what}")
        feats = np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 0), np.float32)
        self.seconds += time.perf_counter() - t0
        if self.cache is not None:
            self.cache.put(key, feats)
        return feats

    def views(self, images: torch.Tensor, views: int, size: int, what: str = "images") -> np.ndarray:
        """Features ``[views, N, D]`` of ``views`` classically augmented copies of each image (module docstring)."""
        return np.stack([self.features(augmented_view(images, v, size), f"{what} (classical view {v + 1}/{views})")
                         for v in range(views)])


def _pixels_sha(images: torch.Tensor) -> str:
    return "pixels:" + hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()


@dataclass
class TrainedProbe:
    """A fitted probe: ``predict(features [N,D]) -> float64 [N,k]`` class probabilities."""
    scaler: object
    model: object
    classes: int
    C: float
    val_balanced_accuracy: float
    seconds: float

    def predict(self, feats: np.ndarray) -> np.ndarray:
        p = self.model.predict_proba(self.scaler.transform(feats))
        out = np.zeros((len(feats), self.classes))
        out[:, self.model.classes_] = p  # a class missing from training keeps probability 0
        return out


def train_probe(feats: np.ndarray, labels: np.ndarray, val_feats: np.ndarray, val_labels: np.ndarray, classes: int,
                c_grid: tuple[float, ...] = C_GRID) -> TrainedProbe:
    """Fit one logistic regression per ``C`` on ``feats [N,D]`` / ``labels int [N]``; keep the best on val."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    t0 = time.perf_counter()
    if len(np.unique(labels)) < 2:
        raise SkingenError(f"a probe needs at least 2 classes in its training images, got {np.unique(labels).tolist()}")
    scaler = StandardScaler().fit(feats)
    x = scaler.transform(feats)
    best, best_model, best_c = None, None, c_grid[0]
    # warm start along increasing C (the regularisation path): each fit starts from the last solution,
    # several times faster than cold fits on separable data, where weak regularisation converges slowly
    model = LogisticRegression(max_iter=500, class_weight="balanced", warm_start=True)
    for c in sorted(c_grid):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached on the weakest C: still a fit
            model = copy.deepcopy(model).set_params(C=c).fit(x, labels)
        probe = TrainedProbe(scaler, model, classes, c, 0.0, 0.0)
        if not len(val_feats):
            score = (0.0, 0.0)
        else:
            p = probe.predict(val_feats)
            nll = -np.log(np.clip(p[np.arange(len(val_labels)), val_labels], 1e-12, None)).mean()
            score = (float(balanced_accuracy(val_labels, p.argmax(-1), classes)[0]), -float(nll))
        if best is None or score > best:
            best, best_model, best_c = score, model, c
    return TrainedProbe(scaler, best_model, classes, best_c, best[0], time.perf_counter() - t0)
