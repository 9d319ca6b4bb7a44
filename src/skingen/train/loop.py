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

#: as ``sample --precision`` (:data:`skingen.generation.job.AUTOCAST_DTYPES`); "no" is the old spelling of fp32, kept
#: for one release (run folders made before say it)
MIXED_PRECISIONS = ("fp32", "bf16", "fp16")
OLD_FP32 = "no"


def accelerate_precision(precision: str) -> str:
    """``train.mixed_precision`` as accelerate spells it (its "no" is our fp32)."""
    return "no" if precision in ("fp32", OLD_FP32) else precision


def set_precision(config) -> None:
    """A training config's ``mixed_precision`` in the one spelling (the old "no" read as fp32), checked; for the
    ``__post_init__`` of every trainer's frozen config."""
    if config.mixed_precision == OLD_FP32:
        object.__setattr__(config, "mixed_precision", "fp32")
    if config.mixed_precision not in MIXED_PRECISIONS:
        raise SkingenError(f"train.mixed_precision must be one of {', '.join(MIXED_PRECISIONS)}, "
                           f"got {config.mixed_precision!r}")


@dataclass(frozen=True)
class GeneratorTrainConfig:
    images: PositiveInt = 200_000           #: duration in images seen (all processes together)
    batch: PositiveInt = 32                 #: images per step per process
    seed: NonNegativeInt = 0
    split: str = "train"
    flip: bool = True               #: random horizontal flips
    cache: bool = True              #: decode the data set once and keep it in memory
    workers: Annotated[int, Range(0, 64)] = 0                #: DataLoader worker processes (0 = in the main process; fine with cache)
    mixed_precision: str = "fp32"   #: fp32 | bf16 | fp16 (GPU), as ``sample --precision``
    ema_decay: Fraction = 0.999
    tick: PositiveInt = 2_000               #: images between status lines / stats records
    snapshot: PositiveInt = 20_000          #: images between checkpoints and sample grids
    keep_last: PositiveInt = 3              #: checkpoints kept
    grid: Annotated[int, Range(1, 256)] = 16                  #: images in the fixed-seed sample grid

    def __post_init__(self) -> None:
        set_precision(self)


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


@dataclass
class _Session:
    """One process's training run, shared by :func:`_fit`'s named steps."""

    accelerator: Any
    family: str
    data: Path
    cfg: Any                                #: the resolved run config (``model`` + ``train``)
    model: GenerativeModel
    dataset: Any
    data_labels: list[str]                  #: the illness classes it is trained on
    run_dir: Path
    log: Callable[[str], None]
    optimizers: dict[str, Any] = field(default_factory=dict)
    ema: Any = None
    gen: torch.Generator | None = None      #: all training randomness (checkpointed)
    images_seen: int = 0
    step: int = 0

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def say(self, line: str) -> None:
        """A status line to the console and the run's ``log.txt`` (main process only)."""
        if self.accelerator.is_main_process:
            self.log(line)
            with open(self.run_dir / "log.txt", "a", encoding="utf-8") as fh:
                fh.write(line + "\n")


def _fit(run_dir: Path | None, family: str, data: Path, cfg: Any, ckpt: dict[str, Any] | None,
         outdir: str | Path | None, desc: str, cpu: bool, progress: Callable[[int, int], None] | None,
         log: Callable[[str], None], init: str | Path | None = None, minutes: float | None = None) -> Path:
    """Train (``ckpt`` None: a new run under ``outdir``) or continue ``run_dir`` from ``ckpt``: the named steps."""
    from accelerate import Accelerator

    if minutes is not None and minutes <= 0:
        raise SkingenError(f"--minutes must be positive, got {minutes}")
    tc: GeneratorTrainConfig = cfg.train
    accelerator = Accelerator(mixed_precision=accelerate_precision(tc.mixed_precision), cpu=cpu)
    seed_everything(tc.seed + accelerator.process_index)  # only for code we do not control; ours uses `gen`
    s = _open(accelerator, run_dir, family, data, cfg, outdir, desc, init, log)
    _restore_or_start(s, ckpt)
    loader, preview = _loader(s, first=ckpt is None)
    _train_until_done(s, loader, preview, progress, minutes)
    accelerator.wait_for_everyone()
    if s.images_seen < tc.images:
        s.say(f"stopped after {minutes:g} minutes at {s.images_seen} of {tc.images} images; "
              f"continue with --resume {s.run_dir}")
    else:
        s.say(f"done: {s.images_seen} images, {s.step} steps")
    accelerator.end_training()
    return s.run_dir


