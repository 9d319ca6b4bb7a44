"""``skingen sample``: images from a trained run, named by seed, with a synthetic manifest.

Each image depends only on (checkpoint, seed, condition), so ``--seeds 0-99`` in one go or in two
halves gives identical files. With ``source`` (a data folder, optionally ``DATA:split``) the model
varies real crops: seed ``s`` varies the crop number ``s mod len(split)``, recorded as ``parent_id``.
Mask-conditioned models (``dermgan``, ``dermdiff``) paint from a coloured mask and a lesion mask: with
``masks`` (``DATA[:split]``) seed ``s`` takes the masks of crop ``s mod len(split)`` (recorded as
``parent_id``; default: the train split of the data the run was trained on), with ``layouts``
(:class:`~skingen.data.layouts.LayoutParams`) seed ``s`` gets the synthesised layout of seed ``s``. The
condition is saved next to each image (``coloured/``, ``lesion/``, as in a prepared data folder) and the
manifest records it (``coloured``, ``lesion``, ``lesion_fraction``, ``condition`` = data | layout and
``condition_ita``, the healthy-skin ITA of the coloured mask), so the output is itself a data folder.
The seconds per image are measured around the model only (not file writing) and saved. A set whose images
are all one flat colour, or all identical, is a warning (``warnings`` in ``sample.json``, and the console), and so are
layouts that ask for skin tones well beyond those of the run's training masks (:func:`layout_tone_warnings`).
Several processes (``torchrun``/``accelerate launch``) or ``shard="K/N"`` split the seeds in one-process
batches (:mod:`skingen.generation.parallel`), so their files are byte-identical to a one-process run's.
``precision="bf16"`` runs the networks under autocast (2.2x faster batched at 256 px on a 2-core CPU with
AVX-512 BF16, bench/models.py; GPUs unmeasured); images then differ slightly from fp32 ones, so the
precision is recorded with them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from skingen.config import Fraction, NonNegative, PositiveInt, to_dict
from skingen.data.imagesets import parse_data_spec
from skingen.data.layouts import LayoutParams, make_layout, tone_range_warning
from skingen.data.manifest import read_manifest
from skingen.data.skintone import coloured_mask_ita
from skingen.errors import SkingenError
from skingen.generation.job import GenerationJob, source_dataset
from skingen.generation.speed import speed_up
from skingen.imageio import from_tensor, read_image, read_mask, to_tensor, write_image, write_mask
from skingen.models.base import Condition
from skingen.registry import load_model
from skingen.run_folder import RunFolder
from skingen.sample_checks import ConstantSetCheck
from skingen.seeding import format_seeds


@dataclass(frozen=True)
class SampleConfig:
    """How ``skingen sample`` makes its images (its options; the run, the output folder and the seeds are the
    job itself). None = the model's own default."""

    batch: PositiveInt = 16                     #: images per model call
    source: str | None = None           #: ``--from``: vary the crops of DATA[:split] instead of sampling from scratch
    strength: Fraction | None = None       #: with ``source``: how far to move from the real crop
    label: str | None = None            #: class of label-conditional models; None = the classes in turn by seed
    masks: str | None = None            #: mask-conditioned models: masks of DATA[:split] (None: the run's train split)
    layouts: LayoutParams | None = None  #: mask-conditioned models: synthesised layouts instead of masks
    guidance: NonNegative | None = None       #: classifier-free guidance scale (dermdiff)
    solver_steps: PositiveInt | None = None     #: solver steps of diffusion models
    ema: bool = True                    #: the weights' moving average (False: the trained weights)
    precision: str = "fp32"             #: fp32 | bf16 | fp16 (GPU), :func:`~skingen.generation.job.autocast_for`
    shard: str | None = None            #: ``K/N``: only job K of N (:mod:`skingen.generation.parallel`)
    channels_last: bool = False         #: :func:`~skingen.generation.speed.speed_up`
    compile: bool | str = False         #: :func:`~skingen.generation.speed.speed_up`

    def model_options(self) -> dict[str, Any]:
        """The model's own sampling options that were given (``Model.sample(**options)``)."""
        given = {"guidance": self.guidance, "solver_steps": self.solver_steps, "strength": self.strength}
        return {k: v for k, v in given.items() if v is not None}


