#!/usr/bin/env bash
# Issue 18, next GPU session: continue the shipped measles-inpaint model (train --init) for MIN minutes on the
# measles crops, export it, and measure it the way the issue asks (3 runs x 10 steps per test crop, Inception KID
# against the real-vs-real floor, memorisation, MS-SSIM between runs of one crop) next to the shipped weights.
# Not a test; run on the device machine (carry .carry and .whl) as
#   DATA=.carry/measles-study MIN=8 bash scripts/device_inpaint_continue.sh
# Writes OUT/export.tar (the continued model, fp16) and OUT/report.tar.gz (logs, grids, evaluate report).
MIN=${MIN:-8}
export OMP_NUM_THREADS=8
source "$(dirname "$0")/device_setup.sh"
SK="python3 -m skingen.cli"
# the shipped model's weights and model config (--init) with its preset's training settings; a new seed, so the
# windows are not the ones it was trained on first
$SK train inpaint --init measles-inpaint --config inpaint-windows --data "$DATA" --outdir "$W/run" --desc continued \
    --minutes "$MIN" --set train.images=20000000 --set train.workers=6 --set train.seed=1 > "$W/train.log" 2>&1 &
P=$!
sleep 60  # a training that breaks, breaks in its first minute: stop then instead of spending the lease
if ! kill -0 "$P" 2>/dev/null; then cat "$W/train.log"; exit 1; fi
tail -n 2 "$W/train.log"
wait "$P"
tail -n 4 "$W/train.log"
RUN=$(ls -d "$W"/run/*/)
python3 scripts/export_model.py "$RUN" "$W/export" --dtype fp16 && tar -C "$W" -cf "$OUT/export.tar" export
# the shipped model's measured settings (blob, 48 px, feather 6) for both, 3 runs of every test crop
for m in measles-inpaint "$W/export"; do
    name=$(basename "$m")
    $SK inpaint "$m" --from "$DATA:test" --runs 3 --shape blob --region-size 0.1875 --feather 6 --batch 64 \
        --out "$W/fills-$name" 2>&1 | tail -n 1 | tee -a "$W/inpaint.txt"
done
$SK evaluate --real "$DATA:train" --synthetic "$W/fills-measles-inpaint" --synthetic "$W/fills-export" --out "$W/eval" \
    --metrics fid,kid,memorisation,diversity --features inception > "$W/eval.log" 2>&1
tail -n 40 "$W/eval.log"
cp "$RUN/log.txt" "$W/log.txt"; cp "$RUN/stats.jsonl" "$W/stats.jsonl"
ls "$RUN/samples" | grep -v reals | tail -n 1 | while read -r g; do cp "$RUN/samples/$g" "$W/last-grid.png"; done
tar -C "$W" -czf "$OUT/report.tar.gz" gpu.txt train.log log.txt stats.jsonl last-grid.png inpaint.txt eval.log \
    eval/report.md eval/metrics.json 2>&1
ls -la "$OUT"
