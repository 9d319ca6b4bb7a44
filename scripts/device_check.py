"""One short check of the GPU code paths, for a session that is lent a GPU machine (not a test).

Usage: python scripts/device_check.py [--out DIR]
1. demo data -> prepare (64 px);
2. every registered model: its tiny preset trained for a few thousand images on the GPU with fp16
   mixed precision (checks the accelerate GradScaler path and finite losses), then sampled in
   fp32 / bf16 / fp16 (checks autocast sampling and that precisions agree);
3. bench/models.py on the GPU at 64 and 256 px (fp32 and bf16).
Prints one JSON summary; everything it writes goes under --out (default: a temp folder).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--images", type=int, default=4000)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this script checks the GPU paths only")
    from skingen.data.demo import write_demo_data
    from skingen.data.prepare import PrepareConfig, prepare
    from skingen.imageio import read_image
    from skingen.registry import models
    from skingen.runs import read_jsonl
    from skingen.sampling import sample_to_folder
    from skingen.train.loop import resolve_config, train

    out = args.out or Path(tempfile.mkdtemp(prefix="skingen-device-"))
    summary: dict = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "models": {}}
    raw = write_demo_data(out / "raw", n=60, seed=0)
    data = prepare(raw / "images", out / "data", PrepareConfig(size=64), masks=raw / "masks", workers=4).out
    for family in models():
        t = time.perf_counter()
        cfg = resolve_config(family, f"tiny/{family}", [f"train.images={args.images}", "train.mixed_precision=fp16"])
        run = train(family, data, cfg, outdir=out / "runs")
        stats = read_jsonl(run / "stats.jsonl")
        entry = {"train_s": round(time.perf_counter() - t, 1), "last_tick": stats[-1],
                 "finite": all(np.isfinite(v) for r in stats for k, v in r.items() if k.startswith("loss/"))}
        images = {}
        for precision in ("fp32", "bf16", "fp16"):
            rep = sample_to_folder(run, out / "synth" / f"{family}-{precision}", list(range(64)), batch=64,
                                   device="cuda", precision=precision)
            entry[f"s_per_image_{precision}"] = rep.seconds_per_image
            images[precision] = np.stack([read_image(p) for p in sorted(rep.out.glob("seed*.png"))]).astype(int)
        entry["mean_abs_diff_bf16_vs_fp32"] = float(np.abs(images["bf16"] - images["fp32"]).mean())
        entry["mean_abs_diff_fp16_vs_fp32"] = float(np.abs(images["fp16"] - images["fp32"]).mean())
        summary["models"][family] = entry
        print(json.dumps({family: entry}, default=str), flush=True)
    bench = subprocess.run([sys.executable, str(REPO / "bench" / "models.py"), "--device", "cuda", "--sizes", "64,256",
                            "--precision", "fp32,bf16", "--batches", "1,16,64", "--train-batch", "32",
                            "--train-steps", "5"], capture_output=True, text=True)
    summary["bench_models"] = bench.stdout[-4000:] if bench.returncode == 0 else bench.stderr[-2000:]
    print(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
