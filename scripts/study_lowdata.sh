#!/usr/bin/env bash
# Issue 34, part 3: the low-data study, fixed here before any test number was looked at.
#
# Data: measles / chickenpox / monkeypox of ../shared/data/multiclass, suggested_split (val carved from train
# group-safely), 128 px centred crops, `prepare`'s defaults (photos with faces dropped: 277 train / 34 val /
# 84 test crops, 92 measles train crops), ITA from `analyze`.
# Synthetic measles sets, each made only from the study's measles TRAIN crops (children: parent_id = the
# real train crop, so they join a fraction only with their parent; the leak checks run in augment/downstream):
#   shiftmap  `opencv:shiftmap` iterative inpainting, 48 px blobs (0.375 of the side), until >= half of the crop
#             is repainted (--coverage 0.5), 10 runs per crop (enough for ratio 10;
#             stops 36-38 ran RUNS_SHIFTMAP=3 (276 images, ratio 10 under-filled) into synth/shiftmap; stop 39 ran
#             the 10 runs (920 images) as step `shiftmap10`, with its own filter, critic and probe grid);
#   learned   the shipped learned inpainter `measles-inpaint`, same regions and coverage, RUNS_LEARNED runs per
#             crop (CPU time: fewer runs, so its ratio-10 cells are under-filled and say so in n_synthetic);
#             stop 36: 1 run of the 92 crops had not finished its first batch of 16 after 12 min at load ~9 and
#             was stopped; stop 38 made it with RUNS_LEARNED=1 (92 images, 39 s each at half a core), then ran its
#             filter, critic and probe steps (reports/probe-grid-learned, reports/c2st-learned);
#   each unfiltered and `augment --filter critic:0.3` (critic in efficientnet-lite0 features, fitted against the
#   real train split only, seed 0); the filtered sets hold 30% of the images, so they cannot fill ratio 10.
# DCGAN (stop 38, step `dcgan`): dcgan-64 trained on the measles TRAIN crops only, 920 samples, critic:0.3,
# its critic AUROC and probe grid. DermGAN (stop 39, step `dermgan`): dermgan-64 trained on lesion-masked measles
# crops of the photos that are train here AND in issue 31's tone study (one generator serves both studies
# leak-free), 920 images painted from the masks of its 82 train crops (children of those photos: their photo
# group joins a fraction with its real crops), critic:0.3, its critic AUROC and probe grid.
# Grid: EfficientNet-Lite0 linear probe (C on val), fractions 0.05/0.1/0.25/1, ratios 0(real)/1/3/10, 10 seeds,
# real + classical arm, --set combined=false. Reported: the delta vs real with its 95% bootstrap interval per
# set x fraction x ratio, next to each set's C2ST AUROC (evaluate --metrics c2st vs the real train crops,
# efficientnet-lite0, with the real-vs-real floor). Test is read once, by `downstream`, at the end.
# The fine-tune cells (224 px, 5 seeds, fractions 0.1 and 1, ratio 3): the command is below, the filtered set picked
# by val balanced accuracy of the probe grid (never test): FILTERED=synth/shiftmap-critic0.3 (stop 38; 2-10 CPU min
# per classifier here; every finished classifier is kept in the classifier cache, so a stopped run continues).
set -euo pipefail
S=${S:-/work/scratch/34}
SK="env PYTHONPATH=${SRC:-$(dirname "$0")/../src} OMP_NUM_THREADS=1 nice -n 10 ${PY:-python} -m skingen.cli"
RUNS_LEARNED=${RUNS_LEARNED:-3}
RUNS_SHIFTMAP=${RUNS_SHIFTMAP:-10}  # stops 36-38 ran 3 (CPU time); stop 39 ran 10 (step shiftmap10)
HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$S"
step=${1:-all}

# a generated set synth/$1: its critic:0.3 filtered copy, both sets' critic AUROC, and their probe grid
# ($2...: extra augment options)
filter_critic_grid() {
  local set=$1; shift
  $SK augment --real data/multiclass --synthetic synth/$set:measles --out synth/$set-critic0.3 --filter critic:0.3 \
      --filter-features efficientnet-lite0 --gate-features pixels:64 --seed 0 "$@"
  $SK evaluate --real data/measles128:train --synthetic synth/$set --synthetic synth/$set-critic0.3 --out reports/c2st-$set \
      --metrics c2st --features efficientnet-lite0 --floor data/measles128:test --set c2st.features=efficientnet-lite0
  $SK downstream --data data/multiclass --classes measles,chickenpox,monkeypox --classifier probe:efficientnet-lite0 \
      --fractions 0.05,0.1,0.25,1 --ratios 0,1,3,10 --seeds 10 --set combined=false \
      --synthetic synth/$set:measles --synthetic synth/$set-critic0.3 --out reports/probe-grid-$set
}

if [[ $step == data || $step == all ]]; then
  $SK prepare three.csv --root ../shared/data --image-column path --group-column near_dup_group \
      --split-column suggested_split --size 128 --out data/multiclass       # three.csv: the 3 classes' rows of labels.csv
  $SK analyze data/multiclass --out analysis/multiclass
  # the measles rows as their own data folder (same images, same ids) for `inpaint --from`
  ${PY:-python} - <<'PY'
