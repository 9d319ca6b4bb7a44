"""``cvae``: a convolutional (optionally label-conditional) VAE.

Encoder: strided conv blocks -> dense -> two dense heads μ and log σ² ``[N,latent]``. Decoder: dense ->
4×4 -> resize-convolution blocks -> tanh image. Loss = per-image summed squared error + β·KL, plus an
optional adversarial term on the reconstructions. Besides sampling from the prior it can *vary a real
image*: encode it, move z by ``strength``·ε, decode — augmentation around real crops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import torch
from torch import nn

from skingen.config import Fraction, NonNegative, Positive, PositiveInt, Range
from skingen.errors import SkingenError
from skingen.models.base import Condition, GenerativeModel, StepContext
from skingen.nn.blocks import ConvDecoder, ConvEncoder, Discriminator, check_size
from skingen.nn.gan import d_loss, g_loss
from skingen.seeding import seeded_normal


@dataclass(frozen=True)
class CVAEConfig:
    size: Annotated[int, Range(8, 4096)] = 256
    latent: PositiveInt = 128
    channels: PositiveInt = 32              #: width at full resolution (doubles per halving)
    max_channels: PositiveInt = 512
    hidden: PositiveInt = 512               #: dense layer between the conv body and the μ / log σ² heads
    beta: NonNegative = 1.0               #: weight of the KL term
    lr: Positive = 5e-4
    label_column: str | None = None  #: manifest column to condition on (e.g. label, ita_category)
    labels: tuple[str, ...] = ()    #: filled by the training loop from the data: class names, index order
    label_dim: PositiveInt = 16             #: size of the label embedding
    adv_weight: NonNegative = 0.0         #: weight of the adversarial term (0 = plain VAE)
    d_channels: PositiveInt = 32
    lr_d: Positive = 2e-4
    strength: Fraction = 0.5           #: default perturbation for vary-a-real-image sampling


class VAE(nn.Module):
    """Encoder + decoder (+ label embedding): everything that the EMA averages and sampling uses."""

    def __init__(self, c: CVAEConfig):
        super().__init__()
        self.body = ConvEncoder(c.size, 3, c.channels, c.max_channels, norm=True)
        self.embed = nn.Embedding(len(c.labels), c.label_dim) if c.labels else None
        extra = c.label_dim if c.labels else 0
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(self.body.out_channels * 16, c.hidden), nn.LeakyReLU(0.2))
        self.mu = nn.Linear(c.hidden + extra, c.latent)
        self.logvar = nn.Linear(c.hidden + extra, c.latent)
        self.decoder = ConvDecoder(c.size, c.latent + extra, c.channels, c.max_channels)

    def _with_label(self, h: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return h if self.embed is None else torch.cat([h, self.embed(labels)], dim=1)

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``[N,3,S,S]`` in [-1, 1] -> (μ, log σ²), each ``[N,latent]``."""
        h = self._with_label(self.fc(self.body(x)), labels)
        return self.mu(h), self.logvar(h).clamp(-30, 20)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.decoder(self._with_label(z, labels))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None, eps: torch.Tensor):
        """Training pass (through ``forward`` so multi-GPU wrappers see it): (reconstruction, μ, log σ²)."""
        mu, logvar = self.encode(x, labels)
        return self.decode(mu + torch.exp(0.5 * logvar) * eps, labels), mu, logvar


class CVAE(GenerativeModel):
    name = "cvae"
    description = "convolutional VAE; optional label condition; can vary a real image"
    supports = frozenset({"labels", "source"})
    sample_options = frozenset({"strength"})
    ema_module_name = "vae"

    def __init__(self, config: CVAEConfig):
        super().__init__(config)
        check_size(config.size)
        if config.label_column and not config.labels:
            raise SkingenError("cvae: label_column is set but labels is empty (the training loop fills it from the data)")
        self.vae = VAE(config)
        self.discriminator = Discriminator(config.size, config.d_channels, config.max_channels, sn=True) \
            if config.adv_weight > 0 else None

    def networks(self) -> dict[str, nn.Module]:
        nets = {"vae": self.vae}
        if self.discriminator is not None:
            nets["discriminator"] = self.discriminator
        return nets

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"vae": torch.optim.Adam(self.vae.parameters(), lr=self.config.lr)}
        if self.discriminator is not None:
            opts["discriminator"] = torch.optim.Adam(self.discriminator.parameters(), lr=self.config.lr_d, betas=(0.5, 0.999))
        return opts

    def _labels(self, batch: dict[str, Any]) -> torch.Tensor | None:
        return batch["label"] if self.config.labels else None

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, float]:
        c = self.config
        x, labels = batch["image"], self._labels(batch)
        recon, mu, logvar = self.net("vae")(x, labels, ctx.randn(len(x), c.latent))
        # summed over pixels (a proper Gaussian log-likelihood up to scale), averaged over the batch
        sq = (recon - x).pow(2).flatten(1)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()
        loss = sq.sum(1).mean() + c.beta * kl
        stats = {"loss/mse": sq.mean().item(), "loss/kl": kl.item()}
        if self.discriminator is not None:
            D = self.net("discriminator")
            adv = g_loss(D(recon))
            loss = loss + c.adv_weight * adv * sq.shape[1]  # per-pixel weight, like the summed MSE
            stats["loss/G"] = adv.item()
        ctx.update("vae", loss)
        stats["loss/total"] = loss.item()
        if self.discriminator is not None:
            loss_d = d_loss(D(x), D(recon.detach()))
            ctx.update("discriminator", loss_d)
            stats["loss/D"] = loss_d.item()
        return stats

    def condition_from_batch(self, batch: dict[str, Any]) -> Condition | None:
        return Condition(labels=batch["label"]) if self.config.labels else None

    @torch.no_grad()
    def sample(self, seeds: list[int], cond: Condition | None = None, **options: Any) -> torch.Tensor:
        """From the prior, or — when ``cond.source`` is given — z = μ(source) + ``strength``·ε."""
        self.check_sample_args(seeds, cond, options)
        cond = cond or Condition()
        labels = cond.labels.to(self.device) if cond.labels is not None else None
        if self.config.labels and labels is None:
            raise SkingenError(f"cvae was trained with labels {list(self.config.labels)}: pass labels to sample")
        eps = seeded_normal(seeds, (self.config.latent,), self.device)
        if cond.source is None:
            return self.vae.decode(eps, labels)
        mu, _ = self.vae.encode(cond.source.to(self.device), labels)
        strength = float(options.get("strength", self.config.strength))
        return self.vae.decode(mu + strength * eps, labels)
