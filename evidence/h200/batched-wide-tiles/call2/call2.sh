#!/usr/bin/env bash
# Call 2 (H200): which part of v1 slowed the batched step. v2 = v1 with experiment switches
# in the batched matvecs' MatvecArgs.prefetch (unused by them before), from GRAPHRUN_EXP:
# bit 0 = no L2 prefetch of the first weights before the wait, bit 1 = staged values by
# plain loads (4 in flight a thread) instead of cp.async, bit 2 = no wide CTA tiles;
# v3 = v2 with the tile kernels' launch bounds of base ((256, 3) / (256, 2)), run with all
# three switches. Step time (1.5B and 7B, 1/2/4/8 rows) base, v2 EXP 0/1/2/3/7, v3 EXP 7,
# base; Nsight of the 1.5B's batched matvecs at 8 rows: base, v2 EXP 0 and 7, v3 EXP 7.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
time_run() {  # variant, exp, tag
  GRAPHRUN_EXP=$2 GRAPHRUN_BATCH_PRESETS=1.5b,7b timeout 100 /tmp/ab/$1/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/steptime_$3.log 2>&1
  echo "== $3 $(grep -o 'step [0-9.]* ms' $OUT/steptime_$3.log | awk '{printf "%s ", $2}') ($SECONDS s)"
}
time_run base 0 basea; time_run v2 0 v2e0; time_run v2 1 v2e1; time_run v2 2 v2e2; time_run v2 3 v2e3; time_run v2 7 v2e7; time_run v3 7 v3e7; time_run v3 3 v3e3; time_run base 0 baseb
ncu_run() {  # variant, exp, tag
  GRAPHRUN_EXP=$2 GRAPHRUN_BATCH_PRESETS=1.5b GRAPHRUN_BATCH_SIZES=8 timeout 100 ncu --target-processes all -k regex:matvec_batch --launch-skip 255 --launch-count 85 \
    --metrics gpu__time_duration.sum,smsp__inst_executed.sum,launch__block_size --csv --print-units base /tmp/ab/$1/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/ncu_mv_1.5b_$3.csv 2> $OUT/ncu_mv_1.5b_$3.err
  python3 - $OUT/ncu_mv_1.5b_$3.csv <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
h = rows[0]; t = collections.defaultdict(list); ins = collections.defaultdict(list)
for r in rows[1:]:
    d = dict(zip(h, r))
    k = d["Kernel Name"].split("(")[0] + " grid " + d["Grid Size"] + " block " + d.get("Block Size", "?")
    if d.get("Metric Name") == "gpu__time_duration.sum": t[k].append(float(d["Metric Value"].replace(",", "")) / 1e3)
    if d.get("Metric Name") == "smsp__inst_executed.sum": ins[k].append(float(d["Metric Value"].replace(",", "")))
for k, v in sorted(t.items()):
    print(f"  {sys.argv[1].split('/')[-1]}: {k}: {len(v)} launches, {sum(v)/len(v):.1f} us each, {sum(ins[k])/max(1,len(ins[k]))/1e6:.2f} M warp instructions")
PY
}
ncu_run base 0 base; ncu_run v2 0 v2e0; ncu_run v2 7 v2e7; ncu_run v3 7 v3e7
echo "end ($SECONDS s)"
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
