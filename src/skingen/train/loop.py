"""The generic training loop, on ``accelerate``: one code path for CPU, one GPU, several GPUs and nodes.

Duration is counted in images seen (summed over processes). Every ``tick`` images: one status line,
one ``stats.jsonl`` record; every ``snapshot`` images (and at the end): a checkpoint and a sample grid
from fixed seeds. All training randomness (noise, flips, DiffAugment) comes from one generator per
process whose state is checkpointed, and the data order is a pure function of (seed, epoch), so
``resume`` continues a run exactly: N + N images resumed equals 2N images straight (on the CPU).

Multi-GPU: ``accelerate launch -m skingen.cli train ...``; each process reads ``batch`` images per step.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator

import numpy as np
import torch

from skingen.checkpoint import (intact_checkpoints, list_checkpoints, load_checkpoint, read_config, resolve_checkpoint,
                                save_checkpoint)
from skingen.config import Fraction, NonNegativeInt, PositiveInt, Range, from_dict, load_config, to_dict
from skingen.data.manifest import manifest_sha256
from skingen.errors import SkingenError
from skingen.imageio import from_tensor, write_image
from skingen.models.base import GenerativeModel, StepContext
from skingen.registry import model_class
from skingen.run_folder import RunFolder
from skingen.runs import JsonlWriter, atomic_write_text, new_run_dir, peak_memory_mb, read_jsonl, write_env_json
from skingen.seeding import numpy_rng, seed_everything
from skingen.train.ema import make_ema
from skingen.viz import contact_sheet
from skingen.workers import START_METHOD

MIXED_PRECISIONS = ("no", "fp16", "bf16")


@dataclass(frozen=True)
class GeneratorTrainConfig:
    images: PositiveInt = 200_000           #: duration in images seen (all processes together)
    batch: PositiveInt = 32                 #: images per step per process
    seed: NonNegativeInt = 0
    split: str = "train"
    flip: bool = True               #: random horizontal flips
    cache: bool = True              #: decode the data set once and keep it in memory
    workers: Annotated[int, Range(0, 64)] = 0                #: DataLoader worker processes (0 = in the main process; fine with cache)
    mixed_precision: str = "no"     #: no | fp16 | bf16 (GPU)
    ema_decay: Fraction = 0.999
    tick: PositiveInt = 2_000               #: images between status lines / stats records
    snapshot: PositiveInt = 20_000          #: images between checkpoints and sample grids
    keep_last: PositiveInt = 3              #: checkpoints kept
    grid: Annotated[int, Range(1, 256)] = 16                  #: images in the fixed-seed sample grid


def run_config_class(family: str) -> type:
    """The resolved-config dataclass of a run: ``model`` (the family's Config) + ``train``."""
    cls = model_class(family)
    return dataclasses.make_dataclass(
        f"{cls.__name__}RunConfig",
        [("model", cls.Config, field(default_factory=cls.Config)),
         ("train", GeneratorTrainConfig, field(default_factory=GeneratorTrainConfig))],
        frozen=True)


PRESETS = Path(__file__).resolve().parents[1] / "configs"


def presets() -> list[str]:
    """Names of the shipped YAML presets, e.g. ``dcgan``, ``dcgan-64``, ``tiny/dcgan``."""
    return sorted(str(p.relative_to(PRESETS).with_suffix("")) for p in PRESETS.rglob("*.yaml"))


def preset_path(name_or_path: str | Path) -> Path:
    """A YAML file path as given, or the shipped preset of that name (``tiny/cvae``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if (PRESETS / f"{name_or_path}.yaml").is_file():
        return PRESETS / f"{name_or_path}.yaml"
    raise SkingenError(f"config '{name_or_path}' is neither a file nor a preset (presets: {', '.join(presets())})")


def resolve_config(family: str, config: str | Path | None = None, overrides: list[str] | None = None,
                   init: str | Path | None = None):
    """Defaults < the ``init`` model's model config (fine-tuning) < YAML file or preset name (sections ``model:``
    and ``train:``) < ``--set`` overrides."""
    base = {"model": _init_config(init, family)["model"]} if init is not None else None
    cfg = load_config(run_config_class(family), preset_path(config) if config is not None else None, overrides, base)
    if cfg.train.mixed_precision not in MIXED_PRECISIONS:
        raise SkingenError(f"train.mixed_precision must be one of {', '.join(MIXED_PRECISIONS)}")
    if cfg.train.batch < 1 or cfg.train.images < 1 or cfg.train.tick < 1 or cfg.train.snapshot < 1:
        raise SkingenError("train.batch, train.images, train.tick and train.snapshot must be positive")
    return cfg


class EpochBatches(torch.utils.data.Sampler):
    """Endless index batches: epoch e is the permutation keyed by (seed, e), cut into full batches.

    Starts at global batch ``start``, so a resumed run reads exactly the batches it would have read.
    """

    def __init__(self, n: int, batch: int, seed: int, start: int = 0):
        if n < batch:
            raise SkingenError(f"the training split has {n} images, fewer than train.batch={batch}")
        self.n, self.batch, self.seed, self.start = n, batch, seed, start
        self.per_epoch = n // batch

    def __iter__(self) -> Iterator[list[int]]:
        b = self.start
        while True:
            epoch, i = divmod(b, self.per_epoch)
            order = numpy_rng(self.seed, "epoch", epoch).permutation(self.n)
            yield order[i * self.batch:(i + 1) * self.batch].tolist()
            b += 1

    def __len__(self) -> int:  # accelerate's sharding asks; the loop stops by images seen, not by this
        return 2**62


def _collate(items: list[dict], fields: frozenset[str] = frozenset({"image", "lesion", "coloured"})) -> dict[str, Any]:
    """A batch of the image ``fields`` a model trains on (stacking the ones it ignores costs a 256 px run dearly)."""
    out: dict[str, Any] = {"id": [it["id"] for it in items], "label": torch.tensor([it["label"] for it in items])}
    for k in ("image", "lesion", "coloured"):
        if k in items[0] and k in fields:
            out[k] = torch.stack([it[k] for it in items])
    return out


def _flip(batch: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    flip = ctx.rand(len(batch["image"])) < 0.5
    out = dict(batch)
    for k in ("image", "lesion", "coloured"):
        if k in batch:
            out[k] = torch.where(flip.view(-1, 1, 1, 1), batch[k].flip(-1), batch[k])
    return out


def _grid(model: GenerativeModel, preview: dict[str, Any], n: int) -> np.ndarray:
    """Images for seeds 0..n-1 (conditioned on the preview batch when the model needs it)."""
    cond = model.condition_from_batch(preview)
    images = model.sample(list(range(n)), cond.to(model.device) if cond is not None else None)
    return contact_sheet(list(from_tensor(images)), columns=int(np.ceil(np.sqrt(n))), cell=max(64, model.config.size))


def train(family: str, data: str | Path, cfg: Any, outdir: str | Path = "runs", desc: str = "",
          cpu: bool = False, init: str | Path | None = None, minutes: float | None = None,
          progress: Callable[[int, int], None] | None = None, log: Callable[[str], None] = lambda s: None) -> Path:
    """Train ``family`` on the prepared data folder ``data`` with the resolved ``cfg`` (see
    :func:`resolve_config`) in a new run folder under ``outdir``; returns the run folder. ``init``: start from
    that model's weights (every tensor must match ``cfg.model``'s network); ``minutes``: stop after that long
    with a final checkpoint (:func:`resume` continues)."""
    return _fit(None, family, Path(data), cfg, None, outdir, desc, cpu, progress, log, init, minutes)


def resume(run_dir: str | Path, images: int | None = None, cpu: bool = False, minutes: float | None = None,
           progress: Callable[[int, int], None] | None = None, log: Callable[[str], None] = lambda s: None) -> Path:
    """Continue ``run_dir`` from its latest checkpoint with its own config, exactly as if never stopped;
    ``images`` extends (or shortens) the total duration; ``minutes`` as in :func:`train`."""
    run_dir, family, data, cfg, ckpt = _resume_state(Path(run_dir), images)
    return _fit(run_dir, family, data, cfg, ckpt, None, "", cpu, progress, log, None, minutes)


def _init_config(init: str | Path, family: str) -> dict[str, Any]:
    """The ``config.json`` of the checkpoint a fine-tune starts from (no weights read), checked to be of ``family``."""
    from skingen.registry import model_path

    config = read_config(resolve_checkpoint(model_path(init)))
    if config.get("family") != family or "model" not in config:
        raise SkingenError(f"--init {init}: a '{config.get('family')}' checkpoint, not a '{family}' model")
    return config


def _init_checkpoint(init: str | Path, family: str) -> dict[str, Any]:
    """The checkpoint a fine-tune starts from (its weights and config), checked to be of ``family``."""
    from skingen.registry import model_path

    _init_config(init, family)
    ckpt = load_checkpoint(model_path(init), train_state=False)
    if "model" not in ckpt["weights"]:
        raise SkingenError(f"--init {init}: {ckpt['path']} holds no model.safetensors")
    return ckpt


def _load_init(model: GenerativeModel, ckpt: dict[str, Any]) -> None:
    """Every tensor of the network from ``ckpt`` (its EMA weights where saved: what it samples with)."""
    weights = ckpt["weights"]
    try:
        model.load_state_dict(weights["model"])
        if "ema" in weights:
            model.ema_module().load_state_dict(weights["ema"])
    except RuntimeError as exc:  # torch lists every missing, unexpected and mis-shaped key
        first = " ".join(str(exc).split())[:300]
        raise SkingenError(f"--init {ckpt['path']}: its weights do not fit this model config ({first})") from None


def _fit(run_dir: Path | None, family: str, data: Path, cfg: Any, ckpt: dict[str, Any] | None,
         outdir: str | Path | None, desc: str, cpu: bool, progress: Callable[[int, int], None] | None,
         log: Callable[[str], None], init: str | Path | None = None, minutes: float | None = None) -> Path:
    from accelerate import Accelerator
    from accelerate.utils import broadcast_object_list

    tc: GeneratorTrainConfig = cfg.train
    accelerator = Accelerator(mixed_precision=tc.mixed_precision, cpu=cpu)
    device, world, rank = accelerator.device, accelerator.num_processes, accelerator.process_index
    seed_everything(tc.seed + rank)  # only for code we do not control; our own noise uses `gen` below

    from skingen.data.datasets import InMemoryDataset, ManifestDataset

    label_column = getattr(cfg.model, "label_column", None)
    dataset = ManifestDataset(data, split=tc.split, size=cfg.model.size, label_column=label_column or "label")
    data_labels = sorted({r.get("label", "") for r in dataset.rows})  # the illness classes it was trained on
    if label_column and not cfg.model.labels:  # the model learns the class names from the data, in index order
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, labels=tuple(dataset.labels)))
    model: GenerativeModel = model_class(family)(cfg.model)  # a bad config fails here, before any run folder
    if minutes is not None and minutes <= 0:
        raise SkingenError(f"--minutes must be positive, got {minutes}")
    init_ckpt = _init_checkpoint(init, family) if init is not None else None
    if init_ckpt is not None:
        _load_init(model, init_ckpt)  # before the EMA copy is made, so the average starts from these weights
    if run_dir is None:
        run_dir = Path(new_run_dir(outdir, family, data.name, desc)) if accelerator.is_main_process else None
        run_dir = Path(broadcast_object_list([run_dir])[0]) if world > 1 else run_dir
        if accelerator.is_main_process:
            _write_run_files(run_dir, family, data, cfg, init_ckpt)
    log_file = run_dir / "log.txt"

    def say(line: str) -> None:
        if accelerator.is_main_process:
            log(line)
            with open(log_file, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    model.to(device)
    optimizers = model.make_optimizers()
    gen = torch.Generator(device=device).manual_seed(tc.seed * 1000 + rank) if device.type == "cuda" \
        else torch.Generator().manual_seed(tc.seed * 1000 + rank)
    ema = make_ema(model.ema_module(), tc.ema_decay)
    images_seen, step = 0, 0
    if ckpt is not None:
        images_seen, step = _restore(ckpt, model, optimizers, ema, gen)
        if images_seen >= tc.images:
            raise SkingenError(f"{run_dir} has already seen {images_seen} images (train.images={tc.images}); "
                               f"give a larger total to continue")
        say(f"resumed from {ckpt['path'].name} at {images_seen} images")

    for name, net in model.networks().items():
        model.use_wrapped(name, accelerator.prepare(net))
    names = list(optimizers)
    prepared = accelerator.prepare(*[optimizers[k] for k in names])
    optimizers = dict(zip(names, prepared if len(names) > 1 else [prepared]))

    if tc.cache:
        dataset = InMemoryDataset(dataset)
    collate = partial(_collate, fields=model.batch_fields)
    preview = collate([dataset[i] for i in range(min(tc.grid, len(dataset)))])
    preview = {k: v.to(device) if torch.is_tensor(v) else v for k, v in preview.items()}
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=EpochBatches(len(dataset), tc.batch, tc.seed, start=step * world),
        num_workers=tc.workers, collate_fn=collate, generator=torch.Generator().manual_seed(tc.seed),
        multiprocessing_context=START_METHOD if tc.workers > 0 else None,  # never fork a torch process (workers.py)
        # page-locked batches let the host-to-GPU copy overlap compute; workers kept alive between epochs
        pin_memory=device.type == "cuda", persistent_workers=tc.workers > 0)
    loader = accelerator.prepare(loader)
    if accelerator.is_main_process and ckpt is None:
        write_image(run_dir / "samples" / "reals.png",
                    contact_sheet(list(from_tensor(preview["image"])), columns=int(np.ceil(np.sqrt(tc.grid))),
                                  cell=max(64, cfg.model.size)))

    per_step = tc.batch * world
    say(f"{family} on {data} ({len(dataset)} {tc.split} images, {cfg.model.size} px) | {device} x{world} | "
        f"{tc.images} images in steps of {per_step} | run {run_dir}")
    stats_file = JsonlWriter(run_dir / "stats.jsonl") if accelerator.is_main_process else None
    sums: dict[str, float] = {}
    count, tick_start, tick_images = 0, time.perf_counter(), images_seen
    batches = iter(loader)
    deadline = time.monotonic() + 60 * minutes if minutes is not None else None
    try:
        while images_seen < tc.images:
            batch = next(batches)
            ctx = StepContext(optimizers=optimizers, backward=accelerator.backward, generator=gen, step=step,
                              device=device)
            if tc.flip:
                batch = _flip(batch, ctx)
            model.train()
            with accelerator.autocast():
                losses = model.train_step(batch, ctx)
            ema.update_parameters(model.ema_module())
            for k, v in losses.items():
                if not np.isfinite(v):
                    raise SkingenError(f"{k} became {v} at step {step}; lower the learning rate or try "
                                       f"train.mixed_precision=no")
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            step += 1
            before, images_seen = images_seen, images_seen + per_step
            if progress and accelerator.is_main_process:
                progress(min(images_seen, tc.images), tc.images)
            out_of_time = deadline is not None and time.monotonic() >= deadline
            if deadline is not None and world > 1:  # every process stops at the same step
                out_of_time = bool(accelerator.reduce(torch.tensor(float(out_of_time), device=device), "max").item())
            done = images_seen >= tc.images or out_of_time
            if done or images_seen // tc.tick > before // tc.tick:
                seconds = time.perf_counter() - tick_start
                record = {"images": images_seen, "step": step, "images_per_s": (images_seen - tick_images) / seconds,
                          "peak_memory_mb": peak_memory_mb(device), **{k: v / count for k, v in sums.items()}}
                if stats_file:
                    stats_file.write(record)
                say(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()))
                sums, count, tick_start, tick_images = {}, 0, time.perf_counter(), images_seen
            if done or images_seen // tc.snapshot > before // tc.snapshot:
                _snapshot(accelerator, run_dir, model, ema, optimizers, gen, cfg, family, images_seen, step, preview,
                          data_labels)
            if out_of_time:
                break
    finally:
        if stats_file:
            stats_file.close()
    accelerator.wait_for_everyone()
    if images_seen < tc.images:
        say(f"stopped after {minutes:g} minutes at {images_seen} of {tc.images} images; continue with --resume {run_dir}")
    else:
        say(f"done: {images_seen} images, {step} steps")
    accelerator.end_training()
    return run_dir


def _write_run_files(run_dir: Path, family: str, data: Path, cfg: Any, init: dict[str, Any] | None = None) -> None:
    import yaml

    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(
        {"family": family, "data": str(data.resolve()), **to_dict(cfg)}, sort_keys=False))
    started = {}
    if init is not None:
        from skingen.runs import file_sha256

        started = {"init": str(init["path"].resolve()), "init_sha256": file_sha256(init["path"] / "model.safetensors")}
    write_env_json(run_dir, data=str(data.resolve()), data_manifest_sha256=manifest_sha256(data), **started)


def _snapshot(accelerator, run_dir: Path, model: GenerativeModel, ema, optimizers, gen: torch.Generator, cfg: Any,
              family: str, images_seen: int, step: int, preview: dict[str, Any], data_labels: list[str]) -> None:
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    config = {"family": family, "model": to_dict(cfg.model), "train": to_dict(cfg.train),
              "images_seen": images_seen, "step": step, "data_labels": data_labels}
    train_state = {"images_seen": images_seen, "step": step, "generator": gen.get_state(),
                   "ema_n_averaged": int(ema.n_averaged), "optimizers": {k: o.state_dict() for k, o in optimizers.items()}}
    if accelerator.scaler is not None:
        train_state["scaler"] = accelerator.scaler.state_dict()
    save_checkpoint(run_dir / "checkpoints", step, config,
                    {"model": model.state_dict(), "ema": ema.module.state_dict()}, train_state, keep_last=cfg.train.keep_last)
    # the grid comes from the EMA weights: swap them in, sample, swap back
    trained = {k: v.clone() for k, v in model.ema_module().state_dict().items()}
    model.ema_module().load_state_dict(ema.module.state_dict())
    model.eval()
    write_image(run_dir / "samples" / f"{images_seen:09d}.png", _grid(model, preview, cfg.train.grid))
    model.ema_module().load_state_dict(trained)


def _resume_state(run_dir: Path, images: int | None):
    """(run_dir, family, data, cfg, checkpoint) of a run to continue."""
    import json

    saved = RunFolder(run_dir).config()
    if not list_checkpoints(run_dir / "checkpoints"):
        raise SkingenError(f"{run_dir} has no checkpoint to resume from")
    family, data = saved.pop("family"), Path(saved.pop("data"))
    cfg = from_dict(run_config_class(family), saved)
    if images is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, images=images))
    try:
        ckpt = load_checkpoint(run_dir)
    except SkingenError as exc:
        raise SkingenError(f"{exc}; {_intact_hint(run_dir)}") from None
    # forget records written after that checkpoint (an interrupted tick), so stats stay one timeline
    stats = run_dir / "stats.jsonl"
    if stats.is_file():
        kept = [r for r in read_jsonl(stats) if r.get("images", 0) <= ckpt["train_state"]["images_seen"]]
        atomic_write_text(stats, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
    return run_dir, family, data, cfg, ckpt


def _intact_hint(run_dir: Path) -> str:
    """Which earlier checkpoint would resume, by name (the damaged latest one must go first)."""
    root = run_dir / "checkpoints"
    latest = resolve_checkpoint(root)
    intact = [c for c in intact_checkpoints(root) if c != latest]
    if not intact:
        return "no intact checkpoint is left to resume from"
    return (f"the previous intact checkpoint is {intact[-1].name}: move {latest.name} out of {root} to resume "
            f"from {intact[-1].name}")


def _restore(ckpt: dict[str, Any], model: GenerativeModel, optimizers, ema, gen: torch.Generator) -> tuple[int, int]:
    state = ckpt["train_state"]
    model.load_state_dict(ckpt["weights"]["model"])
    ema.module.load_state_dict(ckpt["weights"]["ema"])
    ema.n_averaged.fill_(state["ema_n_averaged"])
    for k, opt in optimizers.items():
        opt.load_state_dict(state["optimizers"][k])
    gen.set_state(state["generator"].to(torch.uint8).cpu())
    return int(state["images_seen"]), int(state["step"])
