"""``skingen train sd-lora``: LoRA fine-tuning of a pretrained Stable Diffusion pipeline on a data folder's crops.

The diffusers DreamBooth-LoRA recipe (``examples/dreambooth/train_dreambooth_lora.py``) on ``accelerate``: the
pipeline's VAE, text encoder and UNet are frozen (in the mixed-precision dtype), a LoRA on the UNet's attention
(:mod:`skingen.models.sd_lora`) is trained in fp32 with AdamW on the ε (or v) loss at random timesteps, the prompt
of each crop is its class put into the instance-prompt template. A text-to-image pipeline (4-channel UNet) is
plain DreamBooth on the crops resized to the pipeline's resolution. An inpainting pipeline (9-channel UNet: noisy
latents, mask, masked-image latents) is trained as it is used by ``skingen inpaint``: half of the crops are cut
to a random square window first (the iterative algorithm hands the pipeline windows of about twice a region's
side), and each gets one random region from the project's region placer (``inpaint.regions.random_regions``,
the boxes and blobs iterative inpainting repaints) as the mask; masked pixels are set to 0 as the pipeline does.

Why not :mod:`skingen.train.loop`: that loop trains a registry family whose every weight it checkpoints and
averages (EMA); here the 1 B frozen pipeline weights must never be copied or saved, only the LoRA (a few MB),
and the pipeline comes from a folder or hub id, not a model config. The run folder is the same:
``config.yaml`` (family ``sd-lora``, data, pipeline, train settings), ``env.json``, ``stats.jsonl``, ``log.txt``,
``checkpoints/step-NNNNNN/`` (``lora.safetensors`` in peft's naming + ``train_state.pt``, sha256 in
``config.json``) and, at the run's root, the latest LoRA in diffusers' format (``pytorch_lora_weights.safetensors``):
``pipe.load_lora_weights(RUN)`` works outside skingen. All training noise comes from one checkpointed CPU
generator and the data order is a function of (seed, epoch), so ``--resume`` continues exactly: N + N steps
equal 2N straight (on the CPU).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable

import torch
import torch.nn.functional as F

from skingen.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from skingen.config import Fraction, NonNegativeInt, PositiveInt, Range, from_dict, load_config, parse_override, to_dict
from skingen.data.manifest import manifest_sha256
from skingen.errors import SkingenError
from skingen.inpaint.regions import SHAPES, check_choice, random_regions, torch_rand
from skingen.models.sd_lora import (DEFAULT_PROMPT, FAMILY, SDLoraConfig, attach_lora, load_lora_state, load_pipeline,
                                    lora_state, pipeline_kind, prompt_for, resolve_pipeline, save_diffusers_lora)
from skingen.run_folder import RunFolder
from skingen.runs import JsonlWriter, atomic_write_text, new_run_dir, peak_memory_mb, read_jsonl, write_env_json
from skingen.train.loop import EpochBatches, accelerate_precision, set_precision

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class SDLoraTrainConfig:
    """``--set train.KEY=VALUE``; defaults from the diffusers DreamBooth-LoRA recipe (rank 4, alpha = rank,
    AdamW lr 1e-4, weight decay 1e-2, constant schedule, batch 1, 500 steps, gradient clipping at 1)."""

    steps: Annotated[int, Range(1, 10_000_000)] = 500       #: optimiser steps (duration)
    batch: Annotated[int, Range(1, 4096)] = 1               #: crops per step per process
    lr: Annotated[float, Range(0, 1, open_lo=True)] = 1e-4  #: AdamW learning rate of the LoRA
    weight_decay: Annotated[float, Range(0, 1)] = 1e-2
    max_grad_norm: Annotated[float, Range(0, None, open_lo=True)] = 1.0
    rank: Annotated[int, Range(1, 1024)] = 4                #: LoRA rank
    alpha: Annotated[float, Range(0, None, open_lo=True)] | None = None  #: LoRA alpha (scale alpha/rank); None = rank
    seed: NonNegativeInt = 0
    split: str = "train"
    prompt: str = DEFAULT_PROMPT    #: instance prompt template; ``{label}`` = the crop's class
    resolution: Annotated[int, Range(8, 8192)] | None = None  #: side crops are resized to; None = the pipeline's
    mixed_precision: str = "fp32"   #: fp32 | bf16 | fp16 (the frozen weights' dtype; the LoRA stays fp32)
    gradient_checkpointing: bool = False  #: recompute UNet activations in backward (less memory, ~30 % slower)
    flip: bool = True               #: random horizontal flips
    window_prob: Fraction = 0.5     #: inpainting: share of crops cut to a random square window first
    window_min: Annotated[float, Range(0, 1, open_lo=True)] = 0.25  #: inpainting: smallest window side (of the crop)
    region_min: Annotated[float, Range(0, 1, open_lo=True)] = 0.25  #: inpainting: region side, fraction of the image
    region_max: Annotated[float, Range(0, 1, open_lo=True)] = 0.6
    region_shapes: tuple[str, ...] = ("box", "blob")
    tick: PositiveInt = 10          #: steps between status lines / stats records
    snapshot: PositiveInt = 100     #: steps between checkpoints
    keep_last: PositiveInt = 3      #: checkpoints kept

    def __post_init__(self) -> None:
        set_precision(self)
        if not self.region_min <= self.region_max:
            raise SkingenError(f"need train.region_min <= train.region_max, got {self.region_min}, {self.region_max}")
        if not self.region_shapes:
            raise SkingenError("train.region_shapes is empty")
        for shape in self.region_shapes:
            check_choice("train.region_shapes entry", shape, SHAPES[:2])
        if "{" in self.prompt.replace("{label}", ""):
            raise SkingenError(f"train.prompt may hold only the placeholder {{label}}, got '{self.prompt}'")


@dataclass(frozen=True)
class SDLoraRunConfig:
    train: SDLoraTrainConfig = field(default_factory=SDLoraTrainConfig)


def resolve_config(config: str | Path | None = None, overrides: list[str] | None = None) -> SDLoraRunConfig:
    """Defaults < YAML file (a ``train:`` section) < ``--set train.KEY=VALUE``."""
    return load_config(SDLoraRunConfig, config, overrides)


def resume_steps(overrides: list[str]) -> int | None:
    """``--resume`` keeps the run's settings; only ``--set train.steps=N`` may change (returns N)."""
    steps = None
    for text in overrides:
        keys, value = parse_override(text)
        if keys != ["train", "steps"] or not isinstance(value, int) or value < 1:
            raise SkingenError(f"--resume keeps the run's config; only --set train.steps=N may change (got '{text}')")
        steps = value
    return steps


