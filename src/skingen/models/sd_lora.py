"""A pretrained Stable Diffusion pipeline (diffusers) with a LoRA on its UNet's attention: what ``skingen train
sd-lora`` fine-tunes and ``skingen sample`` / ``skingen inpaint`` draw from.

Not a family of the generic training loop (it is not in ``registry.models()``): the pipeline's weights are
frozen and never saved, only the LoRA (``peft``) is trained and checkpointed, by :mod:`skingen.train.sd_lora`.
``registry.load_model`` rebuilds :class:`SDLoraModel` from such a checkpoint, so ``sample``, ``plan`` and
``merge`` take an ``sd-lora`` run like any other.

The LoRA targets the attention projections ``to_q``, ``to_k``, ``to_v``, ``to_out.0`` of every UNet attention
block, with Gaussian initialisation of ``lora_A`` and zeros in ``lora_B`` (the diffusers DreamBooth-LoRA
recipe), so a fresh LoRA leaves the pipeline unchanged. The prompt of a crop is its class label put into a
template (:data:`DEFAULT_PROMPT`, with the rare token ``sks`` that DreamBooth binds to the new concept).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import torch

from skingen.config import NonNegative, Range
from skingen.errors import SkingenError
from skingen.models.base import Condition, GenerativeModel
from skingen.runs import read_json

FAMILY = "sd-lora"
LORA_FILE = "pytorch_lora_weights.safetensors"   #: diffusers' file name: ``pipe.load_lora_weights(RUN)`` finds it
TARGET_MODULES = ("to_k", "to_q", "to_v", "to_out.0")
DEFAULT_PROMPT = "a close-up photo of sks {label} skin rash"
DEFAULT_NEGATIVE_PROMPT = "drawing, cartoon, text, watermark, blurry, low quality"
KINDS = {4: "text-to-image", 9: "inpainting"}    #: UNet input channels -> pipeline kind


def need(package: str) -> None:
    """A one-line error when ``package`` (transformers, peft) is not installed."""
    import importlib.util

    if importlib.util.find_spec(package) is None:
        raise SkingenError(f"Stable Diffusion pipelines need the {package} package: pip install 'skingen[sd]'")


def prompt_for(template: str, label: str) -> str:
    """The instance prompt of a crop of class ``label`` (``{label}`` in ``template`` replaced; an unlabelled crop
    leaves it out): ``prompt_for("a sks {label} rash", "measles") == "a sks measles rash"``, ``"" -> "a sks rash"``."""
    return " ".join(template.replace("{label}", label).split())


def resolve_pipeline(pipeline: str | Path) -> Path:
    """A local pipeline folder as given, else ``pipeline`` as a Hugging Face hub id downloaded (or found in the
    cache) by diffusers: the folder it lies in."""
    path = Path(pipeline)
    if path.is_dir():
        return path
    text = str(pipeline)
    if text.startswith(("/", ".", "~")) or text.count("/") != 1:  # a hub id is OWNER/NAME
        raise SkingenError(f"--pipeline {pipeline}: no such folder (and not a hub id OWNER/NAME)")
    from diffusers import DiffusionPipeline

    try:
        return Path(DiffusionPipeline.download(str(pipeline)))
    except Exception as exc:  # no network, unknown id, gated model: one line
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__
        raise SkingenError(f"--pipeline {pipeline}: neither a local folder nor a hub id diffusers could fetch "
                           f"({text})") from None


def pipeline_kind(folder: Path) -> str:
    """``text-to-image`` or ``inpainting``, from the UNet's input channels (4 or 9); a one-line error otherwise."""
    if not (folder / "model_index.json").is_file():
        raise SkingenError(f"{folder} is not a diffusers pipeline folder (no model_index.json)")
    cfg_file = folder / "unet" / "config.json"
    cfg = read_json(cfg_file) if cfg_file.is_file() else {}
    if cfg.get("_class_name") != "UNet2DConditionModel" or cfg.get("in_channels") not in KINDS:
        raise SkingenError(f"{folder}: sd-lora needs a Stable Diffusion pipeline (unet/ a UNet2DConditionModel with 4 "
                           f"or 9 input channels), found {cfg.get('_class_name') or 'no unet/config.json'} with "
                           f"{cfg.get('in_channels')} input channels")
    return KINDS[cfg["in_channels"]]


