"""Benchmark the generative models: training images/s, sampling seconds per image, peak memory.

Usage: python bench/models.py [--models dcgan,cvae,dermdiff] [--sizes 64,128,256] [--device cpu|cuda]
                              [--precision fp32,bf16] [--batches 1,8,32,64] [--solver-steps 10,20,50]
Each (model, size) runs in its own process so its peak memory is its own. Weights are random (speed
does not depend on training); the presets are the shipped ones for that size (dcgan-64, dcgan-128,
dcgan; cvae-64, cvae at 128/256; dermgan-64, dermgan, dermdiff-64, dermdiff at 128/256). Models that need a
condition get the one they would re-generate a random batch from (dermgan, dermdiff: its random coloured and
lesion masks; dermdiff with the preset's guidance, i.e. two network passes per solver step). ``--solver-steps`` gives
one row per step count for models with that option. Sampling time is measured around ``model.sample``
after one warm-up call. Prints a table and writes bench/results/models.json.
Reference (original work, GPUs): DCGAN 0.08-0.10 s/image (T4), CVAE 0.09 s/image (RTX 4060), <= 256 px.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRESET = {("dcgan", 64): "dcgan-64", ("dcgan", 128): "dcgan-128", ("dcgan", 256): "dcgan",
          ("cvae", 64): "cvae-64", ("cvae", 128): "cvae", ("cvae", 256): "cvae",
          ("dermgan", 64): "dermgan-64", ("dermgan", 128): "dermgan", ("dermgan", 256): "dermgan",
          ("dermdiff", 64): "dermdiff-64", ("dermdiff", 128): "dermdiff", ("dermdiff", 256): "dermdiff"}


def measure(family: str, size: int, device: str, precision: str, batches: list[int], train_batch: int,
            train_steps: int, solver_steps: int | None = None) -> dict:
    import torch

    from skingen.models.base import StepContext
    from skingen.registry import build_model
    from skingen.runs import peak_memory_mb
    from skingen.train.loop import resolve_config

    cfg = resolve_config(family, PRESET[(family, size)], [f"model.size={size}"])
    model = build_model(family, cfg.model).to(device)
    dev = torch.device(device)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    # training: a random batch, the model's own train_step (no data loading), after one warm-up step
    ctx = StepContext(model.make_optimizers(), lambda loss: loss.backward(), torch.Generator().manual_seed(0), 0, dev)
    batch = {"image": torch.rand(train_batch, 3, size, size, device=dev) * 2 - 1,
             "label": torch.zeros(train_batch, dtype=torch.long, device=dev),
             "lesion": (torch.rand(train_batch, 1, size, size, device=dev) > 0.8).float(),
             "coloured": torch.rand(train_batch, 3, size, size, device=dev) * 2 - 1}
    model.train_step(batch, ctx)
    sync()
    t = time.perf_counter()
    for _ in range(train_steps):
        model.train_step(batch, ctx)
    sync()
    train_ips = train_steps * train_batch / (time.perf_counter() - t)

    model.eval()
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    options = {} if solver_steps is None else {"solver_steps": solver_steps}
    per_batch = {}
    for b in batches:
        rows = {k: v[:1].expand(b, *v.shape[1:]) for k, v in batch.items() if k != "image"}
        cond = model.condition_from_batch(rows)
        with autocast:
            model.sample(list(range(b)), cond, **options)  # warm-up
            sync()
            n = max(b, 8)
            t = time.perf_counter()
            for start in range(0, n, b):
                model.sample(list(range(start, start + b)), cond, **options)
            sync()
        per_batch[b] = (time.perf_counter() - t) / (-(-n // b) * b)
    best = min(per_batch, key=per_batch.get)
    return {"model": family, "size": size, "preset": PRESET[(family, size)], "device": device, "precision": precision,
            "solver_steps": solver_steps or getattr(cfg.model, "solver_steps", ""),
            "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
            "train_images_per_s": round(train_ips, 1), "train_batch": train_batch,
            "s_per_image_batch1": round(per_batch.get(1, float("nan")), 4),
            "best_batch": best, "s_per_image_best": round(per_batch[best], 4),
            "peak_memory_mb": round(peak_memory_mb(dev), 0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="dcgan,cvae")
    ap.add_argument("--sizes", default="64,128,256")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", help="comma list of fp32,bf16 (sampling only)")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--train-batch", type=int, default=16)
    ap.add_argument("--train-steps", type=int, default=3)
    ap.add_argument("--solver-steps", default="", help="comma list; models without the option ignore it")
    ap.add_argument("--one", nargs=4, metavar=("MODEL", "SIZE", "PRECISION", "STEPS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    if args.one:
        family, size, precision, steps = args.one
        print(json.dumps(measure(family, int(size), args.device, precision, batches, args.train_batch, args.train_steps,
                                 int(steps) or None)))
        return
    from skingen.registry import model_class

    rows = []
    for family in args.models.split(","):
        with_steps = "solver_steps" in model_class(family).sample_options and args.solver_steps
        for size in (int(s) for s in args.sizes.split(",")):
            for precision in args.precision.split(","):
                for steps in args.solver_steps.split(",") if with_steps else ["0"]:
                    out = subprocess.run([sys.executable, __file__, "--one", family, str(size), precision, steps,
                                          "--device", args.device, "--batches", args.batches,
                                          "--train-batch", str(args.train_batch), "--train-steps", str(args.train_steps)],
                                         capture_output=True, text=True)
                    if out.returncode != 0:
                        print(out.stderr[-2000:], file=sys.stderr)
                        continue
                    rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                    print(rows[-1], flush=True)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"skingen models on {args.device}")
    keys = ["model", "size", "precision", "solver_steps", "params_M", "train_images_per_s", "s_per_image_batch1", "best_batch",
            "s_per_image_best", "peak_memory_mb"]
    for k in keys:
        table.add_column(k, justify="right")
    for r in rows:
        table.add_row(*(str(r[k]) for k in keys))
    Console().print(table, width=160)
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "models.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
