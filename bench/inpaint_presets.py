"""Cost of iterative inpainting by preset (random weights): seconds, model evaluations and pixels per output image.

Usage: python bench/inpaint_presets.py [--sizes 64,128,256] [--runs 1] [--steps 10] [--solver-steps 10]
                               [--contexts 2,whole] [--precision fp32] [--device cpu] [--threads 1]
Per size the shipped preset (64: inpaint-64; 128 and 256: inpaint, the model recommended for 256 px
on a T4-class GPU) with random weights (speed does not depend on training), ``runs`` runs of
``steps`` box regions of 1/4 of the side, least-covered placement, denoising either a context
window of 2x the region side or the whole image. Times are measured around ``run_iterative`` after a
warm-up call: wall seconds and this process's CPU seconds (with --threads 1 this is one core's time,
which stays meaningful on a shared, busy machine where the wall time is not).
Reference (original work, GLIDE on an A100): 10 steps x (100 diffusion + 27 upsampler steps) = 1,270
model evaluations and ~80 s per 256 px image. Prints a table and writes bench/results/inpaint_presets.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRESET = {64: "inpaint-64", 128: "inpaint", 256: "inpaint"}
REFERENCE_EVALUATIONS, REFERENCE_SECONDS = 10 * (100 + 27), 80.0


def measure(size: int, context: float | None, runs: int, steps: int, solver_steps: int, device: str,
            precision: str) -> dict:
    import torch

    from skingen.inpaint.iterative import IterativeParams, run_iterative
    from skingen.registry import build_model
    from skingen.generation.job import autocast_for
    from skingen.train.loop import resolve_config

    cfg = resolve_config("inpaint", PRESET[size], [f"model.size={size}"])
    torch.manual_seed(0)
    model = build_model("inpaint", cfg.model).to(device).eval()
    filler = model.region_filler(solver_steps)
    sources = torch.rand(runs, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    params = IterativeParams(steps=steps, size=0.25, placement="least-covered", context=context)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    with autocast_for(precision, device):
        run_iterative(filler, sources[:1], [99], IterativeParams(steps=1, size=0.25, context=context))  # warm-up
        sync()
        wall, cpu = time.perf_counter(), time.process_time()
        results = run_iterative(filler, sources, list(range(runs)), params, batch=runs)
        sync()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    evaluations = sum(r.evaluations for r in results) / runs
    return {"size": size, "preset": PRESET[size], "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
            "window": "whole" if context is None else f"{context:g}x region", "precision": precision, "device": device,
            "runs": runs, "steps": steps, "solver_steps": solver_steps,
            "evaluations_per_image": evaluations, "Mpixels_per_image": round(sum(r.pixels for r in results) / runs / 1e6, 2),
            "wall_s_per_image": round(wall / runs, 2), "cpu_s_per_image": round(cpu / runs, 2),
            "fewer_evaluations_than_reference": round(REFERENCE_EVALUATIONS / evaluations, 1),
            "faster_than_reference_a100_cpu_s": round(REFERENCE_SECONDS / (cpu / runs), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,128,256")
    ap.add_argument("--contexts", default="2,whole", help="comma list of window factors and/or 'whole'")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--solver-steps", type=int, default=10)
    ap.add_argument("--precision", default="fp32", help="comma list of fp32,bf16")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for ctx in args.contexts.split(","):
            for precision in args.precision.split(","):
                rows.append(measure(size, None if ctx == "whole" else float(ctx), args.runs, args.steps,
                                    args.solver_steps, args.device, precision))
                print(rows[-1], flush=True)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"iterative inpainting on {args.device} ({args.threads} thread(s)); reference: "
                        f"{REFERENCE_EVALUATIONS} evaluations, {REFERENCE_SECONDS:g} s per image on an A100")
    columns = {"size": "px", "params_M": "params M", "window": "window", "precision": "precision",
               "evaluations_per_image": "evals/image", "Mpixels_per_image": "Mpx/image", "wall_s_per_image": "wall s/image",
               "cpu_s_per_image": "CPU s/image", "fewer_evaluations_than_reference": "x fewer evals",
               "faster_than_reference_a100_cpu_s": "x vs A100 s"}
    for header in columns.values():
        table.add_column(header, justify="right")
    for r in rows:
        table.add_row(*(str(r[k]) for k in columns))
    Console(width=160).print(table)
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "inpaint_presets.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
