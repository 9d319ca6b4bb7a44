"""``dermgan``: a Pix2Pix-style GAN that paints a skin image from a coloured mask.

Condition: the coloured mask ``[N,3,S,S]`` (lesion in the lesion colour, the rest in the healthy-skin
colour) and the binary lesion mask ``[N,1,S,S]``, stacked as 4 input channels.

Generator: a U-Net — a 3×3 stem, stride-2 :class:`~skingen.nn.blocks.DownBlock` s down to 4 px, then
resize-convolution :class:`~skingen.nn.blocks.UpBlock` s (no checkerboards) with skip connections at
every level, 3×3 conv and tanh. Diversity: a latent ``z`` ``[N,latent]`` (one generator per seed at
sampling) is projected and added at the 4 px bottleneck; because Pix2Pix generators learn to ignore
their noise (Isola et al., 2017), an optional mode-seeking term (Mao et al., 2019,
``diversity_weight``) rewards different images for different ``z`` under the same condition.

Discriminator: a PatchGAN (:class:`~skingen.nn.blocks.PatchDiscriminator`) on (condition, image);
DiffAugment's geometric transforms (translation, cutout) are applied to the stacked pair so the
condition stays aligned with its image. Generator loss: adversarial + ``l1_weight``·L1 +
``lesion_weight``·L1 over the lesion pixels only (the small lesion area would otherwise count for
little in the plain L1 — the earlier DermGAN's blur was worst there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import torch
from torch import nn

from skingen.config import Fraction, NonNegative, NonNegativeInt, Positive, PositiveInt, Range
from skingen.errors import SkingenError
from skingen.models.base import Condition, GenerativeModel, StepContext
from skingen.nn.blocks import DownBlock, PatchDiscriminator, UpBlock, check_size, width
from skingen.nn.gan import check_augments, d_loss, d_stats, diff_augment, g_loss, gan_optimizers
from skingen.seeding import seeded_normal

#: DiffAugment transforms that keep a (condition, image) pair aligned; "color" would recolour the condition too
PAIR_AUGMENTS = ("translation", "cutout")


@dataclass(frozen=True)
class DermGANConfig:
    size: Annotated[int, Range(8, 4096)] = 256                 #: output size in px (power of two)
    latent: NonNegativeInt = 64                #: z injected at the bottleneck (diversity)
    g_channels: PositiveInt = 32            #: generator width at full resolution (doubles per halving)
    d_channels: PositiveInt = 64
    max_channels: PositiveInt = 512
    d_layers: PositiveInt = 3               #: PatchGAN stride-2 layers (3: 70 px patches)
    g_dropout: Annotated[float, Range(0, 1, open_hi=True)] = 0.0          #: dropout in the decoder's three lowest levels (training only)
    lr_g: Positive = 2e-4
    lr_d: Positive = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    real_target: Fraction = 0.9        #: one-sided label smoothing
    l1_weight: NonNegative = 100.0        #: Pix2Pix's λ
    lesion_weight: NonNegative = 100.0    #: extra L1 over the lesion pixels
    diversity_weight: NonNegative = 0.0   #: mode-seeking term (0 = off; costs a second generator pass)
    diffaugment: tuple[str, ...] = ("translation", "cutout")
    spectral_norm: bool = True
    labels: tuple[str, ...] = ()    #: unused; kept so every config can record its classes


class UNetGenerator(nn.Module):
    """(condition ``[N,cin,S,S]``, z ``[N,latent]``) -> image ``[N,3,S,S]`` in [-1, 1]."""

    def __init__(self, size: int, cin: int, latent: int, channels: int, max_channels: int, dropout: float = 0.0):
        super().__init__()
        levels = check_size(size)  # halvings from size to 4 px
        widths = [width(size // 2 ** i, size, channels, max_channels) for i in range(levels + 1)]
        self.stem = nn.Sequential(nn.Conv2d(cin, widths[0], 3, padding=1), nn.LeakyReLU(0.2))
        self.downs = nn.ModuleList(DownBlock(widths[i], widths[i + 1]) for i in range(levels))
        self.z_proj = nn.Linear(latent, widths[-1] * 16)
        # up i maps level i+1 (plus its skip, except at the bottleneck) to level i
        self.ups = nn.ModuleList(
            UpBlock(widths[i + 1] * (1 if i == levels - 1 else 2), widths[i]) for i in range(levels))
        self.drops = nn.ModuleList(nn.Dropout(dropout if i >= levels - 3 else 0.0) for i in range(levels))
        self.head = nn.Sequential(nn.Conv2d(widths[0] * 2, 3, 3, padding=1), nn.Tanh())

    def forward(self, cond: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(cond)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips[-1] + self.z_proj(z).view_as(skips[-1])
        for i in reversed(range(len(self.ups))):
            x = self.drops[i](self.ups[i](x))
            x = torch.cat([x, skips[i]], 1)
        return self.head(x)


class DermGAN(GenerativeModel):
    name = "dermgan"
    description = "Pix2Pix-style U-Net GAN: coloured mask + lesion mask -> image"
    supports = frozenset({"coloured", "lesion"})
    requires = supports

    def __init__(self, config: DermGANConfig):
        super().__init__(config)
        c = config
        check_size(c.size)
        check_augments(c.diffaugment)
        bad = [a for a in c.diffaugment if a not in PAIR_AUGMENTS]
        if bad:
            raise SkingenError(f"dermgan: DiffAugment '{bad[0]}' would change the condition too; "
                               f"use any of {', '.join(PAIR_AUGMENTS)}")
        if min(c.l1_weight, c.lesion_weight, c.diversity_weight) < 0:
            raise SkingenError("dermgan: loss weights must be >= 0")
        self.generator = UNetGenerator(c.size, 4, c.latent, c.g_channels, c.max_channels, c.g_dropout)
        self.discriminator = PatchDiscriminator(c.size, 7, c.d_channels, c.max_channels, c.d_layers, c.spectral_norm)

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return gan_optimizers(self.generator, self.discriminator, c.lr_g, c.lr_d, c.betas)

    @staticmethod
    def condition_tensor(coloured: torch.Tensor, lesion: torch.Tensor) -> torch.Tensor:
        """``[N,4,S,S]``: coloured mask in [-1, 1] and the lesion mask mapped to {-1, 1}."""
        return torch.cat([coloured, lesion * 2 - 1], 1)

    def _judge(self, cond: torch.Tensor, images: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        pair = torch.cat([cond, images], 1)
        if self.config.diffaugment:
            pair = diff_augment(pair, self.config.diffaugment, ctx.generator)
        return self.net("discriminator")(pair)

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, float]:
        c = self.config
        if "coloured" not in batch:
            raise SkingenError("dermgan needs coloured masks: prepare the data with --masks DIR or --auto-mask")
        G = self.net("generator")
        reals, lesion = batch["image"], batch["lesion"]
        cond = self.condition_tensor(batch["coloured"], lesion)
        n = len(reals)
        z = ctx.randn(n, c.latent)
        fakes = G(cond, z)

        # discriminator step
        real_logits = self._judge(cond, reals, ctx)
        fake_logits = self._judge(cond, fakes.detach(), ctx)
        loss_d = d_loss(real_logits, fake_logits, c.real_target)
        ctx.update("discriminator", loss_d)

        # generator step
        adv = g_loss(self._judge(cond, fakes, ctx))
        err = (fakes - reals).abs()
        l1 = err.mean()
        lesion_l1 = (err * lesion).sum() / (3 * lesion.sum()).clamp(min=1)
        loss_g = adv + c.l1_weight * l1 + c.lesion_weight * lesion_l1
        stats = {}
        if c.diversity_weight > 0:
            z2 = ctx.randn(n, c.latent)
            fakes2 = G(cond, z2)
            # mode seeking: image distance per unit of latent distance; its inverse is minimised
            ratio = (fakes - fakes2).abs().mean((1, 2, 3)) / (z - z2).abs().mean(1)
            ms = 1 / (ratio.mean() + 1e-5)
            loss_g = loss_g + c.diversity_weight * ms
            stats["loss/mode_seeking"] = ms.item()
        ctx.update("generator", loss_g)
        stats.update({"loss/D": loss_d.item(), "loss/G": adv.item(), "loss/l1": l1.item(),
                      "loss/lesion_l1": lesion_l1.item(), **d_stats(real_logits, fake_logits)})
        return stats

    @torch.no_grad()
    def sample(self, seeds: list[int], cond: Condition | None = None, **options: Any) -> torch.Tensor:
        self.check_sample_args(seeds, cond, options)
        z = seeded_normal(seeds, (self.config.latent,), self.device)
        x = self.condition_tensor(cond.coloured.to(self.device), cond.lesion.to(self.device))
        return self.generator(x, z)

    def condition_from_batch(self, batch: dict[str, Any]) -> Condition | None:
        if "coloured" not in batch:
            raise SkingenError("dermgan needs coloured masks: prepare the data with --masks DIR or --auto-mask")
        return Condition(coloured=batch["coloured"], lesion=batch["lesion"])
