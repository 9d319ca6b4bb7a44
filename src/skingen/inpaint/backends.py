"""Denoisers that the iterative algorithm can drive, loaded from a folder.

- a skingen ``inpaint`` run or checkpoint (the trained inpainting model; the default);
- a local diffusers folder holding an *unconditional* ``UNet2DModel`` (the UNet's own folder, or a
  pipeline folder with ``unet/`` and optionally ``scheduler/``): **RePaint** (Lugmayr et al. 2022) with
  diffusers' ``RePaintScheduler``, which inpaints with any unconditional diffusion model by
  re-noising the known pixels at every step and resampling (``jump_length`` / ``jump_n_sample``);
- ``opencv:<method>``: a training-free classical method (:mod:`skingen.inpaint.opencv`), at the crops'
  own resolution.

Weights are never downloaded here: pass a folder you already have (e.g. a ``save_pretrained`` copy of
``google/ddpm-ema-celebahq-256``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from skingen.diffusion import repaint, repaint_evaluations
from skingen.errors import SkingenError
from skingen.inpaint.iterative import Inpainter


@dataclass
class LoadedInpainter:
    inpainter: Inpainter
    size: int | None     #: image side the denoiser works at (sources are resized to it); None = any
    family: str          #: ``inpaint`` (skingen model), ``repaint`` (diffusers UNet) or ``opencv:<method>``
    checkpoint: str      #: the folder the weights came from ("" when there are none)


def _diffusers_unet_folder(path: Path) -> Path | None:
    for folder in (path, path / "unet"):
        cfg = folder / "config.json"
        if cfg.is_file() and json.loads(cfg.read_text()).get("_class_name") == "UNet2DModel":
            return folder
    return None


def load_inpainter(path: str | Path, device: str = "cpu", ema: bool = True, solver_steps: int | None = None
                   ) -> LoadedInpainter:
    """The denoiser stored at ``path`` (module docstring); ``solver_steps``: its sampling steps."""
    from skingen.inpaint.opencv import is_opencv_name, opencv_inpainter

    if is_opencv_name(str(path)):
        return LoadedInpainter(opencv_inpainter(str(path)), None, str(path).replace(":", "-"), "")
    path = Path(path)
    unet_folder = _diffusers_unet_folder(path)
    if unet_folder is not None:
        return _load_repaint(path, unet_folder, device, solver_steps)
    from skingen.registry import load_model

    model, ckpt = load_model(path, ema=ema, device=device)
    family = ckpt["config"]["family"]
    if not hasattr(model, "inpainter"):
        raise SkingenError(f"{path} is a '{family}' model; iterative inpainting needs an inpainting model "
                           f"(an 'inpaint' run, or a diffusers UNet2DModel folder for RePaint)")
    return LoadedInpainter(model.inpainter(solver_steps), model.config.size, family, str(ckpt["path"].resolve()))


def _load_repaint(path: Path, unet_folder: Path, device: str, solver_steps: int | None) -> LoadedInpainter:
    from diffusers import UNet2DModel

    unet = UNet2DModel.from_pretrained(unet_folder).to(device).eval()
    if unet.config.in_channels != 3 or unet.config.out_channels != 3:
        raise SkingenError(f"{unet_folder}: RePaint needs an unconditional RGB UNet (3 -> 3 channels), got "
                           f"{unet.config.in_channels} -> {unet.config.out_channels}")
    scheduler_config = None
    for cfg in (path / "scheduler_config.json", path / "scheduler" / "scheduler_config.json"):
        if cfg.is_file():
            scheduler_config = json.loads(cfg.read_text())
            break
    size = unet.config.sample_size
    size = size if isinstance(size, int) else size[0]
    multiple = 2 ** (len(unet.config.block_out_channels) - 1)
    return LoadedInpainter(repaint_inpainter(unet, scheduler_config, steps=solver_steps or 25, multiple=multiple),
                           size, "repaint", str(unet_folder.resolve()))


def repaint_inpainter(unet, scheduler_config: dict | None = None, steps: int = 25, jump_length: int = 5,
                      jump_n_sample: int = 2, multiple: int = 1) -> Inpainter:
    """RePaint (:func:`skingen.diffusion.repaint`) with the unconditional ε-prediction diffusers ``unet`` as an
    :class:`Inpainter`; ``steps``, ``jump_length`` and ``jump_n_sample`` as there."""

    def net(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return unet(x, t).sample

    def fill(source: torch.Tensor, keep: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        dev = next(unet.parameters()).device
        return repaint(net, source.to(dev), keep.to(dev), generators, scheduler_config, steps, jump_length,
                       jump_n_sample)

    return Inpainter(fill, multiple=multiple,
                     evaluations=repaint_evaluations(scheduler_config, steps, jump_length, jump_n_sample))
