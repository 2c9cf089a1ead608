#!/usr/bin/env bash
# Call 11 (H200): where a merged 7B batched step at 8 rows spends its time (v13 = the
# merged kernels; at 8 rows the merged rule is v13's default): Nsight Compute time and DRAM
# bytes of every launch over steps of gpu_batch's batched_step_time_by_batch_size (7B,
# 8 rows), summed per kernel (summarise below).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
export GRAPHRUN_BIN=/tmp/ab/v13/graphrun
GRAPHRUN_BATCH_PRESETS=7b GRAPHRUN_BATCH_SIZES=8 timeout 400 ncu --metrics gpu__time_duration.sum,dram__bytes_read.sum --csv --print-units base \
  --launch-skip 6500 --launch-count 700 /tmp/ab/v13/gpu_batch batched_step_time_by_batch_size --ignored --nocapture > $OUT/ncu_7b_b8.csv 2> $OUT/ncu_7b_b8.err
echo "ncu: exit $? ($SECONDS s)"; tail -2 $OUT/ncu_7b_b8.err
python3 - $OUT/ncu_7b_b8.csv <<'PY' | tee $OUT/summary.txt
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
h = rows[0]; t = collections.defaultdict(float); n = collections.Counter(); by = collections.defaultdict(float)
ids = set()
for r in rows[1:]:
    d = dict(zip(h, r)); k = d["Kernel Name"].split("(")[0] + " grid " + d["Grid Size"]
    v = float(d["Metric Value"].replace(",", ""))
    if d["Metric Name"] == "gpu__time_duration.sum": t[k] += v / 1e3; n[k] += 1; ids.add(d["ID"])
    if d["Metric Name"] == "dram__bytes_read.sum": by[k] += v
tot = sum(t.values())
print(f"{len(ids)} launches, {tot:.0f} us in all")
for k, v in sorted(t.items(), key=lambda x: -x[1]):
    print(f"{v:9.1f} us {100*v/tot:5.1f}%  {n[k]:4d} x {v/n[k]:7.1f} us  {by[k]/max(v,1e-9)/1e3:7.0f} GB/s  {k}")
PY
echo "end ($SECONDS s)"
xz -9 $OUT/ncu_7b_b8.csv
