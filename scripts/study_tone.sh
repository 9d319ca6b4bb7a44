#!/usr/bin/env bash
# Issue 31: darker skin — the study as it ran (stops 36-40), design fixed before any test number was read.
#
# Data: measles / chickenpox / monkeypox of ../shared/data/multiclass (three.csv: their rows of labels.csv),
# suggested_split (val carved from train group-safely), 256 px auto-mask crops, one per photo, faces kept (the face
# filter dropped 135 of 534 photos), rows with a content_flag excluded: 382 train / 47 val / 105 test; `analyze`'s ITA
# splits the test crops into 34 dark (< 10°) and 71 light.
# Arms (R = 1, synthetic measles in train only, children join a fraction only with their parent photo):
#   real; real + classical; real + tone (melanin: the 274 light train crops, 2 each, into -40..10°);
#   real + tone (lab, the naive baseline; probe only); real + DermGAN painting layouts of -40..10°.
# The DermGAN is scripts/study_lowdata.sh's `dermgan` step (trained on the measles crops of the photos that are
# train here and in the low-data study: one generator, leak-free for both; DERMGAN = its run folder).
# Probe: EfficientNet-Lite0 linear probe, 10 seeds, fractions 0.25 and 1. Fine-tune: 224 px, the default recipe,
# 5 seeds, the same fractions (2-13 CPU min per classifier here; every finished classifier is kept in the
# classifier cache, so a stopped run continues). Reported: accuracy on the dark and light test groups (Wilson 95%)
# and the paired delta to real (dark_vs_light.csv), in README and docs/tone.md.
# DermDiff's dark layouts (`dermdiff` step): dermdiff-64 on the DermGAN's training crops and on their light half,
# painted tone against asked tone over guidance scales (bench/layout_tone.py).
set -euo pipefail
S=${S:-/work/scratch/issue31}
SK="env PYTHONPATH=${SRC:-$(dirname "$0")/../src} OMP_NUM_THREADS=${THREADS:-1} nice -n 10 ${PY:-python} -m skingen.cli"
BENCH="$(cd "$(dirname "$0")/.." && pwd)/bench"
HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$S"
step=${1:-all}

if [[ $step == data || $step == all ]]; then
  $SK prepare three.csv --out study542 --root ../shared/data --image-column path --group-column near_dup_group \
      --split-column suggested_split --exclude-column content_flag --auto-mask --set crop.max_per_photo=1 \
      --set "crop.scales=[1.0]" --faces keep
  $SK analyze study542 --out analyze542
fi

if [[ $step == tone || $step == all ]]; then
  $SK tone study542:train --ita -40..10 --per-image 2 --out tone-melanin
  $SK tone study542:train --ita -40..10 --per-image 2 --method lab --out tone-lab
fi

if [[ $step == dermgan || $step == all ]]; then  # stop 39: 400 paintings of dark layouts (R = 1 needs 146)
  $SK sample "${DERMGAN:?the DermGAN run folder (study_lowdata.sh dermgan)}" --n 400 --layouts --ita=-40..10 --out dermgan-dark
fi

if [[ $step == probe || $step == all ]]; then
  $SK downstream --data study542 --synthetic tone-melanin --synthetic tone-lab --synthetic dermgan-dark:measles \
      --classes measles,chickenpox,monkeypox --classifier probe:efficientnet-lite0 --fractions 0.25,1 --seeds 10 \
      --ratios 1 --set combined=false --cpu --out ds-probe-dermgan
fi

if [[ $step == finetune || $step == all ]]; then  # stops 37-40: THREADS=2 on the 2-core machine
  $SK downstream --data study542 --synthetic tone-melanin --synthetic dermgan-dark:measles \
      --classes measles,chickenpox,monkeypox --classifier efficientnet-lite0 --size 224 --fractions 0.25,1 \
      --ratios 1 --seeds 5 --set combined=false --cpu --out ds-ft224-dermgan
fi

if [[ $step == dermdiff ]]; then  # stop 39: ~28 min of training each on one core
  RUNS=${RUNS:?the low-data study folder holding data/measles-train-both}
  ${PY:-python} - "$RUNS/data/measles-train-both" <<'PY' | ${PY:-python} "$HERE/subset_data.py" "$RUNS/data/measles-train-both" measles-train-light
import csv, sys
for r in csv.DictReader(open(f"{sys.argv[1]}/manifest.csv")):
    if r["ita"] not in ("", "nan") and float(r["ita"]) >= 10:
        print(r["id"])
PY
  for data in "$RUNS/data/measles-train-both" measles-train-light; do
    $SK train dermdiff --data "$data" --config dermdiff-64 --outdir runs-dermdiff --cpu
    RUN=$(ls -d runs-dermdiff/*-dermdiff-* | tail -1)
    ${PY:-python} "$BENCH/layout_tone.py" "$RUN" --guidance 1,1.5,2,4,8 --n 64 --ita=-60..40
    ${PY:-python} "$BENCH/layout_tone.py" "$RUN" --guidance 1,2,4 --n 32 --ita=-70..-50
  done
fi
