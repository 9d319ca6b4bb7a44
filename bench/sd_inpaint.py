"""Benchmark the sd backend of iterative inpainting: s/region, s/image, UNet evaluations and FLOPs per image.

Usage: python bench/sd_inpaint.py [--pipeline DIR | --full-size] [--size 256] [--runs 1] [--steps 10]
                                  [--solver-steps 20] [--guidance 7.5] [--precision fp32] [--device cpu]
                                  [--threads 1] [--no-warmup] [--flops]
The pipeline is a local folder (a real one, or one from scripts/make_tiny_sd.py), or with --full-size
SD 1.5 inpainting's architecture with random weights built in memory (speed does not depend on the
weights). ``runs`` random sources of ``size`` px, ``steps`` box regions of 1/4 of the side, least-covered
placement, context windows of 2x the region side resized to the pipeline's resolution. Times are
measured around ``run_iterative`` (after a warm-up region unless --no-warmup): wall seconds and this
process's CPU seconds (with --threads 1 one core's time, meaningful on a busy shared machine).
--flops counts the FLOPs of one UNet evaluation (batch 1) and of the VAE encoder and decoder at the
pipeline's resolution with torch.utils.flop_counter (matmuls, convolutions, attention), and gives
FLOPs per image = evaluations x UNet + windows x (2 encodes + 1 decode); text encoding is left out.
Prints a table and writes bench/results/sd_inpaint.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

from table import print_and_save  # bench/table.py: scripts run with bench/ on sys.path

REPO = Path(__file__).resolve().parents[1]


def _build_pipeline(full_size: bool):
    spec = importlib.util.spec_from_file_location("make_tiny_sd", REPO / "scripts" / "make_tiny_sd.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_pipeline(inpainting=True, full_size=full_size)


def _gflops(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", type=Path, default=None, help="a local SD inpainting pipeline folder")
    ap.add_argument("--full-size", action="store_true", help="SD 1.5 inpainting's architecture, random weights")
    ap.add_argument("--size", type=int, default=256, help="source image side (px)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10, help="regions per run")
    ap.add_argument("--solver-steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--precision", default="fp32", help="fp32, bf16 or fp16 (GPU)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--no-warmup", action="store_true", help="skip the warm-up region (slow full-size CPU runs)")
    ap.add_argument("--flops", action="store_true")
    args = ap.parse_args()
    if (args.pipeline is None) == (not args.full_size):
        ap.error("give either --pipeline DIR or --full-size")
    import torch

    from skingen.inpaint.iterative import IterativeParams, run_iterative
    from skingen.generation.backends.sd import SDInpainting, SDOptions, prepare_pipeline
    from skingen.generation.job import AUTOCAST_DTYPES, autocast_for

    torch.set_num_threads(args.threads)
    options = SDOptions(solver_steps=args.solver_steps, guidance=args.guidance)
    t = time.perf_counter()
    if args.full_size:
        pipe = _build_pipeline(full_size=True)
        if AUTOCAST_DTYPES[args.precision] is not None:
            pipe = pipe.to(dtype=AUTOCAST_DTYPES[args.precision])
        sd = SDInpainting(prepare_pipeline(pipe, args.device, options), options)
    else:
        sd = SDInpainting.load(args.pipeline, args.device, args.precision, options)
    build_s = time.perf_counter() - t
    filler = sd.region_filler("close-up photo of a maculopapular rash on skin")
    sources = torch.rand(args.runs, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    params = IterativeParams(steps=args.steps, size=0.25, placement="least-covered", context=2)
    sync = torch.cuda.synchronize if torch.device(args.device).type == "cuda" else (lambda: None)
    with autocast_for(args.precision, args.device):
        if not args.no_warmup:
            run_iterative(filler, sources[:1], [99], IterativeParams(steps=1, size=0.25, context=2))
        sync()
        wall, cpu = time.perf_counter(), time.process_time()
        results = run_iterative(filler, sources, list(range(args.runs)), params, batch=args.runs)
        sync()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    regions = sum(len(r.regions) for r in results)
    row = {"pipeline": "SD 1.5 inpainting architecture, random weights" if args.full_size else str(args.pipeline),
           "params_M": round(sum(p.numel() for m in (sd.pipe.unet, sd.pipe.vae, sd.pipe.text_encoder)
                                 for p in m.parameters()) / 1e6, 1),
           "device": args.device, "threads": args.threads, "precision": args.precision, "size": args.size,
           "resolution": sd.resolution, "runs": args.runs, "regions_per_image": regions / args.runs,
           "solver_steps": args.solver_steps, "guidance": args.guidance,
           "unet_evaluations_per_region": filler.evaluations,
           "evaluations_per_image": sum(r.evaluations for r in results) / args.runs,
           "Mpixels_per_image": round(sum(r.pixels for r in results) / args.runs / 1e6, 2),
           "wall_s_per_region": round(wall / regions, 2), "cpu_s_per_region": round(cpu / regions, 2),
           "wall_s_per_image": round(wall / args.runs, 2), "cpu_s_per_image": round(cpu / args.runs, 2),
           "build_s": round(build_s, 1)}
    if args.flops:
        res, lat = sd.resolution, sd.resolution // sd.pipe.vae_scale_factor
        dev, dtype = sd.pipe.unet.device, sd.pipe.unet.dtype
        with torch.no_grad():
            unet = _gflops(lambda: sd.pipe.unet(
                torch.zeros(1, sd.pipe.unet.config.in_channels, lat, lat, device=dev, dtype=dtype),
                torch.tensor([500], device=dev),
                encoder_hidden_states=torch.zeros(1, sd.pipe.tokenizer.model_max_length,
                                                  sd.pipe.unet.config.cross_attention_dim, device=dev, dtype=dtype)))
            encode = _gflops(lambda: sd.pipe.vae.encode(torch.zeros(1, 3, res, res, device=dev, dtype=dtype)))
            decode = _gflops(lambda: sd.pipe.vae.decode(torch.zeros(1, 4, lat, lat, device=dev, dtype=dtype)))
        row.update(unet_gflops_per_evaluation=round(unet, 3), vae_encode_gflops=round(encode, 3),
                   vae_decode_gflops=round(decode, 3),
                   tflops_per_image=round((row["evaluations_per_image"] * unet
                                           + row["regions_per_image"] * (2 * encode + decode)) / 1e3, 4))
    print(row, flush=True)
    cols = ["device", "precision", "size", "resolution", "regions_per_image", "evaluations_per_image",
            "wall_s_per_region", "cpu_s_per_region", "wall_s_per_image", "cpu_s_per_image"]
    print_and_save([row], cols + [c for c in ("unet_gflops_per_evaluation", "tflops_per_image") if c in row],
                   "sd_inpaint")


if __name__ == "__main__":
    main()
