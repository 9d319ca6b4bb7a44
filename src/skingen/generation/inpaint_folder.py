"""``skingen inpaint``: iterative-inpainting runs on real crops, written to a new folder.

Each run has a seed (run j of source i: ``seed + i·runs + j``) and writes, named by that seed:

| path | what |
|---|---|
| ``seedNNNNNN.png`` | the final image |
| ``frames/seedNNNNNN.png`` | the strip: source, the image after each step, and the edit map |
| ``edits/seedNNNNNN.png`` | the edit map: pixel value = times that pixel was repainted (8-bit, exact up to 255) |
| ``lesion/seedNNNNNN.png`` | an *estimated* lesion mask: the source's outside the edited area, the auto mask inside |
| ``runs/seedNNNNNN.json`` | parameters, the regions in order, model evaluations and pixels processed (sd: prompts) |

plus ``manifest.csv`` (synthetic rows: ``parent_id``, the parent's ``source_id`` so grouped splits stay
leak-free, ``edit_map``, ``lesion`` with ``lesion_estimated=1``, cost columns, ``seam_score``
(:mod:`skingen.inpaint.seams`); sd: ``prompt`` and ``negative_prompt``) and ``inpaint.json``. Outputs keep
the crops' own size: a backend that works at one size (a whole-image model) repaints a shrunken copy and only
the repainted pixels are upsampled and pasted (:func:`~skingen.inpaint.iterative.lift`; cost columns are the
work copy's, the seam score the full-size result's). Seconds are measured around the inpainting only. Several
processes (``torchrun``/``accelerate launch``) or ``shard="K/N"`` split the runs in one-process batches
(:mod:`skingen.generation.parallel`), so their files are byte-identical to a one-process run's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from skingen.config import NonNegativeInt, PositiveInt, from_dict
from skingen.errors import SkingenError
from skingen.generation.backends import LoadedFiller, load_filler
from skingen.generation.backends.sd import SDOptions
from skingen.generation.job import GenerationJob, source_dataset
from skingen.imageio import from_tensor, resize_image, write_image, write_mask
from skingen.inpaint.iterative import IterativeParams, IterativeResult, derive_lesion, lift, run_iterative
from skingen.inpaint.seams import seam_score
from skingen.runs import write_json
from skingen.seeding import format_seeds
from skingen.viz import contact_sheet


@dataclass(frozen=True)
class InpaintConfig:
    """How ``skingen inpaint`` runs (its options; the denoiser, the source crops and the output folder are the job)."""

    #: the :class:`~skingen.inpaint.iterative.IterativeParams` fields given; the others come from the checkpoint's
    #: recorded ``run_params`` (a shipped model's measured settings), else IterativeParams' defaults
    params: dict[str, Any] = field(default_factory=dict)
    runs: PositiveInt = 1                       #: runs per source crop
    n: PositiveInt | None = None                #: use only the first n crops of the split (None: all)
    seed: NonNegativeInt = 0                       #: seed of the first run (run j of crop i gets seed + i*runs + j)
    solver_steps: PositiveInt | None = None     #: the denoiser's sampling steps per region (None: its own)
    batch: PositiveInt = 16                     #: runs processed together (windows per network call)
    ema: bool = True                    #: the weights' moving average (False: the trained weights)
    precision: str = "fp32"             #: fp32 | bf16 | fp16 (GPU)
    backend: str = "auto"               #: auto or a name in :func:`~skingen.generation.backends.backends`
    sd: SDOptions | None = None         #: the sd backend's options (None: its defaults)
    shard: str | None = None            #: ``K/N``: only job K of N (:mod:`skingen.generation.parallel`)

    def __post_init__(self) -> None:
        if self.runs < 1 or self.batch < 1 or (self.n is not None and self.n < 1):
            raise SkingenError("--runs, --batch and --n must be at least 1")
        from_dict(IterativeParams, self.params, "params.")  # unknown keys, types, ranges: before any model loads


@dataclass
class InpaintReport:
    out: Path
    sources: int
    images: int
    device: str
    seconds_model: float              #: time inside the iterative runs (synchronised on GPUs)
    evaluations_per_image: float      #: network evaluations per output image (mean)
    pixels_per_image: float           #: pixels passed through the network per output image (mean)
    seam_median: float                #: median seam score over the images (1 = no seam)
    processes: int = 1                #: processes that shared the work (seconds_model is their sum)
    idle: str = ""                    #: why this shard has no work (parallel.idle_shard_note), when it has none

    @property
    def seconds_per_image(self) -> float:
        return self.seconds_model / self.images if self.images else float("nan")

    def summary(self, precision: str, runs: int) -> str:
        """The console's one line about a finished ``inpaint`` (``runs`` per source crop)."""
        if self.idle:
            return f"{self.idle}: {self.out}"
        return (f"wrote {self.images} images ({self.sources} crops x {runs} runs) to {self.out}: "
                f"{self.seconds_per_image:.3f} s/image, {self.evaluations_per_image:.0f} model evaluations and "
                f"{self.pixels_per_image / 1e6:.2f} Mpixels per image ({self.device}, {precision}, "
                f"{self.processes} process(es); model time only); median seam score {self.seam_median:.3f} "
                f"(1 = no seam)")


