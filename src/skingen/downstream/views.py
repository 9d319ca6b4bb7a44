"""The classical-augmentation baseline of the downstream study: random rotations, crops, flips and colour
jitter (``classical_transform``), and seeded views of images for the probes (``augmented_view``). Both the
classifier training (``train``) and the probes (``probe``) use them, so they live apart from both."""

from __future__ import annotations

import hashlib

import torch


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


def augmented_view(images: torch.Tensor, view: int, size: int) -> torch.Tensor:
    """``uint8 [N,3,S,S]`` -> one classical-augmentation draw per image, seeded by its pixels and ``view``."""
    augment = classical_transform(size)
    out = []
    with torch.random.fork_rng(devices=[]):
        for im in images:
            digest = hashlib.sha256(im.numpy().tobytes() + view.to_bytes(4, "little")).digest()
            torch.manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
            out.append(augment(im))
    return torch.stack(out) if out else images[:0]
