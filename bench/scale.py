"""Generation at scale on this machine: plan accuracy, images/hour with 1 and 2 processes, plans for big jobs.

Usage:
  python bench/scale.py runs --out DIR [--trained RUNS_DIR]       # fixed runs to measure (see below)
  python bench/scale.py accuracy --runs DIR --family F --n 300 [--batch B] [--out DIR]
  python bench/scale.py throughput --runs DIR --family F --n N [--batch B] [--out DIR]
  python bench/scale.py plans --runs DIR --n 12000 [--size 256] [--calibrate K]

``runs`` writes one run folder per generator and size under DIR: a *copy* of the latest checkpoint of a
trained run in RUNS_DIR when one exists (so the weights do not change while measuring), else freshly
initialised weights of the shipped preset (``<family>-64``, or ``<family>`` at 256 px). Speed does not
depend on the weights' values, only on the architecture, so untrained weights time the same job; the table
says which one was used. Every command is run the way a user runs it (``python -m skingen.cli ...`` as a
fresh process, timed from the outside), so start-up and file writing are included.

accuracy: ``skingen plan`` then the real ``skingen sample``/``inpaint`` back to back (same nice level,
same threads), and the prediction's error. throughput: wall time of the real job with 1 process (2 threads,
then 1 thread) and with ``torchrun --nproc_per_node 2`` (one thread each, as torchrun sets), images/hour
of each (start-up included). Everything runs under ``nice -n 10``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path("/work/scratch/data/measles-study")
FAMILIES = ("dcgan", "cvae", "dermgan", "dermdiff", "inpaint")
SRC = Path(__file__).resolve().parents[1] / "src"


def make_runs(out: Path, trained: Path | None, data: Path) -> None:
    import yaml

    from skingen.checkpoint import resolve_checkpoint, save_checkpoint
    from skingen.config import to_dict
    from skingen.registry import build_model
    from skingen.train.loop import resolve_config

    out.mkdir(parents=True, exist_ok=True)
    for family in FAMILIES:
        for size, preset in ((64, f"{family}-64"), (256, family)):
            run = out / f"{family}-{size}"
            if run.exists():
                continue
            source = sorted(trained.glob(f"*-{family}-*")) if trained and size == 64 else []
            if source and (source[-1] / "checkpoints" / "latest").is_file():
                ckpt = resolve_checkpoint(source[-1])
                shutil.copytree(ckpt, run / "checkpoints" / ckpt.name)
                (run / "checkpoints" / "latest").write_text(ckpt.name)
                shutil.copy(source[-1] / "config.yaml", run / "config.yaml")
                origin = f"trained: copy of {ckpt}"
            else:
                cfg = resolve_config(family, preset, [])
                model = build_model(family, cfg.model)
                save_checkpoint(run / "checkpoints", 0, {"family": family, "model": to_dict(model.config)},
                                {"model": model.state_dict()})
                (run / "config.yaml").write_text(yaml.safe_dump({"family": family, "data": str(data)}))
                origin = f"untrained weights of preset {preset}"
            (run / "ORIGIN.txt").write_text(origin + "\n")
            print(f"{run}: {origin}", flush=True)


def env(threads: int | None = None) -> dict:
    e = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    if threads:
        e["OMP_NUM_THREADS"] = str(threads)
    return e


def job_args(family: str, run: Path, n: int, batch: int) -> list[str]:
    """The command-line arguments of the generation job (without --out)."""
    if family == "inpaint":
        runs = -(-n // 343)  # the measles-study train split has 343 crops
        return ["inpaint", str(run), "--from", f"{DATA}:train", "--crops", str(-(-n // runs)), "--runs", str(runs),
                "--batch", str(batch), "--cpu"]
    return ["sample", str(run), "--images", str(n), "--batch", str(batch), "--cpu",
            *(["--masks", f"{DATA}:train"] if family in ("dermgan", "dermdiff") else [])]


def timed(cmd: list[str], threads: int | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    res = subprocess.run(["nice", "-n", "10", *cmd], env=env(threads), capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if res.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{res.stderr[-3000:]}")
    return seconds, res.stderr


def plan_cmd(family: str, run: Path, n: int, batch: int, calibrate: int | None, json_out: Path) -> list[str]:
    extra = ["--masks", f"{DATA}:train"] if family in ("dermgan", "dermdiff") else []
    if family == "inpaint":
        extra = ["--from", f"{DATA}:train"]
    return [sys.executable, "-m", "skingen.cli", "plan", str(run), "--n", str(n), "--batch", str(batch), "--cpu",
            "--json", str(json_out), *extra, *(["--calibrate", str(calibrate)] if calibrate else [])]


def accuracy(runs: Path, family: str, size: int, n: int, batch: int, out: Path, threads: int) -> dict:
    run = runs / f"{family}-{size}"
    out.mkdir(parents=True, exist_ok=True)
    tag = f"{family}-{size}-n{n}-{time.strftime('%H%M%S')}"
    plan_s, _ = timed(plan_cmd(family, run, n, batch, None, out / f"{tag}.plan.json"), threads)
    predicted = json.loads((out / f"{tag}.plan.json").read_text())["predicted_s"]
    real_s, log = timed([sys.executable, "-m", "skingen.cli", *job_args(family, run, n, batch),
                         "--out", str(out / tag)], threads)
    row = {"family": family, "size": size, "n": n, "batch": batch, "threads": threads, "weights": (run / "ORIGIN.txt").read_text().strip(),
           "plan_s": round(plan_s, 1), "predicted_s": round(predicted, 1), "real_s": round(real_s, 1),
           "error": round(predicted / real_s - 1, 3), "load_1min_after": os.getloadavg()[0]}
    print(json.dumps(row), flush=True)
    shutil.rmtree(out / tag)
    return row


def throughput(runs: Path, family: str, size: int, n: int, batch: int, out: Path) -> dict:
    run = runs / f"{family}-{size}"
    out.mkdir(parents=True, exist_ok=True)
    tag = f"{family}-{size}-n{n}-{time.strftime('%H%M%S')}"
    args = job_args(family, run, n, batch)
    one_s, _ = timed([sys.executable, "-m", "skingen.cli", *args, "--out", str(out / f"{tag}-1p")], threads=2)
    # one process, one thread: on a busy machine two OpenMP threads wait for each other when one is descheduled
    one_1t_s, _ = timed([sys.executable, "-m", "skingen.cli", *args, "--out", str(out / f"{tag}-1p1t")], threads=1)
    two_s, _ = timed([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                      "-m", "skingen.cli", *args, "--out", str(out / f"{tag}-2p")])
    images = len(list((out / f"{tag}-1p").glob("seed*.png")))
    row = {"family": family, "size": size, "images": images, "batch": batch,
           "weights": (run / "ORIGIN.txt").read_text().strip(),
           "one_process_2_threads_s": round(one_s, 1), "images_per_hour_1p": round(images * 3600 / one_s),
           "one_process_1_thread_s": round(one_1t_s, 1), "images_per_hour_1p1t": round(images * 3600 / one_1t_s),
           "two_processes_1_thread_s": round(two_s, 1), "images_per_hour_2p": round(images * 3600 / two_s),
           "load_1min_after": os.getloadavg()[0]}
    print(json.dumps(row), flush=True)
    for p in (f"{tag}-1p", f"{tag}-1p1t", f"{tag}-2p"):
        shutil.rmtree(out / p)
    return row


def plans(runs: Path, n: int, size: int, batch: int, calibrate: int | None, families: list[str], out: Path,
          threads: int = 2) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for family in families:
        run = runs / f"{family}-{size}"
        path = out / f"plan-{family}-{size}-n{n}-{time.strftime('%H%M%S')}.json"
        seconds, log = timed(plan_cmd(family, run, n, batch, calibrate, path), threads=threads)
        p = json.loads(path.read_text())
        print(json.dumps({"family": family, "size": size, "n": n, "batch": p["batch"],
                          "evaluations": p["evaluations"], "gpixels": round(p["pixels"] / 1e9, 2),
                          "s_per_image": round(p["seconds_per_image"], 3), "predicted_h": round(p["predicted_s"] / 3600, 1),
                          "predicted_days": round(p["predicted_s"] / 86400, 2), "plan_took_s": round(seconds, 1),
                          "weights": (run / "ORIGIN.txt").read_text().strip(), "notes": p["notes"]}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["runs", "accuracy", "throughput", "plans"])
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "skingen-scale")
    ap.add_argument("--runs", type=Path)
    ap.add_argument("--trained", type=Path)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--family", default="dermgan")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--calibrate", type=int)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if a.what == "runs":
        make_runs(a.out, a.trained, a.data)
    elif a.what == "accuracy":
        accuracy(a.runs, a.family, a.size, a.n, a.batch, a.out, a.threads)
    elif a.what == "throughput":
        throughput(a.runs, a.family, a.size, a.n, a.batch, a.out)
    else:
        plans(a.runs, a.n, a.size, a.batch, a.calibrate, a.families.split(","), a.out, a.threads)


if __name__ == "__main__":
    main()
