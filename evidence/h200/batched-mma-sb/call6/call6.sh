#!/usr/bin/env bash
# Call 6 (H200): where v9 (branch kq-mma) loses against base = 4dd1490 (main): Nsight
# time and instructions of the single-row matvecs and Q/K/V of a 7B and a 1.5B decode
# step (graphrun bench -p 16 -n 8), and of the batched kernels of a 1.5B step at 2 rows.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
summ() {
  python3 - $1 <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
if not rows: print("  no rows"); sys.exit()
h = rows[0]; t = collections.defaultdict(list); ins = collections.defaultdict(list); reg = {}
for r in rows[1:]:
    d = dict(zip(h, r))
    k = d["Kernel Name"].split("(")[0] + " grid " + d["Grid Size"] + " block " + d.get("Block Size", "?")
    if d.get("Metric Name") == "gpu__time_duration.sum": t[k].append(float(d["Metric Value"].replace(",", "")) / 1e3)
    if d.get("Metric Name") == "smsp__inst_executed.sum": ins[k].append(float(d["Metric Value"].replace(",", "")))
    if d.get("Metric Name") == "launch__registers_per_thread": reg[k] = d["Metric Value"]
for k, v in sorted(t.items()):
    print(f"  {sys.argv[1].split('/')[-1]}: {k}: {len(v)} launches, {sum(v)/len(v):.1f} us each, {sum(ins[k])/max(1,len(ins[k]))/1e6:.2f} M warp instr, {reg.get(k)} regs")
PY
}
for v in base v9; do for p in 7b 1.5b; do
  timeout 100 ncu -k regex:"matvec_q|qkv_q" --launch-skip 400 --launch-count 57 --metrics gpu__time_duration.sum,smsp__inst_executed.sum,launch__registers_per_thread \
    --csv --print-units base /tmp/ab/$v/graphrun bench /tmp/gr/$p.gguf -p 16 -n 8 -r 1 > $OUT/ncu1_${p}_$v.csv 2> $OUT/ncu1_${p}_$v.err; summ $OUT/ncu1_${p}_$v.csv
  echo "ncu1 $p $v ($SECONDS s)"
done; done
for v in base v9; do
  GRAPHRUN_BATCH_PRESETS=1.5b GRAPHRUN_BATCH_SIZES=2 timeout 120 ncu --target-processes all -k regex:"matvec_batch|qkv_batch" --launch-skip 300 --launch-count 113 \
    --metrics gpu__time_duration.sum,smsp__inst_executed.sum,launch__registers_per_thread --csv --print-units base /tmp/ab/$v/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/ncu2_1.5b_$v.csv 2> $OUT/ncu2_1.5b_$v.err; summ $OUT/ncu2_1.5b_$v.csv
  echo "ncu2 1.5b $v ($SECONDS s)"
done
echo "end ($SECONDS s)"
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