def edit_map_image(counts: np.ndarray) -> np.ndarray:
    """Edit counts ``int [H,W]`` -> ``uint8 [H,W,3]`` for eyes: black = never repainted, then darker to
    brighter with the count (``magma`` colour map scaled to the run's maximum)."""
    from matplotlib import colormaps

    scaled = counts / max(int(counts.max()), 1)
    return (colormaps["magma"](scaled)[..., :3] * 255).round().astype(np.uint8)


def inpaint_to_folder(run: str | Path, source: str | Path, out: str | Path, cfg: InpaintConfig = InpaintConfig(),
                      device: str = "cpu", progress: Callable[[int, int], None] | None = None) -> InpaintReport:
    """``cfg.runs`` iterative-inpainting runs on each of the first ``cfg.n`` crops of ``source`` (``DATA[:split]``,
    default split train) with the denoiser at ``run`` (:func:`~skingen.generation.backends.load_filler`: an
    ``inpaint`` run, a diffusers UNet folder for RePaint, an OpenCV method, or an SD inpainting pipeline with
    backend sd); writes the new folder ``out`` at the crops' own size (a filler that works at one size runs on a
    shrunken copy, :func:`~skingen.inpaint.iterative.lift`). ``cfg.shard`` (``"K/N"``): only that slice of the
    runs; under ``torchrun`` every process takes its share (:class:`~skingen.generation.job.GenerationJob`)."""
    job = GenerationJob(out, "inpainting", cfg.batch, cfg.shard, device, cfg.precision, progress)
    loaded = load_filler(run, device=job.procs.device, ema=cfg.ema, solver_steps=cfg.solver_steps,
                         backend=cfg.backend, precision=cfg.precision, options=cfg.sd)
    params = from_dict(IterativeParams, {**loaded.run_params, **cfg.params}, "params.")
    solver_steps = loaded.settings.get("solver_steps", loaded.filler.evaluations)  # sd: evaluations count guidance too
    parents = source_dataset(source, None)
    side = parents[0]["image"].shape[-1]  # every crop at the first's size, so all stack
    parents = source_dataset(source, side)
    work = None if loaded.size in (None, side) else source_dataset(source, loaded.size)  # the filler's copies
    count = len(parents) if cfg.n is None else min(cfg.n, len(parents))
    jobs = [(i, cfg.seed + i * cfg.runs + j) for i in range(count) for j in range(cfg.runs)]
    rows, seconds, evaluations, pixels = [], 0.0, 0, 0
    with job.staged(jobs, ("frames", "edits", "lesion", "runs")) as staging:
        for chunk in job.batches():
            t = time.perf_counter()
            items = {i: parents[i] for i, _ in chunk}  # each crop read once per batch (its runs share it)
            results, recorded = _inpaint_batch(loaded, work, items, parents.rows, chunk, params, cfg.batch,
                                               job.autocast)
            if torch.device(job.procs.device).type == "cuda":
                torch.cuda.synchronize(job.procs.device)
            seconds += time.perf_counter() - t
            for (i, s), result, extra in zip(chunk, results, recorded):
                row = parents.rows[i]
                _write_run(staging, result, items[i]["lesion"][0].bool().numpy(), row["id"], params, solver_steps,
                           extra)
                evaluations += result.evaluations
                pixels += result.pixels
                rows.append(_row(loaded, row, s, result, extra))
        rows = job.gather_rows(rows)
        seconds, evaluations, pixels = (sum(v) for v in zip(*job.gather((seconds, evaluations, pixels))))
        seams = np.array([float(r["seam_score"]) for r in rows])
        per_image = max(job.total, 1)  # an idle shard (no images) reports 0 per image; merge recomputes from rows
        report = InpaintReport(Path(out), count, job.total, device, seconds, evaluations / per_image,
                               pixels / per_image,
                               float(np.nanmedian(seams)) if not np.isnan(seams).all() else float("nan"),
                               job.procs.world, job.idle_note())
        if not job.is_main:  # rank 0 writes the manifest and summary; the others wait for the rename
            return report
        job.write(staging, rows, report.seconds_per_image, "inpaint.json", {
            "model": loaded.family, "checkpoint": loaded.checkpoint, "ema": cfg.ema, "source": str(source),
            "sources": count, "runs_per_source": cfg.runs, "images": job.total, "seed": cfg.seed,
            "params": params.to_dict(), "solver_steps": solver_steps, "batch": cfg.batch, "device": device,
            "precision": cfg.precision, "seconds_model": seconds, "seconds_per_image": report.seconds_per_image,
            "evaluations_per_image": report.evaluations_per_image, "pixels_per_image": report.pixels_per_image,
            "seam_score_median": report.seam_median, "seeds": format_seeds([s for _, s in jobs]), **job.sharding(),
            **({"backend": loaded.settings} if loaded.settings else {})}, "inpaint",
            {"source crops": source, "runs per crop": cfg.runs, "inpainting": params.to_dict()})
    return report