def load_pipeline(folder: Path, dtype: torch.dtype = torch.float32):
    """The pipeline at ``folder`` (text-to-image or inpainting, by its UNet) in ``dtype``, without its safety
    checker (its false positives on skin close-ups return black images) and without progress bars."""
    need("transformers")
    import diffusers
    from diffusers import AutoPipelineForInpainting, AutoPipelineForText2Image

    auto = AutoPipelineForInpainting if pipeline_kind(folder) == "inpainting" else AutoPipelineForText2Image
    kwargs = {}
    if "safety_checker" in read_json(folder / "model_index.json"):
        kwargs = {"safety_checker": None, "requires_safety_checker": False}
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch_dtype.*is deprecated", category=FutureWarning)
            pipe = auto.from_pretrained(folder, torch_dtype=dtype, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise SkingenError(f"{folder}: could not load the pipeline: {str(exc).splitlines()[0]}") from None
    finally:
        diffusers.utils.logging.enable_progress_bar()
        transformers.utils.logging.enable_progress_bar()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def attach_lora(unet, rank: int, alpha: float, seed: int = 0) -> list[torch.nn.Parameter]:
    """Freeze ``unet`` and add a LoRA adapter (``rank``, ``alpha``) on :data:`TARGET_MODULES`; its ``lora_A``
    initialisation is drawn from ``seed``. Returns the trainable LoRA parameters (fp32)."""
    need("peft")
    from peft import LoraConfig

    unet.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian",
                                    target_modules=list(TARGET_MODULES)))
    params = [p for p in unet.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()  # trained in fp32 also when the frozen pipeline is fp16 / bf16
    return params


def lora_state(unet) -> dict[str, torch.Tensor]:
    """The LoRA tensors of ``unet`` in peft's naming (what a checkpoint holds)."""
    from peft.utils import get_peft_model_state_dict

    return {k: v.detach().float().cpu().contiguous() for k, v in get_peft_model_state_dict(unet).items()}


def load_lora_state(unet, state: dict[str, torch.Tensor]) -> None:
    """Put the tensors of :func:`lora_state` back into ``unet`` (which :func:`attach_lora` prepared)."""
    from peft.utils import set_peft_model_state_dict

    result = set_peft_model_state_dict(unet, state)
    missing = [k for k in getattr(result, "missing_keys", []) if "lora_" in k]
    if getattr(result, "unexpected_keys", None) or missing:
        raise SkingenError("the checkpoint's LoRA does not fit this pipeline's UNet (different rank or layers)")


def save_diffusers_lora(unet, folder: Path) -> Path:
    """Write ``folder/pytorch_lora_weights.safetensors`` in diffusers' format (with the adapter's rank and alpha as
    metadata), replacing an older one atomically: ``pipe.load_lora_weights(folder)`` loads it."""
    import os
    import shutil
    import tempfile

    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    metadata = unet.peft_config["default"].to_dict()
    tmp = Path(tempfile.mkdtemp(prefix=".lora-", dir=folder))
    try:
        StableDiffusionPipeline.save_lora_weights(tmp, unet_lora_layers=layers, unet_lora_adapter_metadata=metadata,
                                                  safe_serialization=True)
        os.replace(tmp / LORA_FILE, folder / LORA_FILE)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder / LORA_FILE


@dataclass(frozen=True)
class SDLoraConfig:
    """What a checkpoint records to rebuild the model (``config.json``'s ``model``)."""

    pipeline: str = ""              #: the local pipeline folder (a hub id resolved to its cache folder)
    kind: str = "text-to-image"     #: text-to-image | inpainting
    size: Annotated[int, Range(8, 8192)] = 512  #: the side images are trained and drawn at
    labels: tuple[str, ...] = ()    #: the classes of the training crops (one prompt each)
    prompt: str = DEFAULT_PROMPT    #: instance prompt template (``{label}``)
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    rank: Annotated[int, Range(1, 1024)] = 4
    alpha: Annotated[float, Range(0, None, open_lo=True)] = 4.0
    guidance: NonNegative = 7.5     #: default classifier-free guidance of ``sample``
    solver_steps: Annotated[int, Range(1, 10_000)] = 25  #: default DPM-Solver++ steps of ``sample``


class SDLoraModel(GenerativeModel):
    """The pipeline of ``config.pipeline`` with a LoRA, for sampling: ``sample(seeds, Condition(labels=...))`` draws
    text-to-image images ``[N,3,size,size]`` in [-1, 1] from the class prompts with DPM-Solver++ (an inpainting
    pipeline paints the whole frame: mask all ones). Row i depends only on (weights, ``seeds[i]``, its label)."""

    name = FAMILY
    description = "LoRA fine-tune of a pretrained Stable Diffusion pipeline (skingen train sd-lora --pipeline DIR)"
    supports = frozenset({"labels"})
    sample_options = frozenset({"guidance", "solver_steps"})
    ema_module_name = "unet"

    def __init__(self, config: SDLoraConfig, pipe: Any = None):
        super().__init__(config)
        if pipe is None:
            pipe = load_pipeline(Path(config.pipeline))
            attach_lora(pipe.unet, config.rank, config.alpha)
        from diffusers import DPMSolverMultistepScheduler

        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, algorithm_type="dpmsolver++")
        self.unet, self.vae, self.text_encoder = pipe.unet, pipe.vae, pipe.text_encoder
        self._pipe = [pipe]  # a list: the pipeline object itself is no nn.Module

    @property
    def pipe(self):
        return self._pipe[0]

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], device: str = "cpu") -> "SDLoraModel":
        """The model of a checkpoint :func:`skingen.train.sd_lora` wrote (``weights["lora"]``)."""
        from skingen.config import from_dict

        if "lora" not in ckpt["weights"]:
            raise SkingenError(f"{ckpt['path']}: an sd-lora checkpoint without lora.safetensors")
        cfg = from_dict(SDLoraConfig, ckpt["config"]["model"], prefix="model.")
        if not Path(cfg.pipeline).is_dir():
            raise SkingenError(f"{ckpt['path']}: the pipeline folder it was trained on, {cfg.pipeline}, is gone")
        model = cls(cfg)
        load_lora_state(model.unet, ckpt["weights"]["lora"])
        return model.to(device).eval()

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"unet": self.unet}

    def describe(self) -> dict[str, Any]:
        """Parameter counts: the pipeline's UNet (frozen) and its LoRA (what was trained)."""
        lora = sum(p.numel() for n, p in self.unet.named_parameters() if "lora_" in n)
        return {"unet (with LoRA)": sum(p.numel() for p in self.unet.parameters()), "LoRA": lora}

    def prompts(self, labels: torch.Tensor | None, n: int) -> list[str]:
        names = self.config.labels
        return [prompt_for(self.config.prompt, names[int(i)] if names else "")
                for i in (labels.tolist() if labels is not None else [0] * n)]

    def manifest_fields(self, label: str) -> dict[str, str]:
        return {"prompt": prompt_for(self.config.prompt, label), "negative_prompt": self.config.negative_prompt}

    @torch.no_grad()
    def sample(self, seeds: list[int], cond: Condition | None = None, **options: Any) -> torch.Tensor:
        self.check_sample_args(seeds, cond, options)
        c, pipe, device = self.config, self.pipe, self.device
        gens = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
        kwargs = {}
        if c.kind == "inpainting":  # the whole frame painted: text-to-image through the inpainting UNet
            kwargs = {"image": torch.zeros(len(seeds), 3, c.size, c.size), "strength": 1.0,
                      "mask_image": torch.ones(len(seeds), 1, c.size, c.size)}
        out = pipe(prompt=self.prompts(cond.labels if cond is not None else None, len(seeds)),
                   negative_prompt=[c.negative_prompt] * len(seeds), height=c.size, width=c.size,
                   num_inference_steps=int(options.get("solver_steps", c.solver_steps)),
                   guidance_scale=float(options.get("guidance", c.guidance)), generator=gens, output_type="pt",
                   **kwargs).images
        return (out.float() * 2 - 1).clamp(-1, 1)
