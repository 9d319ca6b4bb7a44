"""Pretrained Stable Diffusion inpainting pipelines (diffusers) as a :class:`RegionFiller`.

The ``sd`` backend of ``skingen inpaint``: a local diffusers pipeline folder (what ``save_pretrained``
writes, e.g. of ``stable-diffusion-v1-5/stable-diffusion-inpainting``; never downloaded here) whose UNet
takes 9 input channels (4 noisy latents + 1 mask + 4 masked-image latents): SD 1.5/2 inpainting, SDXL
inpainting, through diffusers' ``AutoPipelineForInpainting``. The iterative algorithm hands it each
region's context window; the window is resized (bicubic, antialiased) to the pipeline's native
resolution (512 px for SD 1.5/2; the model sees lesions magnified, closer to the scale of its training
photos), inpainted with a text prompt and resized back; the algorithm then pastes the kept pixels back
exactly.

The prompt comes from the crop's class (:data:`CLASS_PROMPTS`, overridable). Sampling is
DPM-Solver++ (diffusers' ``DPMSolverMultistepScheduler`` built from the folder's scheduler config,
deterministic given the initial noise), and the initial noise of each window is drawn from the
run's per-step generator, so a run is reproducible with the same pipeline files.

The pipeline's safety checker is not loaded: on skin close-ups its false positives would return
black windows that get pasted into the crop.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import torch
import torch.nn.functional as F

from skingen.config import NonNegative, Range, check_fields
from skingen.errors import SkingenError
from skingen.generation.backends import Backend, LoadedFiller, LoadRequest, diffusers_unet
from skingen.inpaint.iterative import RegionFiller
from skingen.models.sd_lora import DEFAULT_NEGATIVE_PROMPT
from skingen.runs import read_json
from skingen.generation.job import AUTOCAST_DTYPES

#: prompt per class label of a data folder; other labels get :data:`DEFAULT_PROMPT`
CLASS_PROMPTS = {
    "exanthem": "close-up photo of a maculopapular rash on skin",
    "measles": "close-up photo of a measles rash, red maculopapular exanthem on skin",
    "chickenpox": "close-up photo of a chickenpox rash, red spots and blisters on skin",
    "monkeypox": "close-up photo of a monkeypox rash, pustules on skin",
}
DEFAULT_PROMPT = "close-up photo of a skin rash"
ATTENTION = ("sdpa", "slicing")


@dataclass(frozen=True)
class SDOptions:
    """Settings of the sd backend. ``prompts``: overrides, label -> prompt, key ``*`` = every class."""

    prompts: dict[str, str] = field(default_factory=dict)
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    guidance: NonNegative = 7.5     #: classifier-free guidance scale (> 1 doubles the UNet evaluations)
    solver_steps: Annotated[int, Range(1, 10_000)] = 20  #: DPM-Solver++ steps per region (before --strength)
    strength: Annotated[float, Range(0, 1, open_lo=True)] = 1.0  #: 1 = the region starts from pure noise; < 1 keeps some
    resolution: Annotated[int, Range(8, 8192)] | None = None  #: side windows are resized to; None = the pipeline's own
    attention: str = "sdpa"         #: sdpa (PyTorch's fused attention) | slicing (less memory, slower)
    cpu_offload: bool = False       #: diffusers' enable_model_cpu_offload (a GPU with little memory)

    def __post_init__(self) -> None:
        check_fields(self, "sd.")
        if self.attention not in ATTENTION:
            raise SkingenError(f"attention must be one of {', '.join(ATTENTION)}, got '{self.attention}'")
        if int(self.solver_steps * self.strength) < 1:
            raise SkingenError(f"{self.solver_steps} solver steps at strength {self.strength} leave no denoising step")

    def prompt_for(self, label: str) -> str:
        """The prompt for a crop of class ``label``: its override, the override for all, the table, the default."""
        return self.prompts.get(label) or self.prompts.get("*") or CLASS_PROMPTS.get(label, DEFAULT_PROMPT)


def parse_prompts(values: list[str]) -> dict[str, str]:
    """``--prompt`` values -> overrides: ``LABEL=TEXT`` (no space before the ``=``) for one class, plain
    ``TEXT`` for every class."""
    out: dict[str, str] = {}
    for value in values:
        label, sep, text = value.partition("=")
        if sep and label and " " not in label:
            out[label.strip()] = text.strip()
        else:
            out["*"] = value.strip()
    if any(not text for text in out.values()):
        raise SkingenError("--prompt must not be empty")
    return out


def sd_options(prompt: list[str], negative_prompt: str | None, guidance: float | None, strength: float | None,
                resolution: int | None, attention: str | None, cpu_offload: bool):
    """The sd backend's options when any was given, else None (the backend's defaults)."""
    given = {"negative_prompt": negative_prompt, "guidance": guidance, "strength": strength,
             "resolution": resolution, "attention": attention}
    if not prompt and not cpu_offload and all(v is None for v in given.values()):
        return None
    return SDOptions(prompts=parse_prompts(prompt), cpu_offload=cpu_offload,
                     **{k: v for k, v in given.items() if v is not None})


def check_inpainting_folder(path: Path) -> None:
    """One-line errors for a folder that is not a diffusers inpainting pipeline (read from configs only)."""
    if not (path / "model_index.json").is_file():
        raise SkingenError(f"{path} is not a diffusers pipeline folder (no model_index.json): pass the folder that "
                           f"`save_pretrained` wrote (docs/inpainting.md: pretrained Stable Diffusion inpainting)")
    cfg_file = path / "unet" / "config.json"
    cfg = read_json(cfg_file) if cfg_file.is_file() else {}
    read_json(path / "model_index.json")  # damaged: one line now, not a traceback inside diffusers
    if cfg.get("_class_name") != "UNet2DConditionModel":
        raise SkingenError(f"{path}: the sd backend needs a Stable Diffusion inpainting pipeline (unet/ holding a "
                           f"UNet2DConditionModel), found {cfg.get('_class_name') or 'no unet/config.json'}")
    if cfg.get("in_channels") != 9:
        kind = "a text-to-image pipeline" if cfg.get("in_channels") == 4 else "not an inpainting pipeline"
        raise SkingenError(f"{path} is {kind} (its UNet takes {cfg.get('in_channels')} input channels); the sd "
                           f"backend needs an inpainting one (9: latents, mask, masked image), e.g. "
                           f"stable-diffusion-v1-5/stable-diffusion-inpainting")
    if importlib.util.find_spec("transformers") is None:
        raise SkingenError("the sd backend needs the transformers package: pip install 'skingen[sd]' "
                           "(or pip install transformers)")


def load_sd_pipeline(path: Path, precision: str = "fp32"):
    """The pipeline at ``path`` with weights in ``precision``'s dtype, without its safety checker (the loader
    ``train sd-lora`` shares: :func:`skingen.models.sd_lora.load_pipeline`)."""
    from skingen.models.sd_lora import load_pipeline

    check_inpainting_folder(path)
    return load_pipeline(path, AUTOCAST_DTYPES.get(precision) or torch.float32)


def prepare_pipeline(pipe, device: str, options: SDOptions):
    """``pipe`` with DPM-Solver++, no progress bar, the options' attention and offloading, on ``device``."""
    from diffusers import DPMSolverMultistepScheduler

    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, algorithm_type="dpmsolver++")
    pipe.set_progress_bar_config(disable=True)
    if options.attention == "slicing":
        pipe.enable_attention_slicing()
    if options.cpu_offload:
        if torch.device(device).type != "cuda":
            raise SkingenError("--cpu-offload needs a GPU (it moves each model to the GPU only while it runs)")
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    return pipe


