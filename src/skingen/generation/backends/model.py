"""The learned backend: a skingen ``inpaint`` run or checkpoint, or a shipped model's name (``measles-inpaint``),
repainting each region conditioned on the kept pixels (:meth:`~skingen.models.inpaint.InpaintModel.region_filler`).
It claims every RUN the other backends leave (asked last)."""

from __future__ import annotations

from skingen.errors import SkingenError
from skingen.generation.backends import Backend, LoadedFiller, LoadRequest


def load_inpainter(run: str, ema: bool = True, device: str = "cpu"):
    """(model, checkpoint) of ``run``, refused unless it is an inpainting model (one with ``region_filler``)."""
    from skingen.registry import load_model

    model, ckpt = load_model(run, ema=ema, device=device)
    if not hasattr(model, "region_filler"):
        raise SkingenError(f"{run} is a '{ckpt['config']['family']}' model; iterative inpainting needs an inpainting "
                           f"model (an 'inpaint' run, a diffusers UNet2DModel folder for RePaint, or a Stable "
                           f"Diffusion inpainting pipeline folder for --backend sd)")
    return model, ckpt


def _load(req: LoadRequest) -> LoadedFiller:
    model, ckpt = load_inpainter(req.run, req.ema, req.device)
    return LoadedFiller(model.region_filler(req.solver_steps), model.config.size, ckpt["config"]["family"],
                        str(ckpt["path"].resolve()), run_params=dict(ckpt["config"].get("run_params", {})))


def _inpaints(run: str) -> bool:
    from skingen.registry import load_model

    return hasattr(load_model(run)[0], "region_filler")


BACKEND = Backend("inpaint", "a skingen `inpaint` run or checkpoint, or a shipped model's name (measles-inpaint)",
                  claims=lambda run: True, load=_load, order=100, inpaints=_inpaints,
                  example=lambda folder: "measles-inpaint")  # shipped with the package
