"""``skingen sample``: images from a trained run, named by seed, with a synthetic manifest.

Each image depends only on (checkpoint, seed, condition), so ``--seeds 0-99`` in one go or in two
halves gives identical files. With ``source`` (a data folder, optionally ``DATA:split``) the model
varies real crops: seed ``s`` varies the crop number ``s mod len(split)``, recorded as ``parent_id``.
The seconds per image are measured around the model only (not file writing) and saved.
``precision="bf16"`` runs the networks under autocast (2.2x faster batched at 256 px on a 2-core CPU with
AVX-512 BF16, bench/models.py; GPUs unmeasured); images then differ slightly from fp32 ones, so the
precision is recorded with them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from skingen.data.manifest import write_manifest
from skingen.errors import SkingenError
from skingen.imageio import from_tensor, write_image
from skingen.models.base import Condition
from skingen.registry import load_model
from skingen.runs import staged_dir, write_json


@dataclass
class SampleReport:
    out: Path
    n: int
    batch: int
    device: str
    checkpoint: str
    seconds_model: float      #: time inside ``model.sample`` (synchronised on GPUs)
    seconds_total: float      #: including reading sources and writing files

    @property
    def seconds_per_image(self) -> float:
        return self.seconds_model / self.n


def split_data_arg(text: str) -> tuple[Path, str | None]:
    """``'data/'`` -> (data/, None); ``'data/:test'`` -> (data/, 'test')."""
    folder, _, split = str(text).rpartition(":") if ":" in str(text) else (str(text), "", "")
    return Path(folder), (split or None)


def sample_to_folder(run: str | Path, out: str | Path, seeds: list[int], batch: int = 16,
                     source: str | Path | None = None, strength: float | None = None, label: str | None = None,
                     device: str = "cpu", ema: bool = True, precision: str = "fp32",
                     progress: Callable[[int, int], None] | None = None) -> SampleReport:
    """Write ``seed{NNNNNN}.png`` for each seed, ``manifest.csv`` (origin=synthetic) and ``sample.json`` to ``out``."""
    t0 = time.perf_counter()
    if batch < 1:
        raise SkingenError("--batch must be at least 1")
    autocast = autocast_for(precision, device)
    model, ckpt = load_model(run, ema=ema, device=device)
    family, cfg = ckpt["config"]["family"], model.config
    options = {} if strength is None else {"strength": strength}
    if source is not None and "source" not in model.supports:
        raise SkingenError(f"model '{family}' cannot vary real images (--from); it takes: "
                           f"{', '.join(sorted(model.supports)) or 'no condition'}")
    parents = source_dataset(source, cfg.size) if source is not None else None
    if parents is None and strength is not None:
        raise SkingenError("--strength only applies when varying real images (--from DATA)")
    labels = list(getattr(cfg, "labels", ()))
    # an unconditional model trained on one class (e.g. all "exanthem") makes images of that class
    data_labels = ckpt["config"].get("data_labels", [])
    default_label = data_labels[0] if not labels and len(data_labels) == 1 else ""
    if label is not None and label not in labels:
        raise SkingenError(f"label '{label}' unknown to this model (labels: {', '.join(labels) or 'none'})")
    rows, seconds = [], 0.0
    with staged_dir(out, "samples") as staging:
        for start in range(0, len(seeds), batch):
            chunk = seeds[start:start + batch]
            cond_fields = {}
            if labels:  # a given label, or the classes in turn by seed
                cond_fields["labels"] = torch.tensor([labels.index(label) if label else s % len(labels) for s in chunk])
            if parents is not None:
                items = [_parent(parents, s) for s in chunk]
                cond_fields["source"] = torch.stack([it["image"] for it in items])
            cond = Condition(**cond_fields) if cond_fields else None
            t = time.perf_counter()
            with autocast:
                images = model.sample(chunk, cond, **options).float()
            if images.device.type == "cuda":
                torch.cuda.synchronize(images.device)
            seconds += time.perf_counter() - t
            for i, (s, img) in enumerate(zip(chunk, from_tensor(images))):
                name = f"seed{s:06d}.png"
                write_image(staging / name, img)
                parent = items[i] if parents is not None else None
                rows.append({"id": f"{family}-seed{s:06d}", "image": name,
                             "label": labels[int(cond_fields["labels"][i])] if labels else default_label,
                             # a variation of a real crop belongs to that crop's photo: splits stay grouped
                             "source_id": parent["source_id"] if parent else f"{family}-seed{s:06d}",
                             "split": "train", "origin": "synthetic", "model": family,
                             "checkpoint": str(ckpt["path"].resolve()), "seed": s,
                             "parent_id": parent["id"] if parent else ""})
            if progress:
                progress(min(start + batch, len(seeds)), len(seeds))
        report = SampleReport(Path(out), len(seeds), batch, device, str(ckpt["path"].resolve()), seconds, 0.0)
        for r in rows:
            r["seconds_per_image"] = f"{report.seconds_per_image:.6f}"
        write_manifest(staging, rows)
        report.seconds_total = time.perf_counter() - t0
        write_json(staging / "sample.json", {
            "model": family, "checkpoint": report.checkpoint, "ema": ema, "n": report.n, "batch": batch,
            "device": device, "seconds_model": seconds, "seconds_total": report.seconds_total,
            "seconds_per_image": report.seconds_per_image, "source": str(source) if source else None,
            "strength": strength, "label": label, "precision": precision})
    return report


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_for(precision: str, device: str):
    """The autocast context for sampling at ``precision`` (fp32 | bf16 | fp16) on ``device``."""
    if precision not in PRECISIONS:
        raise SkingenError(f"precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")
    device_type = torch.device(device).type
    if precision == "fp16" and device_type == "cpu":
        raise SkingenError("fp16 sampling needs a GPU; on a CPU use bf16")
    return torch.autocast(device_type, dtype=PRECISIONS[precision] or torch.float32, enabled=precision != "fp32")


def source_dataset(source: str | Path, size: int):
    """The crops of ``DATA[:split]`` (default split: train), resized to ``size``."""
    from skingen.data.datasets import ManifestDataset

    folder, split = split_data_arg(str(source))
    return ManifestDataset(folder, split=split or "train", size=size)


def _parent(ds, seed: int) -> dict:
    i = seed % len(ds)
    return {**ds[i], "source_id": ds.rows[i].get("source_id", "")}
