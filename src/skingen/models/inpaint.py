"""``inpaint``: an inpainting diffusion model, the denoiser of GLIDE-style iterative inpainting.

Network: a diffusers ``UNet2DModel`` (:func:`skingen.nn.unet.make_unet`) whose 7 input channels are the
noisy image, the source with the region blanked (``source·keep``) and ``keep`` itself; the diffusion
process is :class:`skingen.diffusion.Diffusion` (cosine schedule, v-prediction). Training repaints random regions from the same generator the
algorithm uses (boxes and blobs, ``region_min``–``region_max`` of the side); a fraction
``window_prob`` of batches is cut to the context window the algorithm would denoise around each
region, so the network also learns to work with that much context. Sampling is DPM-Solver++
(deterministic: the only noise is the starting noise, one generator per image) with the kept pixels'
clean-image estimate fixed to the source at every step; they are pasted back at the end, so kept pixels
never change. v-prediction, because an ε-prediction model trained
on the measles crops inpainted pure noise at 10 and 50 solver steps (see ``Diffusion.clip_x0``).

``sample(seeds, cond)``: with ``source`` and ``keep``, one inpainting of the region keep = 0; with
``source`` alone, one iterative run per seed with :class:`~skingen.inpaint.iterative.IterativeParams` (option ``params``, else the defaults)
(``skingen inpaint`` exposes every parameter); with no condition, an image from scratch (keep = 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

import torch

from skingen.config import Fraction, NonNegative, PositiveInt, Range, from_dict
from skingen.diffusion import Diffusion
from skingen.errors import SkingenError
from skingen.inpaint.iterative import RegionFiller, IterativeParams, run_iterative
from skingen.inpaint.regions import SHAPES, Rand, check_choice, random_regions, window_box
from skingen.models.base import Condition, StepContext, UNetDiffusionConfig, UNetDiffusionModel
from skingen.nn.unet import make_unet, size_multiple
from skingen.seeding import seeded_normal


@dataclass(frozen=True)
class InpaintModelConfig(UNetDiffusionConfig):
    solver_steps: PositiveInt = 10                           #: DPM-Solver++ steps (= network evaluations) per inpainting
    region_min: Annotated[float, Range(0, 1, open_lo=True)] = 0.125                        #: training region side, fraction of the image side
    region_max: Annotated[float, Range(0, 1, open_lo=True)] = 0.5
    region_shapes: tuple[str, ...] = ("box", "blob")
    window_prob: Fraction = 0.5                         #: fraction of training batches cut to the context window
    context: Annotated[float, Range(1, None)] = 2.0                             #: training window side / region side
    kept_weight: NonNegative = 0.1                         #: loss weight of kept pixels relative to repainted ones
    null_prob: Fraction = 0.0                           #: fraction of training windows with nothing kept (keep = 0):
                                                     #: the network then also denoises unconditionally (RePaint)


class InpaintModel(UNetDiffusionModel):
    name = "inpaint"
    description = "inpainting diffusion UNet (noisy image + source·keep + keep) for iterative inpainting"
    supports = frozenset({"source", "keep"})
    sample_options = frozenset({"solver_steps", "params"})  # params: IterativeParams fields (with ``source`` alone)
    batch_fields = frozenset({"image"})

    def __init__(self, config: InpaintModelConfig):
        super().__init__(config)
        c = config
        if not 0 < c.region_min <= c.region_max <= 1:
            raise SkingenError(f"inpaint: need 0 < region_min <= region_max <= 1, got {c.region_min}, {c.region_max}")
        if not c.region_shapes:
            raise SkingenError("inpaint: region_shapes is empty")
        for shape in c.region_shapes:
            check_choice("inpaint: region_shapes entry", shape, SHAPES)
        if c.kept_weight < 0:
            raise SkingenError("inpaint: kept_weight must be >= 0")
        if not 0 <= c.null_prob < 1:
            raise SkingenError(f"inpaint: null_prob must be in [0, 1), got {c.null_prob}")
        if c.solver_steps < 1:
            raise SkingenError("inpaint: solver_steps must be at least 1")
        self.unet = make_unet(c.size, 7, 3, c.widths, c.layers_per_block, c.attention or None)
        self.multiple = size_multiple(c.widths)
        try:
            self.diffusion = Diffusion(timesteps=c.timesteps, beta_schedule=c.beta_schedule, prediction="v_prediction")
        except SkingenError as e:
            raise SkingenError(f"inpaint: {e}") from None

    # -- training -------------------------------------------------------------------------------
    def training_inputs(self, images: torch.Tensor, rand: Rand) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``[N,3,S,S]`` -> (images, keep ``[N,1,s,s]``) with one random region each, cut to the
        context window around it in a fraction ``window_prob`` of batches (then s < S)."""
        c, size = self.config, images.shape[-1]
        lo, hi = max(2, round(c.region_min * size)), max(2, round(c.region_max * size))
        regions = random_regions(len(images), size, rand, lo, hi, c.region_shapes)
        keep = torch.stack([~r.paint(size) for r in regions])[:, None].float().to(images.device)
        if float(rand(1)[0]) < c.window_prob:
            boxes = [window_box(r, size, c.context, self.multiple) for r in regions]
            images = torch.stack([x[:, t:t + s, l:l + s] for x, (t, l, s) in zip(images, boxes)])
            keep = torch.stack([k[:, t:t + s, l:l + s] for k, (t, l, s) in zip(keep, boxes)])
        if c.null_prob > 0:  # drawn only then, so runs without it keep their random stream
            null = (rand(len(images)) < c.null_prob).to(keep.device)
            keep = keep * ~null.view(-1, 1, 1, 1)
        return images, keep

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, float]:
        # all region randomness in one draw from the run's generator (a fixed amount per step: exact resume)
        pool = iter(ctx.rand((17 if self.config.null_prob > 0 else 16) * len(batch["image"]) + 2).cpu().tolist())
        x0, keep = self.training_inputs(batch["image"], lambda n: torch.tensor([next(pool) for _ in range(n)]))
        n = len(x0)
        noise = ctx.randn(*x0.shape)
        t = self.diffusion.timesteps_from(ctx.rand(n))
        target = self.diffusion.target(x0, noise, t)
        pred = self.net("unet")(torch.cat([self.diffusion.add_noise(x0, noise, t), x0 * keep, keep], 1), t).sample
        se = (pred.float() - target).pow(2)
        region = 1 - keep
        # kept pixels are pasted back after sampling, and they dominate the area: at weight 1 (a plain mean) a 64 px
        # model on the measles crops needed ~40k images to reach the region error that weight 0.1 reached in 4.8k
        weight = region + self.config.kept_weight * keep
        loss = (se * weight).sum() / (3 * weight.sum())
        ctx.update("unet", loss)
        return {"loss/diffusion": loss.item(),
                "loss/region": ((se * region).sum() / (3 * region.sum()).clamp(min=1)).item()}

    def _net(self, x_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x_in, t).sample

    def unconditional_eps(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """ε estimate for the noisy image ``x`` ``[N,3,H,W]`` under the null condition (nothing kept): the
        network as an unconditional ε-prediction denoiser, which RePaint drives. Meaningful for a model
        trained with ``null_prob`` > 0."""
        t = t.to(x.device)
        t = t.expand(len(x)) if t.ndim else t.repeat(len(x))
        null = torch.zeros(len(x), 4, *x.shape[-2:], device=x.device, dtype=x.dtype)
        return self.diffusion.to_eps(self._net(torch.cat([x, null], 1), t), x, t)

    @staticmethod
    def condition_channels(source: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``[N,4,H,W]``: the source with the region blanked (``source·keep``, [-1, 1]) and ``keep`` {0,1}."""
        return torch.cat([source * keep, keep], 1)

    @torch.no_grad()
    def region_loss(self, images: torch.Tensor, keep: torch.Tensor, seed: int = 0, levels: int = 8) -> float:
        """Mean squared error of the predicted clean image inside the regions (keep = 0), over ``levels``
        noise levels spread over the schedule (noise from ``seed``): a repeatable measure of how well the
        network inpaints ``images`` (in image space, so no timestep's irreducible noise dominates it)."""
        n = len(images)
        dev = images.device
        t = torch.linspace(0, self.config.timesteps - 1, levels).round().long().repeat_interleave(n).to(dev)
        x0, kp = images.repeat(levels, 1, 1, 1), keep.repeat(levels, 1, 1, 1)
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)).to(dev)
        noisy = self.diffusion.add_noise(x0, noise, t)
        pred = self.diffusion.to_x0(self._net(torch.cat([noisy, self.condition_channels(x0, kp)], 1), t), noisy, t)
        region = 1 - kp
        return float(((pred - x0).pow(2) * region).sum() / (3 * region.sum()))

    # -- sampling -------------------------------------------------------------------------------
    @torch.no_grad()
    def fill(self, source: torch.Tensor, keep: torch.Tensor, generators: list[torch.Generator | int],
             solver_steps: int | None = None) -> torch.Tensor:
        """Inpaint ``source`` ``[N,3,s,s]`` where ``keep`` ``[N,1,s,s]`` is 0 (any side that is a multiple of
        ``self.multiple``); starting noise from ``generators[i]`` (a CPU generator or a seed) for row i. Kept pixels are returned
        exactly. Returns ``[N,3,s,s]`` in [-1, 1] on the model's device."""
        if source.shape[-1] % self.multiple or source.shape[-2] % self.multiple:
            raise SkingenError(f"inpaint: window {tuple(source.shape[-2:])} is not a multiple of {self.multiple} px")
        dev = self.device
        source, keep = source.to(dev), keep.to(dev)
        noise = seeded_normal(generators, tuple(source.shape[1:]), dev)
        x = self.diffusion.sample(self._net, noise, self.condition_channels(source, keep),
                                  solver_steps or self.config.solver_steps, known=(source, keep))
        return torch.where(keep > 0.5, source, x.to(source.dtype))

    def region_filler(self, solver_steps: int | None = None) -> RegionFiller:
        """This model as the denoiser of :func:`~skingen.inpaint.iterative.run_iterative`."""
        steps = solver_steps or self.config.solver_steps
        return RegionFiller(partial(self.fill, solver_steps=steps), multiple=self.multiple, evaluations=steps)

    @torch.no_grad()
    def sample(self, seeds: list[int], cond: Condition | None = None, **options: Any) -> torch.Tensor:
        self.check_sample_args(seeds, cond, options)
        steps = options.get("solver_steps")
        size = self.config.size
        cond = cond or Condition()
        if cond.keep is not None and cond.source is None:
            raise SkingenError("inpaint: 'keep' needs a 'source' image to keep pixels from")
        if cond.source is not None and cond.keep is None:
            params = from_dict(IterativeParams, options.get("params", {}), "params.")
            runs = run_iterative(self.region_filler(steps), cond.source.float().cpu(), list(seeds), params)
            return torch.stack([r.image for r in runs]).to(self.device)
        source = cond.source if cond.source is not None else torch.zeros(len(seeds), 3, size, size)
        keep = cond.keep if cond.keep is not None else torch.zeros(len(seeds), 1, size, size)
        return self.fill(source.float(), keep.float(), list(seeds), steps)

    def condition_from_batch(self, batch: dict[str, Any]) -> Condition | None:
        """Preview: the batch's images with a central square of the largest training region side inpainted."""
        images = batch["image"]
        size = images.shape[-1]
        lo = (size - max(2, round(self.config.region_max * size))) // 2
        keep = torch.ones(len(images), 1, size, size, device=images.device)
        keep[..., lo:size - lo, lo:size - lo] = 0
        return Condition(source=images, keep=keep)