import csv, os
rows = list(csv.DictReader(open("data/multiclass/manifest.csv")))
os.makedirs("data/measles128", exist_ok=True)
if not os.path.exists("data/measles128/images"):
    os.symlink("../multiclass/images", "data/measles128/images")
w = csv.DictWriter(open("data/measles128/manifest.csv", "w", newline=""), fieldnames=rows[0].keys())
w.writeheader(); w.writerows(r for r in rows if r["label"] == "measles")
PY
fi

if [[ $step == generate || $step == all ]]; then
  for k in 0 1; do
    $SK inpaint opencv:shiftmap --from data/measles128:train --runs "$RUNS_SHIFTMAP" --steps 60 --coverage 0.5 --region-size 0.375 \
        --seed 0 --shard $k/2 --out synth/shiftmap-$k &
  done; wait
  $SK merge synth/shiftmap synth/shiftmap-0 synth/shiftmap-1
  $SK inpaint measles-inpaint --from data/measles128:train --runs "$RUNS_LEARNED" --steps 60 --coverage 0.5 \
      --region-size 0.375 --seed 0 --out synth/learned
fi

if [[ $step == filter || $step == all ]]; then
  for s in shiftmap learned; do
    $SK augment --real data/multiclass --synthetic synth/$s --out synth/$s-critic0.3 --filter critic:0.3 \
        --filter-features efficientnet-lite0 --gate-features pixels:64 --train data/measles128:train \
        --allow-memorised --seed 0  # inpainted children are near their parents by design: listed, not dropped, as in the unfiltered set
  done
fi

if [[ $step == critic || $step == all ]]; then
  $SK evaluate --real data/measles128:train --synthetic synth/shiftmap --synthetic synth/learned \
      --synthetic synth/shiftmap-critic0.3 --synthetic synth/learned-critic0.3 --out reports/c2st-sets \
      --metrics c2st --features efficientnet-lite0 --floor data/measles128:test --set c2st.features=efficientnet-lite0
fi

if [[ $step == probe || $step == all ]]; then
  $SK downstream --data data/multiclass --classes measles,chickenpox,monkeypox --classifier probe:efficientnet-lite0 \
      --fractions 0.05,0.1,0.25,1 --ratios 0,1,3,10 --seeds 10 --set combined=false \
      --synthetic synth/shiftmap:measles --synthetic synth/shiftmap-critic0.3 \
      --synthetic synth/learned:measles --synthetic synth/learned-critic0.3 --out reports/probe-grid
fi

if [[ $step == dcgan ]]; then  # stop 38; 60,000 images seen took 24 min on one busy core
  $SK train dcgan --data data/measles128 --config dcgan-64 --outdir runs --cpu
  RUN=$(ls -d runs/*-dcgan-* | tail -1)
  $SK sample "$RUN" --n 920 --out synth/dcgan
  filter_critic_grid dcgan
fi

if [[ $step == shiftmap10 ]]; then  # stop 39: 10 runs per crop, two shards on two cores (~12 min each here)
  for k in 0 1; do
    $SK inpaint opencv:shiftmap --from data/measles128:train --runs 10 --steps 60 --coverage 0.5 --region-size 0.375 \
        --seed 0 --shard $k/2 --out synth/shiftmap10-$k &
  done; wait
  $SK merge synth/shiftmap10 synth/shiftmap10-0 synth/shiftmap10-1
  filter_critic_grid shiftmap10 --train data/measles128:train --allow-memorised  # children near their parents: listed, kept
fi

if [[ $step == dermgan ]]; then  # stop 39: 56,000 images seen, ~45 min on one shared core; TONE_STUDY = issue 31's data
  ${PY:-python} - "${TONE_STUDY:?the tone study data folder (issue 31: 256 px auto-mask crops)}" <<'PY' |  # the ids to keep
import csv, sys
ours = list(csv.DictReader(open("data/multiclass/manifest.csv")))
photo_splits, group_splits = {}, {}
for r in ours:
    photo_splits.setdefault(r["photo"], set()).add(r["split"])
    group_splits.setdefault(r["source_id"], set()).add(r["split"])
for r in csv.DictReader(open(f"{sys.argv[1]}/manifest.csv")):
    if r["label"] == "measles" and r["split"] == "train" and photo_splits.get(r["photo"]) == {"train"} \
            and group_splits.get(r["source_id"], {"train"}) == {"train"}:
        print(r["id"])
PY
  ${PY:-python} "$HERE/subset_data.py" "$TONE_STUDY" data/measles-train-both
  $SK train dermgan --data data/measles-train-both --config dermgan-64 --set train.images=56000 --outdir runs --cpu
  RUN=$(ls -d runs/*-dermgan-* | tail -1)
  $SK sample "$RUN" --n 920 --out synth/dermgan
  filter_critic_grid dermgan
fi

if [[ $step == finetune ]]; then  # stop 38-39 (2-13 CPU min per classifier); FILTERED = the filtered set picked on val
  $SK downstream --data data/multiclass --classes measles,chickenpox,monkeypox --classifier efficientnet-lite0 \
      --size 224 --fractions 0.1,1 --ratios 0,3 --seeds 5 --set combined=false \
      --synthetic "${FILTERED:?pick on val}" --out reports/finetune
fi
