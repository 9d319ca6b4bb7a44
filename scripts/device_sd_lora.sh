#!/usr/bin/env bash
# Issue 32 on one GPU: LoRA-fine-tune a local Stable Diffusion pipeline on the shared measles crops for STEPS steps,
# generate from the run, evaluate it (KID with its real-vs-real floor, memorisation; C2ST is not in skingen yet) and
# print the timings. Needs a local pipeline folder (skingen never downloads weights); it has NOT been run: this
# project's machines have no Stable Diffusion weights (a CPU dry run on scripts/make_tiny_sd.py's pipeline checks the
# plumbing: PIPE=tiny STEPS=4 N=8 TRAIN_PRECISION=fp32 GEN_PRECISION=fp32 ...). With them:
#   PIPE=models/sd15 DATA=data/measles STEPS=500 N=200 bash scripts/device_sd_lora.sh
# PIPE: a text-to-image (e.g. stable-diffusion-v1-5) or inpainting (stable-diffusion-inpainting) pipeline folder,
# e.g. python -c "from diffusers import AutoPipelineForText2Image as P; P.from_pretrained('stable-diffusion-v1-5/
# stable-diffusion-v1-5', safety_checker=None).save_pretrained('models/sd15')" on a machine with internet.
# DATA: the measles crops prepared once: skingen prepare ../shared/data/exanthem/viral_rash_measles --out data/measles
# --auto-mask --label measles. On a lent machine without internet, put the wheels it lacks (diffusers,
# transformers, peft) in .whl/ and set SETUP=1. Writes OUT/report.tar.gz.
set -uo pipefail
PIPE=${PIPE:?set PIPE to a local diffusers pipeline folder}
STEPS=${STEPS:-500} N=${N:-200} BATCH=${BATCH:-4}
TRAIN_PRECISION=${TRAIN_PRECISION:-fp16} GEN_PRECISION=${GEN_PRECISION:-fp16}  # fp32 for a CPU dry run
if [ "${SETUP:-0}" = 1 ]; then source "$(dirname "$0")/device_setup.sh"; else
    DATA=${DATA:-data/measles} OUT=${OUT:-/tmp/out} W=${W:-/tmp/work-sd-lora}; mkdir -p "$W" "$OUT"; fi
[ -f "$PIPE/model_index.json" ] || { echo "error: $PIPE is not a diffusers pipeline folder"; exit 1; }
[ -f "$DATA/manifest.csv" ] || { echo "error: $DATA is not a prepared data folder"; exit 1; }
SK="python3 -m skingen.cli"
t0=$(date +%s)
$SK train sd-lora --pipeline "$PIPE" --data "$DATA:train" --outdir "$W/runs" --set train.steps="$STEPS" \
    --set train.batch="$BATCH" --set "train.mixed_precision='$TRAIN_PRECISION'" --set train.gradient_checkpointing=true \
    --set train.tick=25 --set train.snapshot="$STEPS" 2>&1 | tee "$W/train.log" | tail -n 5 || { echo "training failed"; exit 1; }
t1=$(date +%s)
RUN=$(ls -d "$W"/runs/*-sd-lora-*/ | tail -n 1)
KIND=$(python3 -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['kind'])" "$RUN/config.yaml")
if [ "$KIND" = inpainting ]; then
    $SK inpaint "$RUN" --from "$DATA:train" --out "$W/synth" --runs 2 --precision "$GEN_PRECISION" --batch 16 \
        2>&1 | tee "$W/generate.log" | tail -n 2 || exit 1
else
    $SK sample "$RUN" --n "$N" --out "$W/synth" --precision "$GEN_PRECISION" --batch 16 2>&1 | tee "$W/generate.log" | tail -n 2 || exit 1
fi
t2=$(date +%s)
# KID (Inception) of the set vs the test crops, with the real-vs-real floor from the train split; memorisation vs train
$SK evaluate --real "$DATA:test" --synthetic "$W/synth" --floor "$DATA:train" --metrics kid,fid,memorisation \
    --features inception --out "$W/eval" 2>&1 | tee "$W/eval.log" | tail -n 20
# augment's memorisation gate (near-copies of training crops are dropped; docs/sd-lora.md)
$SK augment --real "$DATA" --synthetic "$W/synth" --out "$W/aug" 2>&1 | tee "$W/augment.log" | tail -n 6
t3=$(date +%s)
python3 - "$RUN" <<'PY' | tee "$W/timings.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/stats.jsonl")]
steady = rows[1:] or rows  # the first tick pays the warm-up
print("train: %.3f s/step (mean of ticks after the first), peak memory %.0f MB (GPU when on one)"
      % (sum(r["seconds_per_step"] for r in steady) / len(steady), max(r["peak_memory_mb"] for r in rows)))
PY
echo "wall: train $((t1 - t0)) s, generate $((t2 - t1)) s, evaluate + gate $((t3 - t2)) s" | tee -a "$W/timings.txt"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee -a "$W/timings.txt"
tar -C "$W" -czf "$OUT/report.tar.gz" train.log generate.log eval.log augment.log timings.txt eval aug/memorised.csv \
    2>/dev/null; ls -la "$OUT"