def _open(accelerator, run_dir: Path | None, family: str, data: Path, cfg: Any, outdir: str | Path | None, desc: str,
          init: str | Path | None, log: Callable[[str], None]) -> _Session:
    """The data set and the model (from ``init``'s weights), and the run folder (a new one unless ``run_dir``)."""
    from accelerate.utils import broadcast_object_list

    from skingen.data.datasets import ManifestDataset

    label_column = getattr(cfg.model, "label_column", None)
    dataset = ManifestDataset(data, split=cfg.train.split, size=cfg.model.size, label_column=label_column or "label")
    data_labels = sorted({r.get("label", "") for r in dataset.rows})
    if label_column and not cfg.model.labels:  # the model learns the class names from the data, in index order
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, labels=tuple(dataset.labels)))
    model: GenerativeModel = model_class(family)(cfg.model)  # a bad config fails here, before any run folder
    init_ckpt = _init_checkpoint(init, family) if init is not None else None
    if init_ckpt is not None:
        _load_init(model, init_ckpt)  # before the EMA copy is made, so the average starts from these weights
    if run_dir is None:
        run_dir = Path(new_run_dir(outdir, family, data.name, desc)) if accelerator.is_main_process else None
        run_dir = Path(broadcast_object_list([run_dir])[0]) if accelerator.num_processes > 1 else run_dir
        if accelerator.is_main_process:
            _write_run_files(run_dir, family, data, cfg, init_ckpt)
    return _Session(accelerator, family, data, cfg, model, dataset, data_labels, run_dir, log)


def _restore_or_start(s: _Session, ckpt: dict[str, Any] | None) -> None:
    """Optimizers, the EMA copy and the generator, restored from ``ckpt`` when continuing; then wrapped by
    ``accelerate`` (DDP, mixed precision)."""
    tc, rank = s.cfg.train, s.accelerator.process_index
    s.model.to(s.device)
    optimizers = s.model.make_optimizers()
    s.gen = torch.Generator(device=s.device).manual_seed(tc.seed * 1000 + rank) if s.device.type == "cuda" \
        else torch.Generator().manual_seed(tc.seed * 1000 + rank)
    s.ema = make_ema(s.model.ema_module(), tc.ema_decay)
    if ckpt is not None:
        s.images_seen, s.step = _restore(ckpt, s.model, optimizers, s.ema, s.gen)
        if s.images_seen >= tc.images:
            raise SkingenError(f"{s.run_dir} has already seen {s.images_seen} images (train.images={tc.images}); "
                               f"give a larger total to continue")
        s.say(f"resumed from {ckpt['path'].name} at {s.images_seen} images")
    for name, net in s.model.networks().items():
        s.model.use_wrapped(name, s.accelerator.prepare(net))
    names = list(optimizers)
    prepared = s.accelerator.prepare(*[optimizers[k] for k in names])
    s.optimizers = dict(zip(names, prepared if len(names) > 1 else [prepared]))


def _loader(s: _Session, first: bool):
    """The batches from ``s.step`` on (a pure function of seed and epoch), and the fixed preview batch of the
    sample grids (``first``: its real images are saved as ``samples/reals.png``)."""
    from skingen.data.datasets import InMemoryDataset

    tc, world = s.cfg.train, s.accelerator.num_processes
    if tc.cache:
        s.dataset = InMemoryDataset(s.dataset)
    collate = partial(_collate, fields=s.model.batch_fields)
    preview = collate([s.dataset[i] for i in range(min(tc.grid, len(s.dataset)))])
    preview = {k: v.to(s.device) if torch.is_tensor(v) else v for k, v in preview.items()}
    loader = torch.utils.data.DataLoader(
        s.dataset, batch_sampler=EpochBatches(len(s.dataset), tc.batch, tc.seed, start=s.step * world),
        num_workers=tc.workers, collate_fn=collate, generator=torch.Generator().manual_seed(tc.seed),
        multiprocessing_context=START_METHOD if tc.workers > 0 else None,  # never fork a torch process (workers.py)
        # page-locked batches let the host-to-GPU copy overlap compute; workers kept alive between epochs
        pin_memory=s.device.type == "cuda", persistent_workers=tc.workers > 0)
    loader = s.accelerator.prepare(loader)
    if s.accelerator.is_main_process and first:
        write_image(s.run_dir / "samples" / "reals.png",
                    contact_sheet(list(from_tensor(preview["image"])), columns=int(np.ceil(np.sqrt(tc.grid))),
                                  cell=max(64, s.cfg.model.size)))
    return loader, preview


def _train_until_done(s: _Session, loader, preview: dict[str, Any], progress: Callable[[int, int], None] | None,
                      minutes: float | None) -> None:
    """Steps until ``train.images`` are seen or ``minutes`` have passed: a status line and ``stats.jsonl`` record
    every ``tick`` images, a checkpoint and sample grid every ``snapshot`` images and at the end."""
    tc, world = s.cfg.train, s.accelerator.num_processes
    per_step = tc.batch * world
    s.say(f"{s.family} on {s.data} ({len(s.dataset)} {tc.split} images, {s.cfg.model.size} px) | {s.device} x{world} "
          f"| {tc.images} images in steps of {per_step} | run {s.run_dir}")
    stats_file = JsonlWriter(s.run_dir / "stats.jsonl") if s.accelerator.is_main_process else None
    ticker = _Ticker(s.images_seen)
    batches = iter(loader)
    deadline = time.monotonic() + 60 * minutes if minutes is not None else None
    try:
        while s.images_seen < tc.images:
            ticker.add(_train_step(s, next(batches)))
            before, s.images_seen = s.images_seen, s.images_seen + per_step
            if progress and s.accelerator.is_main_process:
                progress(min(s.images_seen, tc.images), tc.images)
            out_of_time = _out_of_time(s, deadline)
            done = s.images_seen >= tc.images or out_of_time
            if done or s.images_seen // tc.tick > before // tc.tick:
                record = ticker.record(s)
                if stats_file:
                    stats_file.write(record)
                s.say(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()))
            if done or s.images_seen // tc.snapshot > before // tc.snapshot:
                _snapshot(s, preview)
            if out_of_time:
                break
    finally:
        if stats_file:
            stats_file.close()


