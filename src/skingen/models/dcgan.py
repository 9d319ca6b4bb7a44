"""``dcgan``: a fully convolutional DCGAN with resize-convolution upsampling, for small data sets.

Generator: z ``[N,latent]`` -> dense 4×4 -> (nearest ×2 + conv) blocks -> tanh image ``[N,3,S,S]``.
Discriminator: strided 4×4 convs -> logit. Options that matter on a few hundred images: one-sided
label smoothing, DiffAugment, spectral norm and the R1 penalty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import torch

from skingen.config import Fraction, NonNegative, Positive, PositiveInt, Range
from skingen.models.base import Condition, GenerativeModel, StepContext
from skingen.nn.blocks import ConvDecoder, Discriminator, check_size
from skingen.nn.gan import check_augments, d_loss, d_stats, diff_augment, g_loss, gan_optimizers, r1_penalty
from skingen.seeding import seeded_normal


@dataclass(frozen=True)
class DCGANConfig:
    size: Annotated[int, Range(8, 4096)] = 256                 #: output size in px (power of two)
    latent: PositiveInt = 128
    g_channels: PositiveInt = 32            #: generator width at full resolution (doubles per halving)
    d_channels: PositiveInt = 32
    max_channels: PositiveInt = 512
    lr_g: Positive = 2e-4
    lr_d: Positive = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    real_target: Fraction = 0.9        #: one-sided label smoothing
    diffaugment: tuple[str, ...] = ("color", "translation", "cutout")
    spectral_norm: bool = True
    r1_gamma: NonNegative = 0.0           #: weight of the R1 penalty (0 = off)
    labels: tuple[str, ...] = ()    #: unused by dcgan; kept so every config can record its classes


class DCGAN(GenerativeModel):
    name = "dcgan"
    description = "DCGAN with resize-convolutions; unconditional"

    def __init__(self, config: DCGANConfig):
        super().__init__(config)
        check_size(config.size)
        check_augments(config.diffaugment)
        self.generator = ConvDecoder(config.size, config.latent, config.g_channels, config.max_channels)
        self.discriminator = Discriminator(config.size, config.d_channels, config.max_channels, sn=config.spectral_norm)

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return gan_optimizers(self.generator, self.discriminator, c.lr_g, c.lr_d, c.betas)

    def _augment(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        return diff_augment(x, self.config.diffaugment, ctx.generator) if self.config.diffaugment else x

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, float]:
        c = self.config
        G, D = self.net("generator"), self.net("discriminator")
        reals = batch["image"]
        n = len(reals)

        # discriminator step
        fakes = G(ctx.randn(n, c.latent)).detach()
        reals_in = reals.detach().requires_grad_(c.r1_gamma > 0)
        real_logits = D(self._augment(reals_in, ctx))
        fake_logits = D(self._augment(fakes, ctx))
        loss_d = d_loss(real_logits, fake_logits, c.real_target)
        stats = {"loss/D": loss_d.item()}
        if c.r1_gamma > 0:
            r1 = r1_penalty(real_logits, reals_in)
            loss_d = loss_d + 0.5 * c.r1_gamma * r1
            stats["loss/r1"] = r1.item()
        ctx.update("discriminator", loss_d)

        # generator step
        fakes = G(ctx.randn(n, c.latent))
        loss_g = g_loss(D(self._augment(fakes, ctx)))
        ctx.update("generator", loss_g)
        stats.update({"loss/G": loss_g.item(), **d_stats(real_logits, fake_logits)})
        return stats

    @torch.no_grad()
    def sample(self, seeds: list[int], cond: Condition | None = None, **options: Any) -> torch.Tensor:
        self.check_sample_args(seeds, cond, options)
        z = seeded_normal(seeds, (self.config.latent,), self.device)
        return self.generator(z)
