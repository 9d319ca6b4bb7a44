"""The diffusion process every skingen diffusion model shares, kept apart from the networks.

In the style of openai/improved-diffusion and NVlabs/edm: one stateless object, built from a model's
config, owns the noise schedule (a diffusers ``DDPMScheduler``), the training target and its loss
weighting (ε or v, Min-SNR-γ), the conversions between x0, ε and v, and the samplers. Samplers take the
network as an argument, so a model is just a network plus the condition channels it appends to the
noisy image:

- :meth:`Diffusion.sample`: DPM-Solver++ (order 2, deterministic: the only noise is the starting
  noise) with classifier-free guidance;
- :func:`repaint`: RePaint (Lugmayr et al. 2022) with diffusers' ``RePaintScheduler``, for an
  *unconditional* ε-prediction UNet with its own schedule (a pretrained DDPM folder).

Tensors: images and noise ``[N,3,H,W]`` (images in [-1, 1]); timesteps ``t`` long ``[N]`` in
``[0, timesteps)``; condition channels ``[N,C,H,W]``. A network is any ``net(x_in, t) -> output`` whose
input is the noisy image with the condition channels concatenated (``[N,3+C,H,W]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from skingen.errors import SkingenError
from skingen.seeding import seeded_normal

PREDICTIONS = ("epsilon", "v_prediction")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")

Net = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Diffusion:
    """Schedule, target and samplers of one diffusion model (see the module docstring).

    ``clip_x0`` clips every x0 estimate of the solver to [-1, 1] (diffusers' dynamic thresholding with
    ``sample_max_value=1``): with ε-prediction and the cosine schedule (ᾱ ≈ 2e-9 at the last step) the
    first estimate x0 = (x_t − √(1−ᾱ)·ε)/√ᾱ multiplies any ε error by ~2e4. v-prediction gives x0 with
    bounded error at every noise level and needs no clipping.
    """

    timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction: str = "v_prediction"
    snr_gamma: float = 0.0       #: Min-SNR-γ loss weighting (Hang et al. 2023); 0 = plain MSE
    clip_x0: bool = False
    scheduler: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from diffusers import DDPMScheduler

        if self.prediction not in PREDICTIONS:
            raise SkingenError(f"prediction must be one of {', '.join(PREDICTIONS)}, got '{self.prediction}'")
        if self.beta_schedule not in BETA_SCHEDULES:
            raise SkingenError(f"beta_schedule must be one of {', '.join(BETA_SCHEDULES)}, got '{self.beta_schedule}'")
        if self.snr_gamma < 0:
            raise SkingenError("snr_gamma must be >= 0 (0 = plain MSE)")
        if self.timesteps < 2:
            raise SkingenError(f"timesteps must be at least 2, got {self.timesteps}")
        # rebuilt from these fields whenever a model is built: the schedule is never saved with the weights
        object.__setattr__(self, "scheduler", DDPMScheduler(
            num_train_timesteps=self.timesteps, beta_schedule=self.beta_schedule,
            prediction_type=self.prediction, clip_sample=False))

    @classmethod
    def from_config(cls, config: Any) -> "Diffusion":
        """The process a model config describes (fields it lacks take the defaults above)."""
        names = ("timesteps", "beta_schedule", "prediction", "snr_gamma", "clip_x0")
        return cls(**{n: getattr(config, n) for n in names if hasattr(config, n)})

    # -- schedule and conversions -------------------------------------------------------------
    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        """ᾱ_t as ``[N,1,1,1]`` on ``t``'s device."""
        return self.scheduler.alphas_cumprod.to(t.device)[t].view(-1, 1, 1, 1)

    def timesteps_from(self, u: torch.Tensor) -> torch.Tensor:
        """Uniform draws ``u`` ``[N]`` in [0, 1) -> training timesteps ``[N]`` (long)."""
        return (u * self.timesteps).long().clamp(max=self.timesteps - 1)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ·x0 + √(1−ᾱ)·ε."""
        return self.scheduler.add_noise(x0, noise, t)

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the network learns to predict: ε, or v = √ᾱ·ε − √(1−ᾱ)·x0."""
        return noise if self.prediction == "epsilon" else self.scheduler.get_velocity(x0, noise, t)

    def to_eps(self, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network output as an ε estimate (v: ε = √(1−ᾱ)·x_t + √ᾱ·v)."""
        if self.prediction == "epsilon":
            return out
        ab = self.alpha_bar(t)
        return (1 - ab).sqrt() * x_t + ab.sqrt() * out

    def to_x0(self, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network output as a clean-image estimate (v: x0 = √ᾱ·x_t − √(1−ᾱ)·v)."""
        ab = self.alpha_bar(t)
        if self.prediction == "epsilon":
            return (x_t - (1 - ab).sqrt() * out) / ab.sqrt()
        return ab.sqrt() * x_t - (1 - ab).sqrt() * out

    def from_x0(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network output that means the clean image ``x0`` at ``x_t`` (the inverse of :meth:`to_x0`)."""
        ab = self.alpha_bar(t)
        if self.prediction == "epsilon":
            return (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()
        return (ab.sqrt() * x_t - x0) / (1 - ab).sqrt()

    def loss(self, se: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Mean of the per-sample squared errors ``se`` ``[N]``, Min-SNR-γ weighted when ``snr_gamma`` > 0:
        weight min(SNR, γ) on the x0 error, expressed for the predicted quantity."""
        if self.snr_gamma <= 0:
            return se.mean()
        from diffusers.training_utils import compute_snr

        snr = compute_snr(self.scheduler, t)
        weight = snr.clamp(max=self.snr_gamma) / (snr if self.prediction == "epsilon" else snr + 1)
        return (se * weight).mean()

    # -- sampling ------------------------------------------------------------------------------
    def solver(self, steps: int, device: torch.device | str = "cpu"):
        """A fresh DPM-Solver++ (order 2) on this schedule, set to ``steps`` steps."""
        from diffusers import DPMSolverMultistepScheduler

        if steps < 1:
            raise SkingenError(f"solver_steps must be at least 1, got {steps}")
        extra = {"thresholding": True, "sample_max_value": 1.0} if self.clip_x0 else {}
        solver = DPMSolverMultistepScheduler.from_config(self.scheduler.config, algorithm_type="dpmsolver++",
                                                         solver_order=2, **extra)
        solver.set_timesteps(steps, device=device)
        return solver

    @torch.no_grad()
    def sample(self, net: Net, noise: torch.Tensor, cond: torch.Tensor, steps: int, guidance: float = 1.0,
               known: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Images ``[N,3,H,W]`` in [-1, 1] from the starting ``noise`` (one row per seed, on the network's
        device) by ``steps`` DPM-Solver++ steps of ``net`` fed ``x ⊕ cond``. With ``guidance`` w ≠ 1 each step
        also runs the null condition (``cond`` zeroed), batched with the conditional pass, and uses
        ``out_null + w·(out_cond − out_null)``; w = 1 is one pass per step.

        ``known`` = (source ``[N,3,H,W]``, keep ``[N,1,H,W]`` {0,1}): where keep is 1, every step's clean-image
        estimate is the source itself, so the solver carries the kept pixels along the source's own noised
        path (x_t = √ᾱ·source + √(1−ᾱ)·noise, what the network saw in training) instead of along the
        network's estimate of them, which an inpainting model trained with a small kept-pixel weight gets
        wrong enough to shift the colour of the fill."""
        solver = self.solver(steps, noise.device)
        x = noise * solver.init_noise_sigma
        source, keep = known if known is not None else (None, None)
        for t in solver.timesteps:
            out = guided(net, solver.scale_model_input(x, t), t, cond, guidance)
            if known is not None:
                out = torch.where(keep > 0.5, self.from_x0(source, x, t).to(out.dtype), out)
            x = solver.step(out, t, x).prev_sample
        return x.clamp(-1, 1)


def guided(net: Net, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, guidance: float) -> torch.Tensor:
    """Classifier-free guidance of ``net`` at ``x`` with condition channels ``cond`` (null = zeros)."""
    if guidance == 1:
        return net(torch.cat([x, cond.to(x.dtype)], 1), t)
    both = torch.cat([torch.cat([x, cond.to(x.dtype)], 1), torch.cat([x, torch.zeros_like(cond, dtype=x.dtype)], 1)])
    out_cond, out_null = net(both, t).chunk(2)
    return out_null + guidance * (out_cond - out_null)


def repaint_scheduler(scheduler_config: dict | None, steps: int, jump_length: int, jump_n_sample: int):
    """diffusers' ``RePaintScheduler`` (from a pretrained folder's config, else its defaults), set up."""
    from diffusers import RePaintScheduler

    sched = RePaintScheduler.from_config(scheduler_config) if scheduler_config else RePaintScheduler()
    sched.set_timesteps(steps, jump_length, jump_n_sample)
    return sched


def repaint_evaluations(scheduler_config: dict | None, steps: int, jump_length: int, jump_n_sample: int) -> int:
    """Network evaluations of one :func:`repaint` call (its denoising steps; jumps back cost none)."""
    timesteps = repaint_scheduler(scheduler_config, steps, jump_length, jump_n_sample).timesteps.tolist()
    return sum(1 for last, t in zip([timesteps[0] + 1] + timesteps, timesteps) if t < last)


@torch.no_grad()
def repaint(net: Net, source: torch.Tensor, keep: torch.Tensor, generators: list[torch.Generator],
            scheduler_config: dict | None = None, steps: int = 25, jump_length: int = 5, jump_n_sample: int = 2
            ) -> torch.Tensor:
    """RePaint: inpaint ``source`` ``[N,3,H,W]`` where ``keep`` ``[N,1,H,W]`` is 0 with the unconditional
    ε-prediction ``net(x, t)``, on the device of ``source``. Every ``jump_length`` steps the sample is
    re-noised back by ``jump_length`` and denoised again, ``jump_n_sample`` times in all (more = better
    harmonised, slower). Row i draws only from ``generators[i]`` (CPU), so it depends only on its own seed.
    Returns ``[N,3,H,W]`` in [-1, 1] with the kept pixels exactly the source's."""
    sched = repaint_scheduler(scheduler_config, steps, jump_length, jump_n_sample)
    x = seeded_normal(generators, tuple(source.shape[1:]), source.device)
    last = sched.timesteps[0] + 1
    for t in sched.timesteps:
        if t < last:  # a denoising step (known pixels re-noised from the source, unknown ones predicted)
            x = sched.step(net(x, t), t, x, source, keep, generators).prev_sample
        else:         # a jump back: re-noise the whole sample by one step
            x = sched.undo_step(x, last, generators)
        last = t
    return torch.where(keep > 0.5, source, x.clamp(-1, 1).to(source.dtype))
