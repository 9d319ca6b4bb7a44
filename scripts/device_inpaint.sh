#!/usr/bin/env bash
# Issue 18 on one lent GPU: train the native-resolution window inpainting model (preset inpaint-windows) in two
# sizes side by side for MIN minutes each, A/B the sampling settings on the test crops by seam score
# (bench/inpaint_ab.py), and export both as small fp16 models. Not a test; run on the device machine as
#   DATA=.carry/measles-study MIN=6.5 bash scripts/device_inpaint.sh
# with the wheels it lacks (diffusers) in .whl/. Writes OUT/report.tar.gz, OUT/v1.tar, OUT/v2.tar.
MIN=${MIN:-6.5}
source "$(dirname "$0")/device_setup.sh"
python3 -m skingen.cli train inpaint --config inpaint-windows --data "$DATA" --outdir "$W/v1" --desc v1 \
    --minutes "$MIN" > "$W/v1.log" 2>&1 &
P1=$!
python3 -m skingen.cli train inpaint --config inpaint-windows --set model.layers_per_block=2 --data "$DATA" \
    --outdir "$W/v2" --desc v2 --minutes "$MIN" > "$W/v2.log" 2>&1 &
P2=$!
sleep 45  # a training that breaks, breaks in its first seconds: stop then instead of spending the lease
if ! kill -0 "$P1" 2>/dev/null || ! kill -0 "$P2" 2>/dev/null; then
    cat "$W/v1.log" "$W/v2.log"; kill "$P1" "$P2" 2>/dev/null; exit 1
fi
tail -n 2 "$W/v1.log" "$W/v2.log"
wait
tail -n 4 "$W/v1.log" "$W/v2.log"
V1=$(ls -d "$W"/v1/*/) V2=$(ls -d "$W"/v2/*/)
timeout "${AB_SECONDS:-200}" python3 bench/inpaint_ab.py "$V1" "$V2" --data "$DATA:test" --n "${AB_N:-109}" --shapes box,blob \
    --sizes 0.1875,0.25 --feathers 0,6 --json "$W/ab.json" 2>&1 | tee "$W/ab.txt" | tail -n 40
for v in v1 v2; do
    d=$(ls -d "$W/$v"/*/)
    python3 scripts/export_model.py "$d" "$W/export-$v" --dtype fp16 && tar -C "$W" -cf "$OUT/$v.tar" "export-$v"
    ls "$d/samples" | grep -v reals | tail -n 1 | while read -r g; do cp "$d/samples/$g" "$W/$v-last-grid.png"; done
    cp "$d/log.txt" "$W/$v-log.txt"; cp "$d/stats.jsonl" "$W/$v-stats.jsonl"; cp "$d/config.yaml" "$W/$v-config.yaml"
done
tar -C "$W" -czf "$OUT/report.tar.gz" gpu.txt v1.log v2.log ab.json ab.txt v1-last-grid.png v2-last-grid.png \
    v1-log.txt v2-log.txt v1-stats.jsonl v2-stats.jsonl v1-config.yaml v2-config.yaml 2>&1
ls -la "$OUT"
