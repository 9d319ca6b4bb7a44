"""Denoisers that the iterative algorithm can drive, loaded from a folder.

- a skingen ``inpaint`` run or checkpoint (the trained inpainting model; the default), or the name of a
  shipped one (``measles-inpaint``);
- the same model under its null condition driven by **RePaint** (``backend="repaint"``; the model must be
  trained with ``null_prob`` > 0);
- a local diffusers folder holding an *unconditional* ``UNet2DModel`` (the UNet's own folder, or a
  pipeline folder with ``unet/`` and optionally ``scheduler/``): **RePaint** (Lugmayr et al. 2022) with
  diffusers' ``RePaintScheduler``, which inpaints with any unconditional diffusion model by
  re-noising the known pixels at every step and resampling (``jump_length`` / ``jump_n_sample``);
- a local diffusers Stable Diffusion *inpainting* pipeline folder (``sd``, :mod:`skingen.generation.sd_backend`):
  each window resized to the pipeline's resolution and inpainted from a per-class text prompt;
- ``opencv:<method>``: a training-free classical method (:mod:`skingen.inpaint.opencv`), at the crops'
  own resolution.

Weights are never downloaded here: pass a folder you already have (e.g. a ``save_pretrained`` copy of
``google/ddpm-ema-celebahq-256``).
"""

from __future__ import annotations


from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from skingen.diffusion import repaint, repaint_evaluations
from skingen.errors import SkingenError
from skingen.inpaint.iterative import RegionFiller
from skingen.runs import read_json


BACKENDS = ("auto", "inpaint", "repaint", "sd")


@dataclass
class LoadedFiller:
    """A :class:`~skingen.inpaint.iterative.RegionFiller` loaded from a folder or name, with what ``skingen inpaint``
    records about it."""

    filler: RegionFiller
    size: int | None     #: image side the denoiser works at (sources are resized to it); None = the crops' own
    family: str          #: ``inpaint`` (skingen model), ``repaint`` (diffusers UNet), ``opencv-<method>`` or ``sd``
    checkpoint: str      #: the folder the weights came from ("" when there are none)
    #: label -> (the filler for crops of that class, what to record with each image); None = one for all
    for_label: Callable[[str], tuple[RegionFiller, dict[str, str]]] | None = None
    settings: dict[str, object] = field(default_factory=dict)  #: backend settings recorded in inpaint.json
    #: run parameters the checkpoint was measured with (its config.json's ``run_params``): the defaults of
    #: :class:`~skingen.inpaint.iterative.IterativeParams` fields a user leaves unset
    run_params: dict[str, object] = field(default_factory=dict)

    def by_label(self, label: str) -> tuple[RegionFiller, dict[str, str]]:
        return self.for_label(label) if self.for_label else (self.filler, {})


def _unet_class(path: Path) -> tuple[Path, str] | None:
    """(folder, class name) of the diffusers UNet at ``path`` or ``path/unet``."""
    for folder in (path, path / "unet"):
        cfg = folder / "config.json"
        if cfg.is_file():
            name = read_json(cfg).get("_class_name")
            if name in ("UNet2DModel", "UNet2DConditionModel"):
                return folder, name
    return None


def detect_backend(path: Path) -> str:
    """``opencv`` for an ``opencv:<method>`` name, ``sd`` for a pipeline folder with a text-conditioned UNet,
    ``repaint`` for an unconditional ``UNet2DModel``, else ``inpaint`` (a skingen run or checkpoint)."""
    from skingen.inpaint.opencv import is_opencv_name

    if is_opencv_name(str(path)):
        return "opencv"
    found = _unet_class(path)
    if found is None:
        return "inpaint"
    return "repaint" if found[1] == "UNet2DModel" else "sd"


def load_filler(path: str | Path, device: str = "cpu", ema: bool = True, solver_steps: int | None = None,
                   backend: str = "auto", precision: str = "fp32", sd=None) -> LoadedFiller:
    """The denoiser stored at ``path`` (module docstring); ``solver_steps``: its sampling steps;
    ``backend``: one of :data:`BACKENDS` (``auto`` = :func:`detect_backend`); ``sd``: the sd backend's
    :class:`~skingen.generation.sd_backend.SDOptions` (an error with any other backend)."""
    if backend not in BACKENDS:
        raise SkingenError(f"backend must be one of {', '.join(BACKENDS)}, got '{backend}'")
    backend = detect_backend(Path(path)) if backend == "auto" else backend
    if sd is not None and backend != "sd":
        raise SkingenError(f"--prompt, --negative-prompt, --guidance, --strength, --resolution, --attention and "
                           f"--cpu-offload apply to --backend sd only ({path} is driven by '{backend}')")
    if backend == "opencv":
        from skingen.inpaint.opencv import opencv_filler

        return LoadedFiller(opencv_filler(str(path)), None, str(path).replace(":", "-"), "")
    path = Path(path)
    if backend == "sd":
        return _load_sd(path, device, precision, sd, solver_steps)
    found = _unet_class(path)
    if backend == "repaint" and found is not None:
        if found[1] != "UNet2DModel":
            raise SkingenError(f"{path}: RePaint needs a diffusers folder with an unconditional UNet2DModel")
        return _load_repaint(path, found[0], device, solver_steps)
    from skingen.registry import load_model

    model, ckpt = load_model(path, ema=ema, device=device)
    family = ckpt["config"]["family"]
    if not hasattr(model, "region_filler"):
        raise SkingenError(f"{path} is a '{family}' model; iterative inpainting needs an inpainting model "
                           f"(an 'inpaint' run, a diffusers UNet2DModel folder for RePaint, or a Stable Diffusion "
                           f"inpainting pipeline folder for --backend sd)")
    where = str(ckpt["path"].resolve())
    run_params = dict(ckpt["config"].get("run_params", {}))
    if backend == "repaint":
        if model.config.null_prob <= 0:
            raise SkingenError(f"{path}: RePaint needs a network that also denoises unconditionally; this one was "
                               f"trained with model.null_prob=0")
        filler = model_repaint_filler(model, steps=solver_steps or 25)
        return LoadedFiller(filler, model.config.size, "repaint", where, run_params=run_params)
    return LoadedFiller(model.region_filler(solver_steps), model.config.size, family, where, run_params=run_params)


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


def _load_sd(path: Path, device: str, precision: str, options, solver_steps: int | None) -> LoadedFiller:
    from dataclasses import replace

    from skingen.generation.sd_backend import SDInpainting, SDOptions

    options = options or SDOptions()
    if solver_steps is not None:
        options = replace(options, solver_steps=solver_steps)
    sd = SDInpainting.load(path, device, precision, options)
    fillers: dict[str, RegionFiller] = {}

    def for_label(label: str) -> tuple[RegionFiller, dict[str, str]]:
        prompt = options.prompt_for(label)
        if prompt not in fillers:
            fillers[prompt] = sd.region_filler(prompt)
        return fillers[prompt], {"prompt": prompt, "negative_prompt": options.negative_prompt}

    return LoadedFiller(for_label("")[0], None, "sd", str(path.resolve()), for_label, sd.settings())


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