def _train_step(s: _Session, batch: dict[str, Any]) -> dict[str, float]:
    """One optimisation step of the model on ``batch``, the EMA update; its losses (refused when not finite)."""
    ctx = StepContext(optimizers=s.optimizers, backward=s.accelerator.backward, generator=s.gen, step=s.step,
                      device=s.device)
    if s.cfg.train.flip:
        batch = _flip(batch, ctx)
    s.model.train()
    with s.accelerator.autocast():
        losses = s.model.train_step(batch, ctx)
    s.ema.update_parameters(s.model.ema_module())
    for k, v in losses.items():
        if not np.isfinite(v):
            raise SkingenError(f"{k} became {v} at step {s.step}; lower the learning rate or try "
                               f"train.mixed_precision=fp32")
    s.step += 1
    return losses


def _out_of_time(s: _Session, deadline: float | None) -> bool:
    """Whether ``--minutes`` have passed; under several processes, whether they have for any (all stop together)."""
    out_of_time = deadline is not None and time.monotonic() >= deadline
    if deadline is not None and s.accelerator.num_processes > 1:
        out_of_time = bool(s.accelerator.reduce(torch.tensor(float(out_of_time), device=s.device), "max").item())
    return out_of_time


class _Ticker:
    """The running mean of each loss and the images per second since the last status line."""

    def __init__(self, images_seen: int):
        self.sums: dict[str, float] = {}
        self.count, self.start, self.images = 0, time.perf_counter(), images_seen

    def add(self, losses: dict[str, float]) -> None:
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1

    def record(self, s: _Session) -> dict[str, Any]:
        """The ``stats.jsonl`` record of the tick that ends now; starts the next."""
        seconds = time.perf_counter() - self.start
        record = {"images": s.images_seen, "step": s.step, "images_per_s": (s.images_seen - self.images) / seconds,
                  "peak_memory_mb": peak_memory_mb(s.device), **{k: v / self.count for k, v in self.sums.items()}}
        self.sums, self.count, self.start, self.images = {}, 0, time.perf_counter(), s.images_seen
        return record


def _write_run_files(run_dir: Path, family: str, data: Path, cfg: Any, init: dict[str, Any] | None = None) -> None:
    import yaml

    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(
        {"family": family, "data": str(data.resolve()), **to_dict(cfg)}, sort_keys=False))
    started = {}
    if init is not None:
        from skingen.runs import file_sha256

        started = {"init": str(init["path"].resolve()), "init_sha256": file_sha256(init["path"] / "model.safetensors")}
    write_env_json(run_dir, data=str(data.resolve()), data_manifest_sha256=manifest_sha256(data), **started)


def _snapshot(s: _Session, preview: dict[str, Any]) -> None:
    """A checkpoint (weights, EMA, optimizers, generator) and the sample grid of the EMA weights on ``preview``."""
    s.accelerator.wait_for_everyone()
    if not s.accelerator.is_main_process:
        return
    cfg, model, ema = s.cfg, s.model, s.ema
    config = {"family": s.family, "model": to_dict(cfg.model), "train": to_dict(cfg.train),
              "images_seen": s.images_seen, "step": s.step, "data_labels": s.data_labels}
    train_state = {"images_seen": s.images_seen, "step": s.step, "generator": s.gen.get_state(),
                   "ema_n_averaged": int(ema.n_averaged),
                   "optimizers": {k: o.state_dict() for k, o in s.optimizers.items()}}
    if s.accelerator.scaler is not None:
        train_state["scaler"] = s.accelerator.scaler.state_dict()
    save_checkpoint(s.run_dir / "checkpoints", s.step, config,
                    {"model": model.state_dict(), "ema": ema.module.state_dict()}, train_state,
                    keep_last=cfg.train.keep_last)
    # the grid comes from the EMA weights: swap them in, sample, swap back
    trained = {k: v.clone() for k, v in model.ema_module().state_dict().items()}
    model.ema_module().load_state_dict(ema.module.state_dict())
    model.eval()
    write_image(s.run_dir / "samples" / f"{s.images_seen:09d}.png", _grid(model, preview, cfg.train.grid))
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