def native_resolution(pipe) -> int:
    size = pipe.unet.config.sample_size
    return (size if isinstance(size, int) else size[0]) * pipe.vae_scale_factor


def denoising_steps(pipe, options: SDOptions) -> int:
    """UNet steps per window after ``strength`` cuts the schedule, as the pipeline counts them."""
    sched = type(pipe.scheduler).from_config(pipe.scheduler.config)
    sched.set_timesteps(options.solver_steps)
    start = options.solver_steps - min(int(options.solver_steps * options.strength), options.solver_steps)
    return len(sched.timesteps[start * sched.order:])


class SDInpainting:
    """A prepared pipeline (:func:`prepare_pipeline`) and its settings; :meth:`region_filler` gives the
    :class:`RegionFiller` for one prompt."""

    def __init__(self, pipe, options: SDOptions = SDOptions()):
        self.pipe, self.options = pipe, options
        native = native_resolution(self.pipe)
        self.resolution = options.resolution or native
        # the latents must halve cleanly through every UNet level
        multiple = self.pipe.vae_scale_factor * 2 ** (len(self.pipe.unet.config.block_out_channels) - 1)
        if self.resolution % multiple:
            raise SkingenError(f"--resolution must be a multiple of {multiple} for this pipeline, got {self.resolution}")
        guided = options.guidance > 1 and self.pipe.unet.config.time_cond_proj_dim is None
        self.steps = denoising_steps(self.pipe, options)
        self.evaluations = self.steps * (2 if guided else 1)  # classifier-free guidance runs the UNet twice

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", precision: str = "fp32", options: SDOptions = SDOptions()
             ) -> "SDInpainting":
        """The pipeline folder at ``path`` (never downloaded) on ``device``."""
        return cls(prepare_pipeline(load_sd_pipeline(Path(path), precision), device, options), options)

    def settings(self) -> dict[str, object]:
        """What a run records about the backend (inpaint.json)."""
        o = self.options
        return {"pipeline": type(self.pipe).__name__, "scheduler": type(self.pipe.scheduler).__name__,
                "resolution": self.resolution, "native_resolution": native_resolution(self.pipe),
                "solver_steps": o.solver_steps, "strength": o.strength, "denoising_steps": self.steps,
                "guidance": o.guidance, "unet_evaluations_per_window": self.evaluations,
                "negative_prompt": o.negative_prompt, "prompt_overrides": dict(o.prompts),
                "class_prompts": dict(CLASS_PROMPTS), "default_prompt": DEFAULT_PROMPT, "attention": o.attention,
                "cpu_offload": o.cpu_offload, "dtype": str(self.pipe.unet.dtype).removeprefix("torch.")}

    def region_filler(self, prompt: str) -> RegionFiller:
        """The :class:`RegionFiller` that fills with ``prompt`` (and the options' negative prompt)."""
        pipe, res, o = self.pipe, self.resolution, self.options

        @torch.no_grad()
        def fill(source: torch.Tensor, keep: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
            n, side = source.shape[0], source.shape[-1]
            image = F.interpolate((source.float() + 1) / 2, size=(res, res), mode="bicubic", antialias=True,
                                  align_corners=False).clamp(0, 1)
            # every native pixel that touches the region is repainted (area > 0): a resized region never
            # leaves a sliver of its old content for the paste-back to keep
            paint = (F.interpolate(1 - keep.float(), size=(res, res), mode="area") > 0).float()
            out = pipe(prompt=[prompt] * n, negative_prompt=[o.negative_prompt] * n, image=image, mask_image=paint,
                       height=res, width=res, strength=o.strength, num_inference_steps=o.solver_steps,
                       guidance_scale=o.guidance, generator=generators, output_type="pt").images
            if pipe._num_timesteps != self.steps:  # the cost columns must count what really ran
                raise SkingenError(f"the pipeline ran {pipe._num_timesteps} steps, expected {self.steps}")
            out = F.interpolate(out.float().cpu(), size=(side, side), mode="bicubic", antialias=True,
                                align_corners=False)
            return (out * 2 - 1).clamp(-1, 1)

        return RegionFiller(fill, multiple=1, evaluations=self.evaluations, resize_to=res)


def _claims(run: str) -> bool:
    found = diffusers_unet(Path(run))
    return found is not None and found[1] == "UNet2DConditionModel"


def _load(req: LoadRequest) -> LoadedFiller:
    from dataclasses import replace

    path = Path(req.run)
    options = req.options or SDOptions()
    if req.solver_steps is not None:
        options = replace(options, solver_steps=req.solver_steps)
    sd = SDInpainting.load(path, req.device, req.precision, options)
    fillers: dict[str, RegionFiller] = {}

    def for_label(label: str) -> tuple[RegionFiller, dict[str, str]]:
        prompt = options.prompt_for(label)
        if prompt not in fillers:
            fillers[prompt] = sd.region_filler(prompt)
        return fillers[prompt], {"prompt": prompt, "negative_prompt": options.negative_prompt}

    return LoadedFiller(for_label("")[0], None, "sd", str(path.resolve()), for_label, sd.settings())


BACKEND = Backend("sd", "a local diffusers Stable Diffusion inpainting pipeline folder (windows resized to its "
                  "resolution, a text prompt per class)", claims=_claims, load=_load, order=20,
                  options="--prompt, --negative-prompt, --guidance, --strength, --resolution, --attention and "
                          "--cpu-offload")
