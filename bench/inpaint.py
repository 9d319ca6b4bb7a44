"""Iterative-inpainting backends side by side on real crops: seconds, evaluations, pixels and seam score per image.

Usage: python bench/inpaint.py --data DATA[:split] [--n 8] [--runs 1] [--steps 10]
                               [--backends measles-inpaint,opencv:telea,opencv:ns,opencv:shiftmap,opencv:fsr-fast,repaint:measles-inpaint]
                               [--slow-n 1] [--params '{"shape": "blob"}'] [--threads 2] [--device cpu] [--json OUT]
A backend is anything ``skingen inpaint`` takes (a run folder, a shipped model's name, ``opencv:<method>``), or
``repaint:MODEL`` / ``repaint-published:MODEL``: RePaint (diffusers' ``RePaintScheduler``) driving MODEL's network under
its null condition (an unconditional denoiser of the same size, trained on the same crops; needs null_prob > 0) with a
fast setting (25 steps, jumps of 5 done twice) or the paper's published one (250 steps, jumps of 10 done 10 times:
~2,500 evaluations per window, so it runs on the first ``--slow-n`` crops only). Every backend repaints the same regions
(``--params``, default: the first model's recorded run settings, e.g. the shipped model's measured ones) of the first
``n`` crops. Per backend: wall and this process's CPU seconds per image (after a warm-up), network evaluations and
pixels through the network per image, median seam score (1 = no seam). Prints a table; ``--json`` writes it.
The earlier work: GLIDE, 10 steps x (100 + 27 upsampler) = 1,270 evaluations and ~80 s per 256 px image on an A100.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from skingen.generation.backends import LoadedFiller, load_filler
from skingen.generation.backends.repaint import model_repaint_filler
from skingen.inpaint.iterative import IterativeParams, run_iterative
from skingen.inpaint.seams import seam_score
from skingen.generation.job import source_dataset

REPAINT = {"repaint": (25, 5, 2), "repaint-published": (250, 10, 10)}  # steps, jump_length, jump_n_sample


def load(backend: str, device: str) -> tuple[LoadedFiller, bool]:
    """(the denoiser, whether it is slow enough to run on ``--slow-n`` crops only)."""
    kind, _, model = backend.partition(":")
    if kind in REPAINT and model:
        from skingen.registry import load_model

        net, ckpt = load_model(model, device=device)
        steps, jump, n = REPAINT[kind]
        filler = model_repaint_filler(net, steps, jump, n)
        return LoadedFiller(filler, net.config.size, kind, str(ckpt["path"])), kind == "repaint-published"
    return load_filler(backend, device=device), False


def measure(backend: str, data: str, n: int, runs: int, params: IterativeParams, device: str, batch: int) -> dict:
    loaded, slow = load(backend, device)
    crops = source_dataset(data, loaded.size or 256)
    sources = torch.stack([crops[i]["image"] for i in range(min(n, len(crops))) for _ in range(runs)])
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    run_iterative(loaded.filler, sources[:1], [10**6], IterativeParams(**{**params.to_dict(), "steps": 1}))  # warm-up
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    results = run_iterative(loaded.filler, sources, list(range(len(sources))), params, batch=batch)
    sync()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    q1, median, q3 = np.nanpercentile([seam_score(r.source, r.image, r.regions) for r in results], [25, 50, 75])
    k = len(results)
    return {"backend": backend, "images": k, "wall_s_per_image": round(wall / k, 2), "cpu_s_per_image": round(cpu / k, 2),
            "evaluations_per_image": round(sum(r.evaluations for r in results) / k),
            "Mpixels_per_image": round(sum(r.pixels for r in results) / k / 1e6, 2),
            "seam_median": round(float(median), 3), "seam_iqr": [round(float(q1), 3), round(float(q3), 3)], "slow": slow}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="DATA[:split] (default split: train)")
    ap.add_argument("--backends", default="measles-inpaint,opencv:telea,opencv:ns,opencv:shiftmap,opencv:fsr-fast,repaint:measles-inpaint")
    ap.add_argument("--n", type=int, default=8, help="crops (the first n of the split)")
    ap.add_argument("--slow-n", type=int, default=1, help="crops for repaint-published")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--params", default=None, help="JSON of IterativeParams fields (default: the first model's recorded ones)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, default=None, help="write the rows here (must not exist)")
    args = ap.parse_args()
    if args.json is not None and args.json.exists():
        raise SystemExit(f"{args.json} already exists")
    torch.set_num_threads(args.threads)
    backends = args.backends.split(",")
    if args.params is not None:
        given = json.loads(args.params)
    else:  # the settings the first learnt model was measured with
        first = next((b.partition(":")[2] or b for b in backends if not b.startswith("opencv:")), None)
        given = load_filler(first).run_params if first else {}
    params = IterativeParams(**{**given, "steps": args.steps})
    print(f"regions: {params.to_dict()}", flush=True)
    rows = []
    for backend in backends:
        n = args.slow_n if backend.startswith("repaint-published:") else args.n
        rows.append(measure(backend, args.data, n, args.runs, params, args.device, args.batch))
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{args.data}, {args.device}, {args.threads} thread(s); {params.steps} steps of {params.shape} regions "
          f"of side {params.size:g}, feather {params.feather:g}{' px' if params.feather > 1 else ' of the region side'}")
    print(f"{'backend':<34} {'images':>6} {'wall s':>7} {'CPU s':>7} {'evals':>6} {'Mpx':>6} {'seam':>6}")
    for r in rows:
        print(f"{r['backend'][-34:]:<34} {r['images']:>6} {r['wall_s_per_image']:>7} {r['cpu_s_per_image']:>7} "
              f"{r['evaluations_per_image']:>6} {r['Mpixels_per_image']:>6} {r['seam_median']:>6}")
    if args.json is not None:
        args.json.write_text(json.dumps({"params": params.to_dict(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
