"""Train one classifier on in-memory images and predict class probabilities.

Every arm of the study gets the same budget of training images seen (``images``), so adding synthetic
images changes *what* the classifier sees, not *how much* it trains. The model kept is the one with the
best balanced accuracy on the real validation split, checked every ``eval_every`` images.

Classical augmentation (``classical=True``) is the torchvision ``transforms.v2`` baseline: random
rotation (±20°), random resized crop (scale 0.6-1), horizontal and vertical flips, colour jitter
(brightness/contrast/saturation 0.2, hue 0.02), drawn per image.

Determinism: with one ``seed`` the batch order (a seeded generator) and every random transform (the
global torch generator, seeded inside a forked RNG state so callers' state is untouched) are fixed, so a
CPU run gives identical probabilities each time.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from skingen.downstream.classifiers import ClassifierSpec, build_classifier
from skingen.downstream.stats import balanced_accuracy
from skingen.errors import SkingenError


@dataclass(frozen=True)
class TrainConfig:
    arch: str = "small-cnn"
    size: int = 64
    images: int = 8000  # training images seen by every arm
    batch: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    eval_every: int = 1000  # images between validation checks (model selection)
    weights: str | None = None  # local ImageNet state dict for resnet18

    def __post_init__(self) -> None:
        if self.images < self.batch or self.batch < 1:
            raise SkingenError(f"train.images ({self.images}) must be at least train.batch ({self.batch}) >= 1")


@dataclass
class TrainedClassifier:
    model: nn.Module
    spec: ClassifierSpec
    val_balanced_accuracy: float
    best_images: int  # images seen when the kept weights were taken
    seconds: float


def classical_transform(size: int):
    """The classical-augmentation baseline: ``uint8 [3,S,S]`` -> ``uint8 [3,size,size]`` (module docstring)."""
    from torchvision.transforms import v2

    return v2.Compose([
        v2.RandomRotation(20),
        v2.RandomResizedCrop(size, scale=(0.6, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomVerticalFlip(),
        v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02),
    ])


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """``uint8 [N,3,S,S]`` -> float in [-1, 1]."""
    return images.float().div(127.5).sub(1.0)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch: int = 256, device: str = "cpu") -> np.ndarray:
    """Class probabilities ``float64 [N,k]`` for ``uint8 [N,3,S,S]`` images."""
    model.eval()
    out = [torch.softmax(model(to_unit(images[i:i + batch]).to(device)).double(), -1).cpu()
           for i in range(0, len(images), batch)]
    return torch.cat(out).numpy()


def train_classifier(images: torch.Tensor, labels: torch.Tensor, val_images: torch.Tensor, val_labels: torch.Tensor,
                     class_names: tuple[str, ...], cfg: TrainConfig, seed: int, classical: bool = False,
                     device: str = "cpu", progress: Callable[[int, int], None] | None = None) -> TrainedClassifier:
    """Train on ``images uint8 [N,3,S,S]`` / ``labels int64 [N]`` (S = ``cfg.size``); select on the val set.

    The loss weights classes by inverse training frequency, so a class the augmentation made larger
    does not win by its count alone.
    """
    t0 = time.perf_counter()
    k = len(class_names)
    spec = ClassifierSpec(arch=cfg.arch, labels=tuple(class_names), size=cfg.size, weights=cfg.weights)
    counts = torch.bincount(labels, minlength=k).double()
    weights = torch.where(counts > 0, counts.sum() / (k * counts.clamp(min=1)), torch.zeros_like(counts)).float()
    augment = classical_transform(cfg.size) if classical else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_classifier(spec).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        steps = cfg.images // cfg.batch
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.15)
        loss_fn = nn.CrossEntropyLoss(weight=weights.to(device))
        order = torch.Generator().manual_seed(seed)
        perm, pos = torch.randperm(len(images), generator=order), 0
        best, best_state, best_at = -1.0, None, 0
        eval_steps = max(1, cfg.eval_every // cfg.batch)
        for step in range(1, steps + 1):
            if pos + cfg.batch > len(perm):
                perm, pos = torch.randperm(len(images), generator=order), 0
            idx = perm[pos:pos + cfg.batch] if len(perm) >= cfg.batch else perm
            pos += cfg.batch
            x = images[idx]
            if augment is not None:
                x = torch.stack([augment(im) for im in x])
            model.train()
            loss = loss_fn(model(to_unit(x).to(device)), labels[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if step % eval_steps == 0 or step == steps:
                if len(val_images):
                    pred = predict(model, val_images, device=device).argmax(-1)
                    score = float(balanced_accuracy(val_labels.numpy(), pred, k)[0])
                else:
                    score = 0.0
                if score > best:
                    best, best_state, best_at = score, copy.deepcopy(model.state_dict()), step * cfg.batch
                if progress:
                    progress(step, steps)
    model.load_state_dict(best_state)
    return TrainedClassifier(model.eval(), spec, best, best_at, time.perf_counter() - t0)