def _inpaint_batch(loaded: LoadedFiller, work, items: dict[int, dict], rows: list[dict[str, str]],
                   chunk: list[tuple[int, int]], params: IterativeParams,
                   batch: int, autocast) -> tuple[list[IterativeResult], list[dict[str, str]]]:
    """The runs of ``chunk`` ((crop, seed) pairs) of the crops ``items`` (crop index -> item at its own size,
    ``rows`` their manifest rows), made on ``work``'s copies at the filler's size when it has one (else on the
    crops) and lifted back; and each run's recorded backend fields (sd: its prompts)."""
    at_work = {i: (work[i] if work is not None else items[i])["image"] for i in items}
    sources = torch.stack([at_work[i] for i, _ in chunk])
    by_label: dict[str, list[int]] = {}  # sd: runs of one class share a filler (its prompt)
    for k, (i, _) in enumerate(chunk):
        by_label.setdefault(rows[i].get("label", "") if loaded.for_label else "", []).append(k)
    results: list[IterativeResult | None] = [None] * len(chunk)
    recorded: list[dict[str, str]] = [{}] * len(chunk)
    for label, ks in by_label.items():
        label_filler, extra = loaded.by_label(label)
        with autocast:
            finished = run_iterative(label_filler, sources[ks], [chunk[k][1] for k in ks], params, batch=batch)
        for k, result in zip(ks, finished):
            results[k], recorded[k] = lift(result, items[chunk[k][0]]["image"]), extra  # same size: unchanged
    return results, recorded


def _row(loaded: LoadedFiller, parent: dict[str, str], seed: int, result: IterativeResult, extra: dict[str, str]
         ) -> dict[str, Any]:
    """The manifest row of run ``seed`` of the crop ``parent`` (its manifest row)."""
    return {"id": f"{loaded.family}-seed{seed:06d}", "image": f"seed{seed:06d}.png",
            "lesion": f"lesion/seed{seed:06d}.png", "label": parent.get("label", ""),
            "source_id": parent.get("source_id", ""), "split": "train", "origin": "synthetic",
            "model": loaded.family, "checkpoint": loaded.checkpoint, "seed": seed, "parent_id": parent["id"],
            "edit_map": f"edits/seed{seed:06d}.png", "lesion_estimated": 1, "steps": len(result.regions),
            "coverage": f"{result.coverage:.4f}", "max_repeat": int(result.edit_map.max()),
            "evaluations": result.evaluations, "pixels": result.pixels,
            "seam_score": f"{seam_score(result.source, result.image, result.regions):.4f}", **extra}


def _write_run(folder: Path, result: IterativeResult, parent_lesion: np.ndarray, parent_id: str, params: IterativeParams,
               solver_steps: int, extra: dict[str, str]) -> None:
    name = f"seed{result.seed:06d}"
    image = from_tensor(result.image[None])[0]
    frames = list(from_tensor(torch.stack(result.frames)))
    counts = result.edit_map.numpy()
    write_image(folder / f"{name}.png", image)
    write_image(folder / "edits" / f"{name}.png", np.minimum(counts, 255).astype(np.uint8))
    write_mask(folder / "lesion" / f"{name}.png", derive_lesion(parent_lesion, image, counts))
    captions = ["source", *(f"step {k}" for k in range(1, len(frames))), f"edits 0-{counts.max()}"]
    side = frames[0].shape[0]  # at most FRAME_SIDE: the strip's memory is bounded too
    shown = counts if side == counts.shape[0] else resize_image(counts.astype(np.float32), side, "nearest")
    write_image(folder / "frames" / f"{name}.png", contact_sheet([*frames, edit_map_image(shown)], captions,
                                                                 columns=len(captions), cell=max(64, side)))
    write_json(folder / "runs" / f"{name}.json", {
        "seed": result.seed, "parent_id": parent_id, "params": params.to_dict(), "solver_steps": solver_steps,
        "regions": [r.describe() for r in result.regions], "coverage": result.coverage,
        "max_repeat": int(counts.max()), "evaluations": result.evaluations, "pixels": result.pixels, **extra})