@dataclass
class SampleReport:
    out: Path
    n: int
    batch: int
    device: str
    checkpoint: str
    seconds_model: float      #: time inside ``model.sample`` (synchronised on GPUs)
    seconds_total: float      #: including reading sources and writing files
    warnings: list[str] = field(default_factory=list)  #: e.g. a constant sample set (sample_checks)
    processes: int = 1        #: processes that shared the work (seconds_model is their sum)
    idle: str = ""            #: why this shard has no work (parallel.idle_shard_note), when it has none

    @property
    def seconds_per_image(self) -> float:
        return self.seconds_model / self.n if self.n else float("nan")

    def summary(self, precision: str) -> str:
        """The console's one line about a finished ``sample``."""
        if self.idle:
            return f"{self.idle}: {self.out}"
        return (f"wrote {self.n} images to {self.out}: {self.seconds_per_image:.4f} s/image (batch {self.batch}, "
                f"{self.device}, {precision}, {self.processes} process(es); model time only), "
                f"{self.seconds_total:.1f} s in all")


def sample_to_folder(run: str | Path, out: str | Path, seeds: list[int], cfg: SampleConfig = SampleConfig(),
                     device: str = "cpu", progress: Callable[[int, int], None] | None = None) -> SampleReport:
    """Write ``seed{NNNNNN}.png`` for each seed, ``manifest.csv`` (origin=synthetic) and ``sample.json`` to ``out``
    with the model at ``run``, as ``cfg`` says. ``cfg.shard`` (``"K/N"``): only that slice of the seeds (merge
    the shards' folders with ``skingen merge``). Under ``torchrun``/``accelerate launch`` every process calls
    this and takes its share of the batches (:class:`~skingen.generation.job.GenerationJob`)."""
    t0 = time.perf_counter()
    job = GenerationJob(out, "samples", cfg.batch, cfg.shard, device, cfg.precision, progress)
    model, ckpt = load_model(run, ema=cfg.ema, device=job.procs.device)
    speed_up(model, channels_last=cfg.channels_last, compile=cfg.compile)
    inputs = _Inputs.of(model, ckpt, cfg)
    rows, seconds, constant = [], 0.0, ConstantSetCheck()
    with job.staged(seeds) as staging:
        for chunk in job.batches():
            cond, parents = inputs.condition(chunk)
            t = time.perf_counter()
            with job.autocast:
                images = model.sample(chunk, cond, **inputs.options).float()
            if images.device.type == "cuda":
                torch.cuda.synchronize(images.device)
            seconds += time.perf_counter() - t
            pictures = from_tensor(images)
            constant.update(pictures)
            labels = cond.labels if cond is not None else None
            for i, (s, img) in enumerate(zip(chunk, pictures)):
                rows.append(inputs.write(staging, s, img, parents[i] if parents else None,
                                         None if labels is None else int(labels[i])))
        rows = job.gather_rows(rows)
        seconds = sum(job.gather(seconds))
        constant = ConstantSetCheck.combined(job.gather(constant))
        report = SampleReport(Path(out), job.total, cfg.batch, device, inputs.checkpoint, seconds, 0.0,
                              inputs.warnings + constant.warnings(), job.procs.world, job.idle_note())
        if not job.is_main:  # rank 0 writes the manifest and summary; the others wait for the rename
            return report
        report.seconds_total = time.perf_counter() - t0
        options = inputs.options
        job.write(staging, rows, report.seconds_per_image, "sample.json", {
            "model": inputs.family, "checkpoint": report.checkpoint, "ema": cfg.ema, "n": report.n,
            "batch": cfg.batch, "device": device, "seconds_model": seconds, "seconds_total": report.seconds_total,
            "seconds_per_image": report.seconds_per_image, "source": str(cfg.source) if cfg.source else None,
            "strength": cfg.strength, "label": cfg.label, "precision": cfg.precision, "options": options,
            "masks": str(cfg.masks) if cfg.masks else None, "layouts": to_dict(cfg.layouts) if cfg.layouts else None,
            "warnings": report.warnings, "seeds": format_seeds(seeds), **job.sharding(),
            "channels_last": cfg.channels_last, "compile": cfg.compile}, "sample", {
            "masks": cfg.masks or (inputs.conditions is not None and not cfg.layouts and "the run's training data")
            or None, "layouts": to_dict(cfg.layouts) if cfg.layouts else None, "varied crops of (--from)": cfg.source,
            "strength": cfg.strength, "label": cfg.label, "sampling options": options, "precision": cfg.precision,
            "warnings": report.warnings})
    return report


