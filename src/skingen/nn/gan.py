"""Adversarial losses, the R1 penalty and DiffAugment — shared by the GAN-trained families.

DiffAugment (Zhao et al., 2020) is written here because it is three short differentiable transforms
applied identically to real and fake images before the discriminator; no maintained library ships
it with a seedable generator. All randomness comes from the caller's ``torch.Generator``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from skingen.errors import SkingenError

AUGMENTS = ("color", "translation", "cutout")


def gan_optimizers(generator: torch.nn.Module, discriminator: torch.nn.Module, lr_g: float, lr_d: float,
                   betas: tuple[float, float]) -> dict[str, torch.optim.Optimizer]:
    """One Adam per network, named as the training step's ``ctx.update`` expects."""
    return {"generator": torch.optim.Adam(generator.parameters(), lr=lr_g, betas=betas),
            "discriminator": torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=betas)}


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_target: float = 0.9) -> torch.Tensor:
    """Discriminator BCE with one-sided label smoothing: reals aim at ``real_target``, fakes at 0."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_target))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: fakes aim at 1."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def d_stats(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, float]:
    """``D/real``, ``D/fake``: the discriminator's mean probability of "real" on each; 0.5/0.5 = D at chance."""
    return {"D/real": torch.sigmoid(real_logits).mean().item(), "D/fake": torch.sigmoid(fake_logits).mean().item()}


def r1_penalty(real_logits: torch.Tensor, reals: torch.Tensor) -> torch.Tensor:
    """Mean squared gradient norm of D at the reals (Mescheder et al., 2018); ``reals`` must require grad."""
    (grad,) = torch.autograd.grad(real_logits.sum(), reals, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def check_augments(policy: tuple[str, ...]) -> None:
    unknown = [a for a in policy if a not in AUGMENTS]
    if unknown:
        raise SkingenError(f"unknown DiffAugment '{unknown[0]}' (use any of {', '.join(AUGMENTS)})")


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator) -> torch.Tensor:
    """Apply ``policy`` to ``x`` ``[N,C,H,W]`` in [-1, 1]; differentiable w.r.t. ``x``."""
    n = len(x)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=generator.device).to(x.device, x.dtype)

    if "color" in policy:
        x = x + (rand(n, 1, 1, 1) - 0.5)  # brightness
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (rand(n, 1, 1, 1) * 2) + mean  # saturation
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * (rand(n, 1, 1, 1) + 0.5) + mean  # contrast
    if "translation" in policy:
        # shift by up to 1/8 of the size, zero padding; affine_grid works in [-1, 1] units (1/8 size = 0.25)
        shift = (rand(n, 2) * 2 - 1) * 0.25
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        theta[:, :, 2] = shift
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    if "cutout" in policy:
        # zero one square of half the size per image at a random centre
        h, w = x.shape[-2:]
        cy, cx = (rand(n, 1, 1) * h), (rand(n, 1, 1) * w)
        ys = torch.arange(h, device=x.device).view(1, h, 1)
        xs = torch.arange(w, device=x.device).view(1, 1, w)
        inside = ((ys - cy).abs() < h / 4) & ((xs - cx).abs() < w / 4)
        x = x * (~inside).unsqueeze(1).to(x.dtype)
    return x
