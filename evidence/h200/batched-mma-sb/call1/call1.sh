#!/usr/bin/env bash
# Call 1 (H200): v3 = Q4_K/Q5_K q8 row sums in the interpreter's super-block terms (kq_add,
# kernels/quant.cuh) in every decode kernel, and the batched matvec over Q4_K/Q5_K on
# tensor cores (MatvecBatchMma) at 2-8 rows; v2 = base + two load fixes (index math by
# shifts, Q6_K/Q8_0 loads as global loads), base = 4dd1490 (main). Same call: gpu_batch
# on v3 (bits: each batched row against the sequence alone and the single-sequence
# engine; interpreter band); Nsight time and instructions of the batched matvecs at 8 rows
# (7B, 1.5B: base, v3); serve 1, 2, 4, 8 streams on 7B and 1.5B (base v2 v3 v3 v2 base).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
GRAPHRUN_BIN=/tmp/ab/v3/graphrun timeout 200 /tmp/ab/v3/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_v3.log 2>&1
echo "gpu_batch v3: exit $? ($SECONDS s)"; grep "test result\|FAILED\|panicked\|differ\|left\|right" $OUT/gpu_batch_v3.log | head -12
ncu_run() {  # variant, preset, tag
  GRAPHRUN_BATCH_PRESETS=$2 GRAPHRUN_BATCH_SIZES=8 timeout 120 ncu --target-processes all -k regex:matvec_batch --launch-skip 255 --launch-count 85 \
    --metrics gpu__time_duration.sum,smsp__inst_executed.sum,launch__registers_per_thread --csv --print-units base /tmp/ab/$1/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/ncu_mv_$3.csv 2> $OUT/ncu_mv_$3.err
  python3 - $OUT/ncu_mv_$3.csv <<'PY'
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
  echo "ncu $3 ($SECONDS s)"
}
ncu_run base 7b 7b_base; ncu_run v3 7b 7b_v3; ncu_run base 1.5b 1.5b_base; ncu_run v3 1.5b 1.5b_v3
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
echo "synth done ($SECONDS s)"
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
for p in 7b 1.5b; do
  for v in base v2 v3; do serve_run $v $p ${p}_${v}1; done
  for v in v3 v2 base; do serve_run $v $p ${p}_${v}2; done
done
echo "end ($SECONDS s)"
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