class LoraTrainer:
    """The pipeline with a trainable LoRA, its optimiser and the loss of one batch (used by :func:`train_sd_lora`;
    tests drive it directly). ``device``: where the networks run; all noise comes from ``self.gen`` (CPU)."""

    def __init__(self, folder: Path, tc: SDLoraTrainConfig, labels: list[str], device: torch.device | str = "cpu"):
        from diffusers import DDPMScheduler

        self.tc, self.labels, self.device = tc, labels, torch.device(device)
        self.kind = pipeline_kind(folder)
        self.pipe = load_pipeline(folder, DTYPES[tc.mixed_precision])
        unet = self.pipe.unet
        self.size = tc.resolution or native_resolution(self.pipe)
        multiple = self.pipe.vae_scale_factor * 2 ** (len(unet.config.block_out_channels) - 1)
        if self.size % multiple:
            raise SkingenError(f"train.resolution must be a multiple of {multiple} for this pipeline, got {self.size}")
        self.pipe.vae.requires_grad_(False)
        self.pipe.text_encoder.requires_grad_(False)
        self.params = attach_lora(unet, tc.rank, tc.alpha or tc.rank, seed=tc.seed)
        if tc.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        self.pipe.to(self.device)
        self.unet = unet  # accelerate's wrapped UNet (DDP) replaces it for the forward pass
        self.optimizer = torch.optim.AdamW(self.params, lr=tc.lr, weight_decay=tc.weight_decay)
        self.scheduler = DDPMScheduler.from_config(self.pipe.scheduler.config)
        self.gen = torch.Generator().manual_seed(tc.seed * 1000)
        self.text = self._encode_prompts()

    def model_config(self, folder: Path) -> SDLoraConfig:
        tc = self.tc
        return SDLoraConfig(pipeline=str(folder.resolve()), kind=self.kind, size=self.size, labels=tuple(self.labels),
                            prompt=tc.prompt, rank=tc.rank, alpha=float(tc.alpha or tc.rank))

    @torch.no_grad()
    def _encode_prompts(self) -> torch.Tensor:
        """CLIP embeddings of every class's prompt ``[classes,77,D]`` (the text encoder is frozen)."""
        tok = self.pipe.tokenizer
        prompts = [prompt_for(self.tc.prompt, label) for label in self.labels] or [prompt_for(self.tc.prompt, "")]
        ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids.to(self.device)
        return self.pipe.text_encoder(ids)[0]

    def rand(self, n: int) -> torch.Tensor:
        return torch.rand(n, generator=self.gen)

    def prepare_images(self, images: torch.Tensor) -> torch.Tensor:
        """Crops float ``[N,3,h,w]`` in [-1, 1] -> ``[N,3,size,size]``: flipped at random, cut to a random window
        (inpainting, share ``window_prob``), resized (bicubic, antialiased: as the sd backend resizes windows)."""
        tc, out = self.tc, []
        for x in images:
            if tc.flip and float(self.rand(1)[0]) < 0.5:
                x = x.flip(-1)
            if self.kind == "inpainting" and float(self.rand(1)[0]) < tc.window_prob:
                side = x.shape[-1]
                w = max(2, round(side * (tc.window_min + (1 - tc.window_min) * float(self.rand(1)[0]))))
                top, left = (int(float(v) * (side - w + 1)) for v in self.rand(2))
                x = x[:, top:top + w, left:left + w]
            if x.shape[-1] != self.size or x.shape[-2] != self.size:
                x = F.interpolate(x[None].float(), size=(self.size, self.size), mode="bicubic", antialias=True,
                                  align_corners=False)[0].clamp(-1, 1)
            out.append(x)
        return torch.stack(out)

    def _latents(self, images: torch.Tensor) -> torch.Tensor:
        vae = self.pipe.vae
        dist = vae.encode(images.to(self.device, vae.dtype)).latent_dist
        noise = torch.randn(dist.mean.shape, generator=self.gen).to(self.device, dist.mean.dtype)
        return (dist.mean + dist.std * noise) * vae.config.scaling_factor

    def loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The diffusion loss of a prepared batch ``[N,3,size,size]`` in [-1, 1] with class indices ``[N]``."""
        n, sched = len(images), self.scheduler
        with torch.no_grad():
            latents = self._latents(images)
            noise = torch.randn(latents.shape, generator=self.gen).to(self.device, latents.dtype)
            t = torch.randint(0, sched.config.num_train_timesteps, (n,), generator=self.gen).to(self.device)
            x = sched.add_noise(latents, noise, t)
            if self.kind == "inpainting":
                lo, hi = (max(2, round(f * self.size)) for f in (self.tc.region_min, self.tc.region_max))
                regions = random_regions(n, self.size, torch_rand(self.gen), lo, hi, self.tc.region_shapes)
                mask = torch.stack([r.paint(self.size) for r in regions])[:, None].float().to(self.device)
                masked = self._latents(images.to(self.device) * (mask < 0.5))
                x = torch.cat([x, F.interpolate(mask, size=latents.shape[-2:]).to(x.dtype), masked], 1)
            target = noise if sched.config.prediction_type == "epsilon" else sched.get_velocity(latents, noise, t)
        text = self.text[labels.to(self.device)]
        pred = self.unet(x, t, encoder_hidden_states=text).sample
        return F.mse_loss(pred.float(), target.float())

    def step(self, images: torch.Tensor, labels: torch.Tensor, backward: Callable = None, clip: Callable = None
             ) -> float:
        """One optimiser step on raw crops ``[N,3,h,w]``; ``backward`` / ``clip`` default to plain torch ones."""
        loss = self.loss(self.prepare_images(images), labels)
        (backward or (lambda v: v.backward()))(loss)
        (clip or torch.nn.utils.clip_grad_norm_)(self.params, self.tc.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    def state(self, step: int) -> dict[str, Any]:
        return {"step": step, "generator": self.gen.get_state(), "optimizer": self.optimizer.state_dict()}

    def restore(self, ckpt: dict[str, Any]) -> int:
        load_lora_state(self.pipe.unet, ckpt["weights"]["lora"])
        state = ckpt["train_state"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.gen.set_state(state["generator"].to(torch.uint8).cpu())
        return int(state["step"])


def native_resolution(pipe) -> int:
    size = pipe.unet.config.sample_size
    return (size if isinstance(size, int) else size[0]) * pipe.vae_scale_factor


def train_sd_lora(pipeline: str | Path, data: str | Path, cfg: SDLoraRunConfig = SDLoraRunConfig(),
                  outdir: str | Path = "runs", desc: str = "", cpu: bool = False, minutes: float | None = None,
                  progress: Callable[[int, int], None] | None = None, log: Callable[[str], None] = lambda s: None
                  ) -> Path:
    """Train a LoRA of ``pipeline`` (a local folder or a hub id) on the crops of ``data`` (``DATA[:split]`` is not
    parsed here: the split is ``train.split``) in a new run folder under ``outdir``; returns it. ``minutes``: stop
    after that long with a final checkpoint (:func:`resume_sd_lora` continues)."""
    folder = resolve_pipeline(pipeline)
    pipeline_kind(folder)  # a one-line error before anything is written
    return _fit(None, str(pipeline), folder, Path(data), cfg, None, outdir, desc, cpu, minutes, progress, log)


def resume_sd_lora(run_dir: str | Path, steps: int | None = None, cpu: bool = False, minutes: float | None = None,
                   progress: Callable[[int, int], None] | None = None, log: Callable[[str], None] = lambda s: None
                   ) -> Path:
    """Continue ``run_dir`` from its latest checkpoint exactly; ``steps`` changes the total duration."""
    run_dir = Path(run_dir)
    saved = RunFolder(run_dir).config()
    if saved.get("family") != FAMILY:
        raise SkingenError(f"{run_dir} is a '{saved.get('family')}' run, not '{FAMILY}'")
    if not list_checkpoints(run_dir / "checkpoints"):
        raise SkingenError(f"{run_dir} has no checkpoint to resume from")
    cfg = from_dict(SDLoraRunConfig, {"train": saved.get("train") or {}})
    if steps is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=steps))
    ckpt = load_checkpoint(run_dir)
    stats = run_dir / "stats.jsonl"  # forget records after that checkpoint, so stats stay one timeline
    if stats.is_file():
        import json

        kept = [r for r in read_jsonl(stats) if r.get("step", 0) <= ckpt["train_state"]["step"]]
        atomic_write_text(stats, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
    return _fit(run_dir, saved["pipeline"], Path(saved["pipeline_folder"]), Path(saved["data"]), cfg, ckpt, None, "",
                cpu, minutes, progress, log)


def _write_run_files(run_dir: Path, pipeline: str, folder: Path, data: Path, cfg: SDLoraRunConfig, kind: str) -> None:
    import importlib.metadata

    import yaml

    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(
        {"family": FAMILY, "data": str(data.resolve()), "pipeline": pipeline, "pipeline_folder": str(folder.resolve()),
         "kind": kind, **to_dict(cfg)}, sort_keys=False))
    versions = {p: importlib.metadata.version(p) for p in ("diffusers", "peft", "transformers")}
    write_env_json(run_dir, data=str(data.resolve()), data_manifest_sha256=manifest_sha256(data), pipeline=pipeline,
                   pipeline_folder=str(folder.resolve()), versions=versions)


def _fit(run_dir: Path | None, pipeline: str, folder: Path, data: Path, cfg: SDLoraRunConfig,
         ckpt: dict[str, Any] | None, outdir: str | Path | None, desc: str, cpu: bool, minutes: float | None,
         progress: Callable[[int, int], None] | None, log: Callable[[str], None]) -> Path:
    from accelerate import Accelerator
    from accelerate.utils import broadcast_object_list

    from skingen.data.datasets import InMemoryDataset, ManifestDataset

    tc = cfg.train
    if minutes is not None and not minutes > 0:
        raise SkingenError(f"--minutes must be positive, got {minutes}")
    accelerator = Accelerator(mixed_precision=accelerate_precision(tc.mixed_precision), cpu=cpu)
    world, rank = accelerator.num_processes, accelerator.process_index
    dataset = ManifestDataset(data, split=tc.split)
    labels = sorted({r.get("label", "") for r in dataset.rows})  # the classes trained on: one prompt each
    to_class = [labels.index(name) if name in labels else 0 for name in dataset.labels]  # item label -> prompt row
    trainer = LoraTrainer(folder, tc, labels, accelerator.device)
    trainer.gen.manual_seed(tc.seed * 1000 + rank)
    step = trainer.restore(ckpt) if ckpt is not None else 0
    if step >= tc.steps:
        raise SkingenError(f"{run_dir} has already trained {step} steps (train.steps={tc.steps}); give a larger total")
    if run_dir is None:
        run_dir = Path(new_run_dir(outdir, FAMILY, data.name, desc)) if accelerator.is_main_process else None
        run_dir = Path(broadcast_object_list([run_dir])[0]) if world > 1 else run_dir
        if accelerator.is_main_process:
            _write_run_files(run_dir, pipeline, folder, data, cfg, trainer.kind)
    trainer.unet, trainer.optimizer = accelerator.prepare(trainer.pipe.unet, trainer.optimizer)
    dataset = InMemoryDataset(dataset)
    if len({tuple(dataset[i]["image"].shape) for i in range(len(dataset))}) > 1:
        raise SkingenError(f"{data}: the crops of split '{tc.split}' differ in size; prepare them at one size")
    say = _logger(run_dir, accelerator.is_main_process, log)
    say(f"{FAMILY} ({trainer.kind}, {folder}) on {data} ({len(dataset)} {tc.split} crops -> {trainer.size} px) | "
        f"{accelerator.device} x{world} | {tc.steps} steps of {tc.batch * world} | run {run_dir}")
    if ckpt is not None:
        say(f"resumed from {ckpt['path'].name} at step {step}")
    batches = iter(EpochBatches(len(dataset), tc.batch, tc.seed, start=step * world + rank))
    deadline = time.monotonic() + 60 * minutes if minutes is not None else None
    stats = JsonlWriter(run_dir / "stats.jsonl") if accelerator.is_main_process else None
    losses, tick_start = [], time.perf_counter()
    try:
        while step < tc.steps:
            images, classes = _next_batch(batches, dataset, world, to_class)
            with accelerator.autocast():
                losses.append(trainer.step(images, classes, accelerator.backward, accelerator.clip_grad_norm_))
            if not torch.isfinite(torch.tensor(losses[-1])):
                raise SkingenError(f"the loss became {losses[-1]} at step {step}; lower train.lr or use "
                                   f"train.mixed_precision=fp32")
            step += 1
            if progress and accelerator.is_main_process:
                progress(step, tc.steps)
            out_of_time = _out_of_time(deadline, accelerator)
            done = step >= tc.steps or out_of_time
            if done or step % tc.tick == 0:
                seconds = time.perf_counter() - tick_start
                record = {"step": step, "images": step * tc.batch * world, "loss": sum(losses) / len(losses),
                          "seconds_per_step": seconds / len(losses), "peak_memory_mb": peak_memory_mb(accelerator.device)}
                if stats:
                    stats.write(record)
                say(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()))
                losses, tick_start = [], time.perf_counter()
            if done or step % tc.snapshot == 0:
                _snapshot(accelerator, run_dir, trainer, tc, step, folder, labels)
            if out_of_time:
                break
    finally:
        if stats:
            stats.close()
    accelerator.wait_for_everyone()
    say(f"stopped after {minutes:g} minutes at step {step} of {tc.steps}; continue with --resume {run_dir}"
        if step < tc.steps else f"done: {step} steps; LoRA in {run_dir / 'pytorch_lora_weights.safetensors'}")
    accelerator.end_training()
    return run_dir


def _next_batch(batches, dataset, world: int, to_class: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """This process's crops ``[B,3,h,w]`` and class indices ``[B]`` of the next step (skipping the others')."""
    idx = next(batches)
    for _ in range(world - 1):
        next(batches)
    items = [dataset[i] for i in idx]
    return torch.stack([it["image"] for it in items]), torch.tensor([to_class[it["label"]] for it in items])


def _out_of_time(deadline: float | None, accelerator) -> bool:
    """Whether ``--minutes`` are up; under several processes every one stops at the same step."""
    if deadline is None:
        return False
    late = time.monotonic() >= deadline
    if accelerator.num_processes > 1:
        late = bool(accelerator.reduce(torch.tensor(float(late), device=accelerator.device), "max").item())
    return late


def _logger(run_dir: Path, main: bool, log: Callable[[str], None]) -> Callable[[str], None]:
    def say(line: str) -> None:
        if main:
            log(line)
            with open(run_dir / "log.txt", "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
    return say


def _snapshot(accelerator, run_dir: Path, trainer: LoraTrainer, tc: SDLoraTrainConfig, step: int, folder: Path,
              labels: list[str]) -> None:
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    unet = accelerator.unwrap_model(trainer.unet)
    config = {"family": FAMILY, "model": to_dict(trainer.model_config(folder)), "train": to_dict(tc), "step": step,
              "images_seen": step * tc.batch * accelerator.num_processes, "data_labels": labels}
    state = trainer.state(step)
    if accelerator.scaler is not None:
        state["scaler"] = accelerator.scaler.state_dict()
    save_checkpoint(run_dir / "checkpoints", step, config, {"lora": lora_state(unet)}, state, keep_last=tc.keep_last)
    save_diffusers_lora(unet, run_dir)
