"""``dermdiff``: a diffusion model that paints a skin image from its coloured mask.

Network: a diffusers ``UNet2DModel`` (:func:`skingen.nn.unet.make_unet`) whose 8 input channels are the
noisy image (3), the coloured mask (3, lesion region in the lesion's dominant colour, the rest in the
healthy skin's), the binary lesion mask (1) and a *condition-present* indicator (1). Training with ε- or
v-prediction (``prediction``), optionally Min-SNR-γ loss weights (``snr_gamma``); sampling by DPM-Solver++
(deterministic: the only noise is the starting noise, one CPU generator per seed), so an image depends
only on (weights, seed, condition). Both belong to the shared :class:`skingen.diffusion.Diffusion`.

Classifier-free guidance. In training the condition of a fraction ``cond_drop`` of the samples is
replaced by the *null condition*: all 5 condition channels zero, the indicator included. Zeros alone
would be ambiguous — a zero lesion mask is a real condition (no ill skin) and zero is a valid (grey)
colour — so the indicator channel tells the network "no condition" apart from any real one. At sampling
the model output (ε or v, both linear in ε and x0 at a fixed x_t) is guided as
``out = out_null + w·(out_cond − out_null)`` with the two passes batched together; ``w = 1`` skips the
null pass and is exactly plain conditional sampling. Sampling without a condition uses the null
condition (unconditional generation, which the training teaches for free); guidance then has nothing
to do and is ignored.

The diffusion process (schedule, ε/v target, Min-SNR-γ, DPM-Solver++ with guidance) is
:class:`skingen.diffusion.Diffusion`; ε-prediction needs its ``clip_x0`` (on by default here). v-prediction is the
default because it painted pairs from their own masks best (``bench/dermdiff_prediction.py``; numbers in
``docs/measurements.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import torch

from skingen.config import Fraction, NonNegative, PositiveInt, Range
from skingen.diffusion import Diffusion
from skingen.errors import SkingenError
from skingen.models.base import Condition, StepContext, UNetDiffusionConfig, UNetDiffusionModel
from skingen.nn.unet import make_unet
from skingen.seeding import seeded_normal

NO_MASKS = ("dermdiff needs coloured masks but the data has none: prepare it with masks "
            "(`skingen prepare ... --masks MASKS` or `--auto-mask`)")


@dataclass(frozen=True)
class DermDiffConfig(UNetDiffusionConfig):
    dropout: Annotated[float, Range(0, 1, open_hi=True)] = 0.0                             #: UNet ResNet-block dropout (regularises on a few hundred crops)
    prediction: str = "v_prediction"                 #: epsilon | v_prediction (what the network predicts)
    snr_gamma: NonNegative = 0.0                           #: Min-SNR-γ loss weighting; 0 = plain MSE
    clip_x0: bool = True                             #: clip the solver's x0 estimates to [-1, 1] (vital for epsilon)
    cond_drop: Fraction = 0.1                           #: training fraction with the null condition (for guidance)
    guidance: NonNegative = 2.0                            #: default guidance scale w at sampling (1 = plain conditional)
    solver_steps: PositiveInt = 20                           #: default DPM-Solver++ steps per image


class DermDiff(UNetDiffusionModel):
    name = "dermdiff"
    description = "mask-conditioned diffusion UNet (noisy image + coloured mask + lesion), classifier-free guidance"
    supports = frozenset({"coloured", "lesion"})
    sample_options = frozenset({"guidance", "solver_steps"})

    def __init__(self, config: DermDiffConfig):
        super().__init__(config)
        c = config
        try:
            self.diffusion = Diffusion.from_config(c)
        except SkingenError as e:
            raise SkingenError(f"dermdiff: {e}") from None
        if not 0 <= c.cond_drop < 1:
            raise SkingenError(f"dermdiff: cond_drop must be in [0, 1), got {c.cond_drop}")
        _check_steps(c.solver_steps)
        self.unet = make_unet(c.size, 8, 3, c.widths, c.layers_per_block, c.attention or None, dropout=c.dropout)

    # -- conditions -----------------------------------------------------------------------------
    @staticmethod
    def condition_channels(coloured: torch.Tensor, lesion: torch.Tensor) -> torch.Tensor:
        """``[N,5,H,W]`` network condition: coloured ``[N,3,H,W]`` in [-1, 1], lesion ``[N,1,H,W]`` {0,1},
        and the condition-present indicator (ones). The null condition is all zeros."""
        return torch.cat([coloured, lesion, torch.ones_like(lesion)], 1)

    def _condition_for_sampling(self, cond: Condition | None) -> torch.Tensor | None:
        """Condition channels on the model's device, or None for the null (unconditional) condition."""
        if cond is None or not cond.given():
            return None
        if cond.coloured is None or cond.lesion is None:
            raise SkingenError("dermdiff needs both a coloured mask and a lesion mask (condition 'coloured' and "
                               "'lesion'); give both or neither (unconditional)")
        return self.condition_channels(cond.coloured.float(), cond.lesion.float()).to(self.device)

    def condition_from_batch(self, batch: dict[str, Any]) -> Condition | None:
        """Preview: re-paint the batch's images from their own coloured and lesion masks."""
        if "coloured" not in batch:
            raise SkingenError(NO_MASKS)
        return Condition(coloured=batch["coloured"], lesion=batch["lesion"])

    # -- training -------------------------------------------------------------------------------
    def _net(self, x_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x_in, t).sample

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, float]:
        if "coloured" not in batch:
            raise SkingenError(NO_MASKS)
        c, diffusion = self.config, self.diffusion
        x0 = batch["image"]
        n = len(x0)
        # a fixed number of draws per step whatever cond_drop is, so resuming a run is exact
        noise = ctx.randn(*x0.shape)
        t = diffusion.timesteps_from(ctx.rand(n))
        present = (ctx.rand(n) >= c.cond_drop).to(x0.dtype).view(-1, 1, 1, 1)
        cond = self.condition_channels(batch["coloured"], batch["lesion"]) * present
        noisy = diffusion.add_noise(x0, noise, t)
        pred = self.net("unet")(torch.cat([noisy, cond.to(noisy.dtype)], 1), t).sample
        se = (pred.float() - diffusion.target(x0, noise, t)).pow(2).mean(dim=(1, 2, 3))
        loss = diffusion.loss(se, t)
        ctx.update("unet", loss)
        return {"loss/diffusion": loss.item(), "loss/mse": se.mean().item()}

    @torch.no_grad()
    def loss_at(self, images: torch.Tensor, coloured: torch.Tensor, lesion: torch.Tensor,
                timesteps: list[int] | None = None, seed: int = 0) -> float:
        """Conditional ε mean squared error of ``images`` ``[N,3,H,W]`` given their masks, at fixed
        ``timesteps`` (default 8 spread over the schedule) with fixed noise from ``seed``: a repeatable
        training-progress measure, comparable between ε- and v-prediction models."""
        steps = timesteps or torch.linspace(0, self.config.timesteps - 1, 8).round().long().tolist()
        n, dev = len(images), self.device
        t = torch.tensor(steps).repeat_interleave(n).to(dev)
        x0 = images.repeat(len(steps), 1, 1, 1).to(dev)
        cond = self.condition_channels(coloured, lesion).repeat(len(steps), 1, 1, 1).to(dev)
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)).to(dev)
        noisy = self.diffusion.add_noise(x0, noise, t)
        eps = self.diffusion.to_eps(self._net(torch.cat([noisy, cond], 1), t), noisy, t)
        return float((eps - noise).pow(2).mean())

    # -- sampling -------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, seeds: list[int], cond: Condition | None = None, **options: Any) -> torch.Tensor:
        """Images ``[len(seeds),3,S,S]`` in [-1, 1] painted from ``cond`` (``coloured`` and ``lesion``, or none
        for unconditional images). Options: ``guidance`` (w, default the config's), ``solver_steps``."""
        self.check_sample_args(seeds, cond, options)
        guidance = float(options.get("guidance", self.config.guidance))
        if not math.isfinite(guidance):
            raise SkingenError(f"dermdiff: guidance must be a finite number, got {guidance}")
        steps = int(options.get("solver_steps", self.config.solver_steps))
        _check_steps(steps)
        size = self.config.size
        noise = seeded_normal(seeds, (3, size, size), self.device)
        channels = self._condition_for_sampling(cond)
        if channels is None:  # unconditional: the null condition, which guidance cannot move
            channels, guidance = noise.new_zeros(len(seeds), 5, size, size), 1.0
        return self.diffusion.sample(self._net, noise, channels, steps, guidance)


def _check_steps(steps: int) -> None:
    if steps < 1:
        raise SkingenError(f"dermdiff: solver_steps must be at least 1, got {steps}")