@dataclass
class _Inputs:
    """What a sampling run feeds the model besides seeds, checked against the model before any image is made:
    its options, the real crops it varies (``--from``), the masks it paints from, its labels."""

    family: str
    checkpoint: str
    options: dict[str, Any]
    parents: Any                                    #: ManifestDataset of ``--from``, or None
    conditions: Callable[[int], dict] | None        #: :func:`mask_conditions`
    labels: list[str]
    label: str | None                               #: ``--label``, or None: the classes in turn by seed
    default_label: str                              #: the label of an unconditional model trained on one class
    manifest_fields: Callable[[str], dict[str, str]]  #: the model's own manifest columns for a label (sd-lora: prompts)
    warnings: list[str]                             #: about the inputs, e.g. :func:`layout_tone_warnings`

    @classmethod
    def of(cls, model, ckpt: dict, cfg: SampleConfig) -> "_Inputs":
        family, model_cfg = ckpt["config"]["family"], model.config
        options = cfg.model_options()
        recorded = ckpt["config"].get("run_params")
        if recorded and cfg.source is not None and "params" in model.sample_options:
            # varying real crops with an inpainting model: its recorded settings (registry.export_checkpoint)
            options = {"params": dict(recorded), **options}
        conditions = mask_conditions(model, ckpt, cfg.masks, cfg.layouts)
        if cfg.source is not None and "source" not in model.supports:
            raise SkingenError(f"model '{family}' cannot vary real images (--from); it takes: "
                               f"{', '.join(sorted(model.supports)) or 'no condition'}")
        parents = source_dataset(cfg.source, model_cfg.size) if cfg.source is not None else None
        if parents is None and cfg.strength is not None:
            raise SkingenError("--strength only applies when varying real images (--from DATA)")
        labels = list(getattr(model_cfg, "labels", ()))
        # an unconditional model trained on one class (e.g. all "exanthem") makes images of that class
        data_labels = ckpt["config"].get("data_labels", [])
        default_label = data_labels[0] if not labels and len(data_labels) == 1 else ""
        if cfg.label is not None and cfg.label not in labels:
            raise SkingenError(f"label '{cfg.label}' unknown to this model (labels: {', '.join(labels) or 'none'})")
        return cls(family, str(ckpt["path"].resolve()), options, parents, conditions, labels, cfg.label,
                   default_label, model.manifest_fields, layout_tone_warnings(ckpt, cfg.layouts))

    def condition(self, chunk: list[int]) -> tuple[Condition | None, list[dict] | None]:
        """The model's condition for the seeds of ``chunk``, and the crop (or masks) each seed varies."""
        fields, items = {}, None
        if self.labels:  # a given label, or the classes in turn by seed
            fields["labels"] = torch.tensor([self.labels.index(self.label) if self.label else s % len(self.labels)
                                             for s in chunk])
        if self.parents is not None:
            items = [_parent(self.parents, s) for s in chunk]
            fields["source"] = torch.stack([it["image"] for it in items])
        if self.conditions is not None:
            items = [self.conditions(s) for s in chunk]
            fields["coloured"] = torch.stack([to_tensor(it["coloured"]) for it in items])
            fields["lesion"] = torch.stack([torch.from_numpy(it["lesion"]).float()[None] for it in items])
        return (Condition(**fields) if fields else None), items

    def write(self, staging: Path, seed: int, image: np.ndarray, parent: dict | None, label: int | None) -> dict:
        """Write the image of ``seed`` (and its condition) to ``staging``; its manifest row."""
        name = f"seed{seed:06d}.png"
        write_image(staging / name, image)
        row = {"id": f"{self.family}-seed{seed:06d}", "image": name,
               "label": self.labels[label] if label is not None else self.default_label,
               # a variation of a real crop (or a painting of its masks) belongs to that crop's photo:
               # splits stay grouped and augment can refuse children of test images
               "source_id": (parent or {}).get("source_id") or f"{self.family}-seed{seed:06d}",
               "split": "train", "origin": "synthetic", "model": self.family, "checkpoint": self.checkpoint,
               "seed": seed, "parent_id": (parent or {}).get("id", "")}
        if self.conditions is not None:
            row.update(_save_condition(staging, name, parent))
        row.update(self.manifest_fields(row["label"]))
        return row


