#!/usr/bin/env bash
# Call 2 (H200): v4 = call 1's v3 without v2's load changes, with the single-row k-quant
# paths spread over the quad (matvec_tile_kquad, pair_dot: each lane adds one row's
# super-block terms), the tensor-core kernel from 4 rows (GRAPHRUN_MMA_MIN, default 4)
# in CTAs sized to the tiles; v5 = v4 + the batched CUDA-core k-quant paths spread over
# the quad (whole rows, tiles of 32 lanes, Q/K/V). Against base = 4dd1490 (main), same
# call: gpu_batch on v5 (bits); Nsight of the batched matvecs and Q/K/V at 8 and 2 rows
# (7B; base, v5); serve 1, 2, 4, 8 streams on 7B and 1.5B, order base v4 v5 v5m2 v5 v4 base
# (v5m2: GRAPHRUN_MMA_MIN=2).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
GRAPHRUN_BIN=/tmp/ab/v5/graphrun timeout 200 /tmp/ab/v5/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_v5.log 2>&1
echo "gpu_batch v5: exit $? ($SECONDS s)"; grep "test result\|FAILED\|panicked\|differ\|left\|right" $OUT/gpu_batch_v5.log | head -12
ncu_run() {  # variant, preset, rows, tag
  GRAPHRUN_BATCH_PRESETS=$2 GRAPHRUN_BATCH_SIZES=$3 timeout 120 ncu --target-processes all -k regex:"matvec_batch|qkv_batch" --launch-skip 300 --launch-count 113 \
    --metrics gpu__time_duration.sum,smsp__inst_executed.sum,launch__registers_per_thread --csv --print-units base /tmp/ab/$1/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/ncu_$4.csv 2> $OUT/ncu_$4.err
  python3 - $OUT/ncu_$4.csv <<'PY'
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
  echo "ncu $4 ($SECONDS s)"
}
ncu_run base 7b 8 7b_b8_base; ncu_run v5 7b 8 7b_b8_v5; ncu_run base 7b 2 7b_b2_base; ncu_run v5 7b 2 7b_b2_v5
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
echo "synth done ($SECONDS s)"
serve_run() {  # variant, preset, tag, mma_min
  GRAPHRUN_MMA_MIN=$4 /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
for p in 7b 1.5b; do
  serve_run base $p ${p}_base1 4; serve_run v4 $p ${p}_v41 4; serve_run v5 $p ${p}_v51 4; serve_run v5 $p ${p}_v5m2 2
  serve_run v5 $p ${p}_v52 4; serve_run v4 $p ${p}_v42 4; serve_run base $p ${p}_base2 4
done
echo "end ($SECONDS s)"
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
