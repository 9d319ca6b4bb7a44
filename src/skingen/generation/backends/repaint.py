"""The RePaint backend (Lugmayr et al. 2022): inpainting with an *unconditional* diffusion model by re-noising the
known pixels at every step and resampling (``jump_length`` / ``jump_n_sample``; :func:`skingen.diffusion.repaint`).
RUN is a local diffusers folder holding an unconditional ``UNet2DModel`` (the UNet's own folder, or a pipeline
folder with ``unet/`` and optionally ``scheduler/``, e.g. a ``save_pretrained`` copy of
``google/ddpm-ema-celebahq-256``), or, with ``--backend repaint``, a skingen ``inpaint`` model trained with
``null_prob`` > 0, driven under its null condition."""

from __future__ import annotations

from pathlib import Path

import torch

from skingen.diffusion import repaint, repaint_evaluations
from skingen.errors import SkingenError
from skingen.generation.backends import Backend, LoadedFiller, LoadRequest, diffusers_unet
from skingen.inpaint.iterative import RegionFiller
from skingen.runs import read_json


def _claims(run: str) -> bool:
    found = diffusers_unet(Path(run))
    return found is not None and found[1] == "UNet2DModel"


def _load(req: LoadRequest) -> LoadedFiller:
    path = Path(req.run)
    found = diffusers_unet(path)
    if found is not None:
        if found[1] != "UNet2DModel":
            raise SkingenError(f"{path}: RePaint needs a diffusers folder with an unconditional UNet2DModel")
        return _load_repaint(path, found[0], req.device, req.solver_steps)
    from skingen.generation.backends.model import load_inpainter

    model, ckpt = load_inpainter(req.run, req.ema, req.device)
    if model.config.null_prob <= 0:
        raise SkingenError(f"{path}: RePaint needs a network that also denoises unconditionally; this one was "
                           f"trained with model.null_prob=0")
    return LoadedFiller(model_repaint_filler(model, steps=req.solver_steps or 25), model.config.size, "repaint",
                        str(ckpt["path"].resolve()), run_params=dict(ckpt["config"].get("run_params", {})))


def _load_repaint(path: Path, unet_folder: Path, device: str, solver_steps: int | None) -> LoadedFiller:
    from diffusers import UNet2DModel

    unet = UNet2DModel.from_pretrained(unet_folder).to(device).eval()
    if unet.config.in_channels != 3 or unet.config.out_channels != 3:
        raise SkingenError(f"{unet_folder}: RePaint needs an unconditional RGB UNet (3 -> 3 channels), got "
                           f"{unet.config.in_channels} -> {unet.config.out_channels}")
    scheduler_config = None
    for cfg in (path / "scheduler_config.json", path / "scheduler" / "scheduler_config.json"):
        if cfg.is_file():
            scheduler_config = read_json(cfg)
            break
    size = unet.config.sample_size
    size = size if isinstance(size, int) else size[0]
    multiple = 2 ** (len(unet.config.block_out_channels) - 1)
    return LoadedFiller(repaint_filler(unet, scheduler_config, steps=solver_steps or 25, multiple=multiple),
                           size, "repaint", str(unet_folder.resolve()))


def model_repaint_filler(model, steps: int = 25, jump_length: int = 5, jump_n_sample: int = 2) -> RegionFiller:
    """RePaint driving a skingen ``inpaint`` model under its null condition (nothing kept), on the model's own
    noise schedule: the same network as the iterative algorithm's, inpainting without being shown the kept pixels
    (they are imposed by re-noising them from the source at every step instead)."""
    schedule = {"num_train_timesteps": model.config.timesteps, "beta_schedule": model.config.beta_schedule}

    def fill(source: torch.Tensor, keep: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        return repaint(model.unconditional_eps, source.to(model.device), keep.to(model.device), generators, schedule,
                       steps, jump_length, jump_n_sample)

    return RegionFiller(fill, multiple=model.multiple,
                     evaluations=repaint_evaluations(schedule, steps, jump_length, jump_n_sample))


def repaint_filler(unet, scheduler_config: dict | None = None, steps: int = 25, jump_length: int = 5,
                      jump_n_sample: int = 2, multiple: int = 1) -> RegionFiller:
    """RePaint (:func:`skingen.diffusion.repaint`) with the unconditional ε-prediction diffusers ``unet`` as an
    :class:`RegionFiller`; ``steps``, ``jump_length`` and ``jump_n_sample`` as there."""

    def net(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return unet(x, t).sample

    def fill(source: torch.Tensor, keep: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        dev = next(unet.parameters()).device
        return repaint(net, source.to(dev), keep.to(dev), generators, scheduler_config, steps, jump_length,
                       jump_n_sample)

    return RegionFiller(fill, multiple=multiple,
                     evaluations=repaint_evaluations(scheduler_config, steps, jump_length, jump_n_sample))


BACKEND = Backend("repaint", "a diffusers folder with an unconditional UNet2DModel, or (--backend repaint) an "
                  "`inpaint` model trained with null_prob > 0", claims=_claims, load=_load, order=30,
                  example=lambda folder: _tiny_unet(folder))


def _tiny_unet(folder: Path) -> str:
    """A 16 px unconditional UNet2DModel with random weights (seed 0), saved in diffusers' layout."""
    from skingen.nn.unet import make_unet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        make_unet(16, 3, 3, (16, 32), layers_per_block=1).save_pretrained(folder / "unet")
    return str(folder)