def _parent(ds, seed: int) -> dict:
    i = seed % len(ds)
    return {**ds[i], "source_id": ds.rows[i].get("source_id", "")}


def mask_conditions(model, ckpt: dict, masks: str | Path | None, layouts: LayoutParams | None
                    ) -> Callable[[int], dict] | None:
    """seed -> condition item (``coloured`` uint8 ``[H,W,3]``, ``lesion`` bool ``[H,W]``, ``id``, ``source_id``,
    ``condition``), or None for models that take no masks."""
    family, size = ckpt["config"]["family"], model.config.size
    if masks is not None and layouts is not None:
        raise SkingenError("give either --masks DATA or --layouts, not both")
    takes_masks = "coloured" in model.supports
    if not takes_masks:
        if masks is not None or layouts is not None:
            raise SkingenError(f"model '{family}' does not paint from masks (--masks/--layouts); it takes: "
                               f"{', '.join(sorted(model.supports)) or 'no condition'}")
        return None
    if layouts is not None:
        def layout(seed: int) -> dict:
            lay = make_layout(seed, size, layouts)
            return {"coloured": lay.coloured, "lesion": lay.lesion, "condition": "layout", "id": "", "source_id": ""}
        return layout
    if masks is None:
        masks = training_data(ckpt)
    ds = source_dataset(masks, size)
    if not ds.rows[0].get("coloured"):
        raise SkingenError(f"{parse_data_spec(str(masks))[0]} has no coloured masks: prepare it with --masks DIR or --auto-mask")

    def from_data(seed: int) -> dict:
        item = _parent(ds, seed)
        return {"coloured": from_tensor(item["coloured"][None])[0], "lesion": item["lesion"][0].numpy() > 0.5,
                "condition": "data", "id": item["id"], "source_id": item["source_id"]}
    return from_data


def training_data(ckpt: dict) -> Path:
    """The data folder a run was trained on (its ``config.yaml``), for the default ``--masks``."""
    data, _ = RunFolder.of_checkpoint(ckpt["path"]).training_data()
    if not data or not Path(data).is_dir():
        raise SkingenError("this model paints from masks: give --masks DATA[:split] or --layouts "
                           "(the run's own training data was not found)")
    return Path(data)


def _save_condition(staging: Path, name: str, item: dict) -> dict:
    """Write the condition of image ``name`` next to it; the manifest fields that describe it."""
    write_image(staging / "coloured" / name, item["coloured"])
    write_mask(staging / "lesion" / name, item["lesion"])
    return {"coloured": f"coloured/{name}", "lesion": f"lesion/{name}", "condition": item["condition"],
            "lesion_fraction": f"{item['lesion'].mean():.4f}",
            "condition_ita": f"{coloured_mask_ita(item['coloured'], item['lesion']):.2f}"}


def layout_tone_warnings(ckpt: dict, layouts: LayoutParams | None) -> list[str]:
    """A warning when ``--layouts`` ask for healthy-skin tones beyond those of the run's training masks by more
    than :data:`~skingen.data.layouts.TONE_MARGIN` degrees: there a mask-conditioned model extrapolates, and one
    trained on light skin only paints light skin whatever the layout says (docs/tone.md). Empty when the
    layouts stay near the training tones, or when the training data is gone (nothing to compare with)."""
    if layouts is None:
        return []
    try:
        data = training_data(ckpt)
    except SkingenError:
        return []
    warning = tone_range_warning(layouts.ita, training_tones(data))
    return [warning] if warning else []


def training_tones(data: Path, at_most: int = 500) -> np.ndarray:
    """Healthy-skin ITA (degrees) of the coloured masks of ``data``'s train split, at most ``at_most`` of them
    (evenly spaced, ~1 s at 256 px: a range check needs no more)."""
    rows = [r for r in read_manifest(data, required=("id", "split")) if r["split"] == "train" and r.get("coloured")]
    rows = rows[::max(1, -(-len(rows) // at_most))]
    return np.array([coloured_mask_ita(read_image(data / r["coloured"]), read_mask(data / r["lesion"]))
                     for r in rows], dtype=np.float64)
