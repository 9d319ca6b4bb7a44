"""``dermdiff``: a diffusion model that paints a skin image from its coloured mask.

Network: a diffusers ``UNet2DModel`` (:func:`skingen.nn.unet.make_unet`) whose 8 input channels are the
noisy image (3), the coloured mask (3, lesion region in the lesion's dominant colour, the rest in the
healthy skin's), the binary lesion mask (1) and a *condition-present* indicator (1). Training uses a
diffusers ``DDPMScheduler`` with ε- or v-prediction (``prediction``), optionally Min-SNR-γ loss weights
(``snr_gamma``, Hang et al. 2023, via ``diffusers.training_utils.compute_snr``). Sampling uses DPM-Solver++
(diffusers ``DPMSolverMultistepScheduler``, order 2, deterministic: the only noise is the starting noise,
one CPU generator per seed), so an image depends only on (weights, seed, condition).

Classifier-free guidance. In training the condition of a fraction ``cond_drop`` of the samples is
replaced by the *null condition*: all 5 condition channels zero, the indicator included. Zeros alone
would be ambiguous — a zero lesion mask is a real condition (no ill skin) and zero is a valid (grey)
colour — so the indicator channel tells the network "no condition" apart from any real one. At sampling
the model output (ε or v, both linear in ε and x0 at a fixed x_t) is guided as
``out = out_null + w·(out_cond − out_null)`` with the two passes batched together; ``w = 1`` skips the
null pass and is exactly plain conditional sampling. Sampling without a condition uses the null
condition (unconditional generation, which the training teaches for free); guidance then has nothing
to do and is ignored.

ε-prediction and the schedule: with the cosine schedule (ᾱ ≈ 2e-9 at the last training step) the
solver's first clean-image estimate x0 = (x_t − √(1−ᾱ)·ε)/√ᾱ multiplies any ε error by ~2e4 (see
:mod:`skingen.models.inpainter`); a linear schedule (ᾱ_T ≈ 4e-5) still multiplies it by ~160.
``clip_x0`` (on by default) clips every x0 estimate of the solver to [-1, 1] (diffusers' dynamic
thresholding with ``sample_max_value=1``). Measured with bench/dermdiff_prediction.py (4 pairs at 16 px,
200 steps; mean squared error of each pair painted from its own masks, guidance 1, 10 solver steps):
v-prediction 0.082 with or without clipping; ε + cosine 0.98 unclipped, 0.29 clipped; ε + linear 0.81
unclipped, 0.32 clipped. Hence v-prediction is the default, and ε only makes sense with ``clip_x0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from skingen.errors import SkingenError
from skingen.models.base import Condition, GenerativeModel, StepContext
from skingen.nn.unet import make_unet

PREDICTIONS = ("epsilon", "v_prediction")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
NO_MASKS = ("dermdiff needs coloured masks but the data has none: prepare it with masks "
            "(`skingen prepare ... --masks MASKS` or `--auto-mask`)")


@dataclass(frozen=True)
class DermDiffConfig:
    size: int = 256
    widths: tuple[int, ...] = (64, 128, 256, 256)   #: UNet channels per resolution level, full size first
    layers_per_block: int = 2
    attention: tuple[bool, ...] = ()                 #: per level; empty = the lowest two levels (if >= 3 levels)
    dropout: float = 0.0                             #: UNet ResNet-block dropout (regularises on a few hundred crops)
    timesteps: int = 1000                            #: training diffusion steps
    beta_schedule: str = "squaredcos_cap_v2"         #: linear | scaled_linear | squaredcos_cap_v2
    prediction: str = "v_prediction"                 #: epsilon | v_prediction (what the network predicts)
    snr_gamma: float = 0.0                           #: Min-SNR-γ loss weighting; 0 = plain MSE
    clip_x0: bool = True                             #: clip the solver's x0 estimates to [-1, 1] (vital for epsilon)
    cond_drop: float = 0.1                           #: training fraction with the null condition (for guidance)
    guidance: float = 2.0                            #: default guidance scale w at sampling (1 = plain conditional)
    solver_steps: int = 20                           #: default DPM-Solver++ steps per image
    lr: float = 2e-4


class DermDiff(GenerativeModel):
    name = "dermdiff"
    Config = DermDiffConfig
    description = "mask-conditioned diffusion UNet (noisy image + coloured mask + lesion), classifier-free guidance"
    supports = frozenset({"coloured", "lesion"})
    sample_options = frozenset({"guidance", "solver_steps"})
    ema_module_name = "unet"

    def __init__(self, config: DermDiffConfig):
        super().__init__(config)
        from diffusers import DDPMScheduler

        c = config
        if c.prediction not in PREDICTIONS:
            raise SkingenError(f"dermdiff: prediction must be one of {', '.join(PREDICTIONS)}, got '{c.prediction}'")
        if c.beta_schedule not in BETA_SCHEDULES:
            raise SkingenError(f"dermdiff: beta_schedule must be one of {', '.join(BETA_SCHEDULES)}, "
                               f"got '{c.beta_schedule}'")
        if not 0 <= c.cond_drop < 1:
            raise SkingenError(f"dermdiff: cond_drop must be in [0, 1), got {c.cond_drop}")
        if c.snr_gamma < 0:
            raise SkingenError("dermdiff: snr_gamma must be >= 0 (0 = plain MSE)")
        _check_steps(c.solver_steps)
        self.unet = make_unet(c.size, 8, 3, c.widths, c.layers_per_block, c.attention or None, dropout=c.dropout)
        # a plain attribute, not a module: the schedule is rebuilt from the config, never saved
        self.scheduler = DDPMScheduler(num_train_timesteps=c.timesteps, beta_schedule=c.beta_schedule,
                                       prediction_type=c.prediction, clip_sample=False)

    def networks(self) -> dict[str, nn.Module]:
        return {"unet": self.unet}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"unet": torch.optim.AdamW(self.unet.parameters(), lr=self.config.lr, weight_decay=0.0)}

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
    def _output_to_eps(self, out: torch.Tensor, noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network output as an ε estimate: v-prediction gives ε = √(1−ᾱ)·x_t + √ᾱ·v."""
        if self.config.prediction == "epsilon":
            return out
        ab = self.scheduler.alphas_cumprod.to(noisy.device)[t].view(-1, 1, 1, 1)
        return (1 - ab).sqrt() * noisy + ab.sqrt() * out

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, float]:
        if "coloured" not in batch:
            raise SkingenError(NO_MASKS)
        c = self.config
        x0 = batch["image"]
        n = len(x0)
        # a fixed number of draws per step whatever cond_drop is, so resuming a run is exact
        noise = ctx.randn(*x0.shape)
        t = (ctx.rand(n) * c.timesteps).long().clamp(max=c.timesteps - 1)
        present = (ctx.rand(n) >= c.cond_drop).to(x0.dtype).view(-1, 1, 1, 1)
        cond = self.condition_channels(batch["coloured"], batch["lesion"]) * present
        noisy = self.scheduler.add_noise(x0, noise, t)
        target = noise if c.prediction == "epsilon" else self.scheduler.get_velocity(x0, noise, t)
        pred = self.net("unet")(torch.cat([noisy, cond.to(noisy.dtype)], 1), t).sample
        se = (pred.float() - target).pow(2).mean(dim=(1, 2, 3))
        loss = se.mean()
        if c.snr_gamma > 0:
            from diffusers.training_utils import compute_snr

            snr = compute_snr(self.scheduler, t)
            # Min-SNR-γ: weight min(SNR, γ) on the x0 error, expressed for the predicted quantity
            weight = snr.clamp(max=c.snr_gamma) / (snr if c.prediction == "epsilon" else snr + 1)
            loss = (se * weight).mean()
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
        noisy = self.scheduler.add_noise(x0, noise, t)
        eps = self._output_to_eps(self.unet(torch.cat([noisy, cond], 1), t).sample, noisy, t)
        return float((eps - noise).pow(2).mean())

    # -- sampling -------------------------------------------------------------------------------
    def solver(self, steps: int):
        """A fresh DPM-Solver++ (order 2) on the training schedule, set to ``steps`` steps."""
        from diffusers import DPMSolverMultistepScheduler

        _check_steps(steps)
        extra = {"thresholding": True, "sample_max_value": 1.0} if self.config.clip_x0 else {}
        solver = DPMSolverMultistepScheduler.from_config(self.scheduler.config, algorithm_type="dpmsolver++",
                                                         solver_order=2, **extra)
        solver.set_timesteps(steps, device=self.device)
        return solver

    def _guided_output(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None, guidance: float
                       ) -> torch.Tensor:
        """Network output at ``x`` ``[N,3,H,W]``: conditional (w = 1), null (no condition) or guided."""
        if cond is None:
            return self.unet(torch.cat([x, x.new_zeros(len(x), 5, *x.shape[-2:])], 1), t).sample
        if guidance == 1:
            return self.unet(torch.cat([x, cond.to(x.dtype)], 1), t).sample
        both = torch.cat([torch.cat([x, cond.to(x.dtype)], 1), torch.cat([x, torch.zeros_like(cond, dtype=x.dtype)], 1)])
        out_cond, out_null = self.unet(both, t).sample.chunk(2)
        return out_null + guidance * (out_cond - out_null)

    @torch.no_grad()
    def sample(self, seeds: list[int], cond: Condition | None = None, **options: Any) -> torch.Tensor:
        """Images ``[len(seeds),3,S,S]`` in [-1, 1] painted from ``cond`` (``coloured`` and ``lesion``, or none
        for unconditional images). Options: ``guidance`` (w, default the config's), ``solver_steps``."""
        self.check_sample_args(seeds, cond, options)
        guidance = float(options.get("guidance", self.config.guidance))
        if not math.isfinite(guidance):
            raise SkingenError(f"dermdiff: guidance must be a finite number, got {guidance}")
        solver = self.solver(int(options.get("solver_steps", self.config.solver_steps)))
        channels = self._condition_for_sampling(cond)
        size = self.config.size
        x = torch.stack([torch.randn(3, size, size, generator=torch.Generator().manual_seed(int(s)))
                         for s in seeds]).to(self.device) * solver.init_noise_sigma
        for t in solver.timesteps:
            out = self._guided_output(solver.scale_model_input(x, t), t, channels, guidance)
            x = solver.step(out, t, x).prev_sample
        return x.clamp(-1, 1)


def _check_steps(steps: int) -> None:
    if steps < 1:
        raise SkingenError(f"dermdiff: solver_steps must be at least 1, got {steps}")
