#!/usr/bin/env bash
# Prove a refactoring left the files the commands write byte-identical: run the same chain with OLD and
# NEW source trees (tiny models, fixed seeds) and compare every image, mask and CSV they wrote.
#   scripts/check_identical_cli.sh OLD/src NEW/src WORKDIR
# Compared: prepare (crops, masks, manifest), analyze's stats.csv, sample (dermdiff from data masks and from
# layouts, dcgan), inpaint (an inpaint model, opencv:telea). Timing columns (seconds_*) and run folders' own
# names are left out: they differ between any two runs.
set -euo pipefail
OLD=$1 NEW=$2 WORK=$3
PY=${PYTHON:-python}
export OMP_NUM_THREADS=1
run() { local src=$1; shift; PYTHONPATH=$src "$PY" -m skingen.cli "$@" >/dev/null 2>&1 || { echo "FAILED: $*"; PYTHONPATH=$src "$PY" -m skingen.cli "$@"; exit 1; }; }
mkdir -p "$WORK"
run "$OLD" demo-data "$WORK/raw" --n 12 --seed 3
for side in old new; do
  src=$([ $side = old ] && echo "$OLD" || echo "$NEW")
  run "$src" prepare "$WORK/raw/images" --masks "$WORK/raw/masks" --out "$WORK/$side/data" --size 32 --seed 1
  run "$src" analyze "$WORK/$side/data" --out "$WORK/$side/analysis" --no-autoencoder --workers 1
done
# models trained once (old code), sampled by both
for family in dermdiff dcgan inpaint; do
  [ -d "$WORK/runs-$family" ] || run "$OLD" train $family --data "$WORK/old/data" --config tiny/$family \
      --set model.size=32 --set train.images=32 --outdir "$WORK/runs-$family" --cpu
done
for side in old new; do
  src=$([ $side = old ] && echo "$OLD" || echo "$NEW")
  d=$WORK/$side
  run "$src" sample "$WORK"/runs-dermdiff/* --n 4 --out "$d/s-masks" --masks "$WORK/old/data" --cpu --solver-steps 3
  run "$src" sample "$WORK"/runs-dermdiff/* --n 4 --out "$d/s-layouts" --layouts --ita=-30..10 --cpu --solver-steps 3
  run "$src" sample "$WORK"/runs-dcgan/* --seeds 5-8 --out "$d/s-dcgan" --cpu
  run "$src" inpaint "$WORK"/runs-inpaint/* --from "$WORK/old/data:train" --n 2 --runs 2 --steps 3 --out "$d/i-model" --cpu --solver-steps 2
  run "$src" inpaint opencv:telea --from "$WORK/old/data:train" --n 2 --steps 3 --out "$d/i-telea" --cpu
done
"$PY" - "$WORK" <<'PYEOF'
import csv, hashlib, sys
from pathlib import Path
work = Path(sys.argv[1])
def files(root):
    return {p.relative_to(root): p for p in root.rglob("*") if p.is_file() and p.suffix in (".png", ".jpg", ".csv")}
def rows(path):
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if not k.startswith("seconds") and k not in ("checkpoint",)}
                for r in csv.DictReader(fh)]
old, new = files(work / "old"), files(work / "new")
differ = [str(k) for k in old if k not in new or (rows(old[k]) != rows(new[k]) if k.suffix == ".csv" else
                                                   old[k].read_bytes() != new[k].read_bytes())]
missing = sorted(str(k) for k in set(new) - set(old))
print(f"{len(old) - len(differ)} of {len(old)} files identical (images byte for byte, CSVs without timing columns)"
      + (f"; only in new: {missing}" if missing else ""))
for k in differ:
    print("DIFFERS", k)
sys.exit(1 if differ or missing else 0)
PYEOF
