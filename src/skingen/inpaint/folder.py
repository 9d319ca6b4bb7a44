"""``skingen inpaint``: iterative-inpainting runs on real crops, written to a new folder.

Each run has a seed (run j of source i: ``seed + i·runs + j``) and writes, named by that seed:

| path | what |
|---|---|
| ``seedNNNNNN.png`` | the final image |
| ``frames/seedNNNNNN.png`` | the strip: source, the image after each step, and the edit map |
| ``edits/seedNNNNNN.png`` | the edit map: pixel value = times that pixel was repainted (8-bit, exact up to 255) |
| ``lesion/seedNNNNNN.png`` | an *estimated* lesion mask: the source's outside the edited area, the auto mask inside |
| ``runs/seedNNNNNN.json`` | parameters, the regions in order, model evaluations and pixels processed |

plus ``manifest.csv`` (synthetic rows: ``parent_id``, the parent's ``source_id`` so grouped splits stay
leak-free, ``edit_map``, ``lesion`` with ``lesion_estimated=1``, cost columns) and ``inpaint.json``.
Sources are resized to the model's size. Seconds are measured around the inpainting only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from skingen.data.manifest import write_manifest
from skingen.datasheet import write_datasheet
from skingen.errors import SkingenError
from skingen.imageio import from_tensor, write_image, write_mask
from skingen.inpaint.backends import load_inpainter
from skingen.inpaint.iterative import RunParams, RunResult, derive_lesion, run_iterative
from skingen.runs import staged_dir, write_json
from skingen.sampling import autocast_for, source_dataset
from skingen.viz import contact_sheet


@dataclass
class InpaintReport:
    out: Path
    sources: int
    images: int
    device: str
    seconds_model: float              #: time inside the iterative runs (synchronised on GPUs)
    evaluations_per_image: float      #: network evaluations per output image (mean)
    pixels_per_image: float           #: pixels passed through the network per output image (mean)

    @property
    def seconds_per_image(self) -> float:
        return self.seconds_model / self.images


def edit_map_image(counts: np.ndarray) -> np.ndarray:
    """Edit counts ``int [H,W]`` -> ``uint8 [H,W,3]`` for eyes: black = never repainted, then darker to
    brighter with the count (``magma`` colour map scaled to the run's maximum)."""
    from matplotlib import colormaps

    scaled = counts / max(int(counts.max()), 1)
    return (colormaps["magma"](scaled)[..., :3] * 255).round().astype(np.uint8)


def inpaint_to_folder(run: str | Path, source: str | Path, out: str | Path, params: RunParams = RunParams(),
                      runs: int = 1, n: int | None = None, seed: int = 0, solver_steps: int | None = None,
                      batch: int = 16, device: str = "cpu", ema: bool = True, precision: str = "fp32",
                      progress: Callable[[int, int], None] | None = None) -> InpaintReport:
    """``runs`` iterative-inpainting runs on each of the first ``n`` crops of ``source`` (``DATA[:split]``,
    default split train) with the denoiser at ``run`` (:func:`~skingen.inpaint.backends.load_inpainter`: an
    ``inpaint`` run, or a diffusers UNet folder for RePaint); writes the new folder ``out``."""
    if runs < 1 or batch < 1 or (n is not None and n < 1):
        raise SkingenError("--runs, --batch and --n must be at least 1")
    autocast = autocast_for(precision, device)
    loaded = load_inpainter(run, device=device, ema=ema, solver_steps=solver_steps)
    inpainter, family, checkpoint = loaded.inpainter, loaded.family, loaded.checkpoint
    parents = source_dataset(source, loaded.size)
    count = len(parents) if n is None else min(n, len(parents))
    jobs = [(i, seed + i * runs + j) for i in range(count) for j in range(runs)]
    rows, seconds, evaluations, pixels = [], 0.0, 0, 0
    with staged_dir(out, "inpainting") as staging:
        for d in ("frames", "edits", "lesion", "runs"):
            (staging / d).mkdir()
        for start in range(0, len(jobs), batch):
            chunk = jobs[start:start + batch]
            items = {i: parents[i] for i, _ in chunk}
            sources = torch.stack([items[i]["image"] for i, _ in chunk])
            t = time.perf_counter()
            with autocast:
                results = run_iterative(inpainter, sources, [s for _, s in chunk], params, batch=batch)
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize(device)
            seconds += time.perf_counter() - t
            for (i, s), result in zip(chunk, results):
                row = parents.rows[i]
                _write_run(staging, result, items[i]["lesion"][0].bool().numpy(), row["id"], params, inpainter.evaluations)
                evaluations += result.evaluations
                pixels += result.pixels
                rows.append({"id": f"{family}-seed{s:06d}", "image": f"seed{s:06d}.png",
                             "lesion": f"lesion/seed{s:06d}.png", "label": row.get("label", ""),
                             "source_id": row.get("source_id", ""), "split": "train", "origin": "synthetic",
                             "model": family, "checkpoint": checkpoint, "seed": s, "parent_id": row["id"],
                             "edit_map": f"edits/seed{s:06d}.png", "lesion_estimated": 1,
                             "steps": len(result.regions), "coverage": f"{result.coverage:.4f}",
                             "max_repeat": int(result.edit_map.max()), "evaluations": result.evaluations,
                             "pixels": result.pixels})
            if progress:
                progress(min(start + batch, len(jobs)), len(jobs))
        report = InpaintReport(Path(out), count, len(jobs), device, seconds, evaluations / len(jobs), pixels / len(jobs))
        for r in rows:
            r["seconds_per_image"] = f"{report.seconds_per_image:.6f}"
        write_manifest(staging, rows)
        write_json(staging / "inpaint.json", {
            "model": family, "checkpoint": checkpoint, "ema": ema, "source": str(source), "sources": count,
            "runs_per_source": runs, "images": len(jobs), "seed": seed, "params": params.to_dict(),
            "solver_steps": inpainter.evaluations, "batch": batch, "device": device, "precision": precision,
            "seconds_model": seconds, "seconds_per_image": report.seconds_per_image,
            "evaluations_per_image": report.evaluations_per_image, "pixels_per_image": report.pixels_per_image})
        write_datasheet(staging, rows, "inpaint", {"source crops": source, "runs per crop": runs,
                                                   "inpainting": params.to_dict()})
    return report


def _write_run(folder: Path, result: RunResult, parent_lesion: np.ndarray, parent_id: str, params: RunParams,
               solver_steps: int) -> None:
    name = f"seed{result.seed:06d}"
    frames = list(from_tensor(torch.stack(result.frames)))
    counts = result.edit_map.numpy()
    write_image(folder / f"{name}.png", frames[-1])
    write_image(folder / "edits" / f"{name}.png", np.minimum(counts, 255).astype(np.uint8))
    write_mask(folder / "lesion" / f"{name}.png", derive_lesion(parent_lesion, frames[-1], counts))
    captions = ["source", *(f"step {k}" for k in range(1, len(frames))), f"edits 0-{counts.max()}"]
    cell = max(64, counts.shape[0])
    write_image(folder / "frames" / f"{name}.png",
                contact_sheet([*frames, edit_map_image(counts)], captions, columns=len(captions), cell=cell))
    write_json(folder / "runs" / f"{name}.json", {
        "seed": result.seed, "parent_id": parent_id, "params": params.to_dict(), "solver_steps": solver_steps,
        "regions": [r.describe() for r in result.regions], "coverage": result.coverage,
        "max_repeat": int(counts.max()), "evaluations": result.evaluations, "pixels": result.pixels})
