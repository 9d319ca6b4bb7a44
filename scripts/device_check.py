"""One short check of the GPU code paths, for a session that is lent a GPU machine (not a test).

Usage: python scripts/device_check.py [--out DIR]
1. demo data -> prepare (64 px);
2. every registered model: its tiny preset trained for a few thousand images on the GPU with fp16
   mixed precision (checks the accelerate GradScaler path and finite losses), then sampled in
   fp32 / bf16 / fp16 (checks autocast sampling and that precisions agree);
3. bench/models.py on the GPU at 64 and 256 px (fp32 and bf16);
4. generation at scale (issue 20): training images/s of every shipped preset at its size in fp16 mixed
   precision (a few steps of random data -> real crops), sampling s/image of every generator at 256 px
   (fp32, bf16, fp16, and fp16 with --channels-last and --compile), iterative inpainting s/image at 256 px,
   and multi-process generation on the GPU(s) (`torchrun --nproc_per_node G`, byte-identical to one process).
   The measured rows are written to OUT/gpu_figures.csv in the format of
   src/skingen/generation/gpu_figures.csv (append them there and to docs/gpu.md with the card's name:
   `skingen plan` then predicts GPU time from them) and printed.
Prints one JSON summary; everything it writes goes under --out (default: a temp folder).
``--only-scale`` runs step 4 alone (about 10 minutes on one H100-class card is the target).
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
    ap.add_argument("--only-scale", action="store_true", help="only step 4 (generation at scale)")
    ap.add_argument("--smoke-cpu", action="store_true", help="step 4 on the CPU with tiny presets: checks this "
                    "script's own code where no GPU is lent (its numbers mean nothing)")
    args = ap.parse_args()
    if args.smoke_cpu:
        out = args.out or Path(tempfile.mkdtemp(prefix="skingen-device-"))
        print(json.dumps(scale_check(out, smoke=True), indent=2, default=str))
        return
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this script checks the GPU paths only")
    if args.only_scale:
        out = args.out or Path(tempfile.mkdtemp(prefix="skingen-device-"))
        print(json.dumps(scale_check(out), indent=2, default=str))
        return
    from skingen.data.demo import write_demo_data
    from skingen.data.prepare import PrepareConfig, prepare
    from skingen.imageio import read_image
    from skingen.registry import models
    from skingen.runs import read_jsonl
    from skingen.generation.sample_folder import SampleConfig, sample_to_folder
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
            rep = sample_to_folder(run, out / "synth" / f"{family}-{precision}", list(range(64)),
                                   SampleConfig(batch=64, precision=precision), device="cuda")
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
    summary["scale"] = scale_check(out)
    print(json.dumps(summary, indent=2, default=str))


FAMILIES = ("dcgan", "cvae", "dermgan", "dermdiff", "inpaint")


def scale_check(out: Path, smoke: bool = False) -> dict:
    """Step 4 of the module docstring; returns its summary and writes OUT/gpu_figures.csv. ``smoke``: on the
    CPU, tiny presets at 32 px, fp32 only — to check the code, not to measure."""
    import csv
    import os

    from skingen.checkpoint import save_checkpoint
    from skingen.config import to_dict
    from skingen.data.demo import write_demo_data
    from skingen.data.prepare import PrepareConfig, prepare
    from skingen.generation.plan import GPU_COLUMNS
    from skingen.generation.inpaint_folder import InpaintConfig, inpaint_to_folder
    from skingen.registry import build_model
    from skingen.runs import read_jsonl
    from skingen.generation.sample_folder import SampleConfig, sample_to_folder
    from skingen.train.loop import resolve_config, train

    device = "cpu" if smoke else "cuda"
    card = "CPU smoke test" if smoke else torch.cuda.get_device_name(0)
    today, gpus = time.strftime("%Y-%m-%d"), 1 if smoke else torch.cuda.device_count()
    size = 32 if smoke else 256
    out.mkdir(parents=True, exist_ok=True)
    data = out / f"data{size}"
    if not data.exists():
        raw = write_demo_data(out / f"raw{size}", n=20 if smoke else 80, seed=1)
        prepare(raw / "images", data, PrepareConfig(size=size), masks=raw / "masks", workers=4)
    rows, summary = [], {"card": card, "gpus": gpus, "train_images_per_s": {}, "sample": {}, "inpaint": {}}

    def figure(kind, family, size, precision, batch, s):
        rows.append({"card": card, "kind": kind, "family": family, "size": size, "precision": precision,
                     "batch": batch, "seconds_per_image": f"{s:.6f}", "measured": today})

    # training images/s of every shipped preset at its own size, fp16 mixed precision
    from skingen.train.loop import presets

    mixed = [] if smoke else ["train.mixed_precision=fp16"]
    for preset in [p for p in presets() if p.startswith("tiny/") == smoke][:1 if smoke else None]:
        family = preset.split("/")[-1].split("-")[0]
        size_set = ["model.size=16", "train.batch=4"] if smoke else []
        cfg = resolve_config(family, preset, mixed + size_set)
        steps_images = cfg.train.batch * (3 if smoke else 30)
        cfg = resolve_config(family, preset, mixed + size_set + [
            f"train.images={steps_images}", f"train.tick={cfg.train.batch * (1 if smoke else 10)}",
            f"train.snapshot={steps_images}", f"train.grid={min(cfg.train.grid, 4)}"])
        try:
            run = train(family, data, cfg, outdir=out / "train-runs", cpu=smoke)
            stats = read_jsonl(run / "stats.jsonl")
            summary["train_images_per_s"][preset] = stats[-1]["images_per_s"]  # last tick: warm
        except Exception as exc:  # one preset failing (e.g. memory) must not hide the others
            summary["train_images_per_s"][preset] = f"failed: {exc}"
        print(json.dumps({"train": preset, "images_per_s": summary["train_images_per_s"][preset]}), flush=True)

    # sampling at 256 px: fresh weights of the full presets (speed does not depend on the values)
    runs = {}
    for family in FAMILIES:
        model = build_model(family, resolve_config(family, f"tiny/{family}" if smoke else family,
                                                   [f"model.size={size}"] if smoke else []).model)
        run = out / "runs256" / family
        if not run.exists():
            save_checkpoint(run / "checkpoints", 0, {"family": family, "model": to_dict(model.config)},
                            {"model": model.state_dict()})
        runs[family] = run
    n, batch = (4, 2) if smoke else (64, 32)
    variants = (("fp32", {}), ("bf16", {"precision": "bf16"}), ("fp16", {"precision": "fp16"}),
                ("fp16-channels-last", {"precision": "fp16", "channels_last": True}),
                ("fp16-compile", {"precision": "fp16", "compile": True}))
    if smoke:
        variants = (("fp32", {}), ("fp32-channels-last", {"channels_last": True}))
    for family in ("dcgan", "cvae", "dermgan", "dermdiff"):
        masks = {"masks": f"{data}:train"} if family in ("dermgan", "dermdiff") else {}
        entry = {}
        for tag, kw in variants:
            try:
                cfg = SampleConfig(batch=batch, **masks, **kw)
                sample_to_folder(runs[family], out / "warm" / f"{family}-{tag}", list(range(batch)), cfg,
                                 device=device)  # warm-up (and compilation) not timed
                rep = sample_to_folder(runs[family], out / "synth" / f"{family}-{tag}", list(range(n)), cfg,
                                       device=device)
                entry[tag] = rep.seconds_per_image
                if tag in ("fp32", "bf16", "fp16"):
                    figure("sample", family, size, tag, batch, rep.seconds_per_image)  # model time
            except Exception as exc:
                entry[tag] = f"failed: {exc}"
        summary["sample"][family] = entry
        print(json.dumps({"sample256": family, **entry}, default=str), flush=True)

    # iterative inpainting at 256 px (10 steps, the model's solver steps)
    for precision in ("fp32",) if smoke else ("fp32", "fp16"):
        try:
            rep = inpaint_to_folder(runs["inpaint"], f"{data}:train", out / "inpaint" / precision,
                                    InpaintConfig(n=2 if smoke else 16, batch=16, precision=precision), device=device)
            summary["inpaint"][precision] = {"seconds_per_image": rep.seconds_per_image,
                                             "evaluations_per_image": rep.evaluations_per_image}
            figure("inpaint", "inpaint", size, precision, 16, rep.seconds_per_image)
        except Exception as exc:
            summary["inpaint"][precision] = f"failed: {exc}"
    print(json.dumps({"inpaint256": summary["inpaint"]}, default=str), flush=True)

    # several processes on the GPU(s): torchrun, byte-identical to one process
    procs = max(gpus, 2)  # on one card two processes share it (checks the NCCL path only where gpus > 1)
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = ["sample", str(runs["dermgan"]), "--seeds", "0-7" if smoke else "0-255", "--batch", "4" if smoke else "32",
           "--masks", f"{data}:train", *(["--cpu"] if smoke else [])]
    t = time.perf_counter()
    one = subprocess.run([sys.executable, "-m", "skingen.cli", *cmd, "--out", str(out / "mp-1")], env=env,
                         capture_output=True, text=True)
    t_one = time.perf_counter() - t
    t = time.perf_counter()
    many = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(procs), "-m", "skingen.cli", *cmd, "--out", str(out / f"mp-{procs}")], env=env,
                          capture_output=True, text=True)
    t_many = time.perf_counter() - t
    same = one.returncode == 0 and many.returncode == 0 and all(
        (out / "mp-1" / p.name).read_bytes() == p.read_bytes() for p in (out / f"mp-{procs}").glob("seed*.png"))
    summary["multiprocess"] = {"processes": procs, "one_process_s": t_one, "many_processes_s": t_many,
                               "byte_identical": same, "stderr": (many.stderr or one.stderr)[-1500:]}
    print(json.dumps({"multiprocess": summary["multiprocess"]}, default=str), flush=True)

    with open(out / "gpu_figures.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=GPU_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    summary["gpu_figures_csv"] = str(out / "gpu_figures.csv")
    return summary


if __name__ == "__main__":
    main()
