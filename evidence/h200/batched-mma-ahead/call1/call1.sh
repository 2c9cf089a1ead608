#!/usr/bin/env bash
# batched-mma-ahead call 1 (H200): base = main 78b6450 (the d77ad1a build: every family's SASS
# is edc5792's and 78b6450's); v1 = the tensor-core batched kernel stages its activation rows
# with 8 loads in flight a thread (mma_stage) and the CUDA-core tiles with stage_rows' 4;
# v2 = v1 + the tensor-core kernel's plain/residual loop loads the next super-block's weights
# before summing the current one. Part 1: gpu_batch's batched step time at 1, 2, 4, 8 rows
# (7B, 1.5B) for base v1 v2 base. Part 2: serve, 1..8 streams, 7B base v2 v2 base. Part 3:
# gpu_batch's parity suite on v2; serve 1.5B base v2. Part 4 (time left): Nsight of v2's 7B 8-row step.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
echo "synth done ($SECONDS s)"
step() {  # variant, tag
  GRAPHRUN_BIN=/tmp/ab/$1/graphrun GRAPHRUN_BATCH_PRESETS=7b,1.5b GRAPHRUN_BATCH_SIZES=1,2,4,8 timeout 200 /tmp/ab/$1/gpu_batch \
    batched_step_time_by_batch_size --ignored --nocapture > $OUT/step_$2.log 2>&1
  echo "== step $2: $(grep -o '[0-9.a-z]* q8: batch [0-9]: step [0-9.]* ms' $OUT/step_$2.log | awk '{print $1"/"$4$6}' | tr '\n' ' ') ($SECONDS s)"
}
step base base1; step v1 v11; step v2 v21; step base base2
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,6,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
serve_run base 7b 7b_base1; serve_run v2 7b 7b_v21; serve_run v2 7b 7b_v22; serve_run base 7b 7b_base2
GRAPHRUN_BIN=/tmp/ab/v2/graphrun timeout 200 /tmp/ab/v2/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_v2.log 2>&1
echo "gpu_batch v2: exit $? ($SECONDS s) $(grep 'test result' $OUT/gpu_batch_v2.log)"
serve_run base 1.5b 1.5b_base1; serve_run v2 1.5b 1.5b_v21
[ $SECONDS -lt 430 ] || { echo "no time for ncu ($SECONDS s)"; exit 0; }
export GRAPHRUN_BIN=/tmp/ab/v2/graphrun
GRAPHRUN_BATCH_PRESETS=7b GRAPHRUN_BATCH_SIZES=8 timeout 120 ncu --metrics gpu__time_duration.sum,dram__bytes_read.sum --csv --print-units base \
  --launch-skip 6500 --launch-count 700 /tmp/ab/v2/gpu_batch batched_step_time_by_batch_size --ignored --nocapture > $OUT/ncu_7b_b8_v2.csv 2> $OUT/ncu_7b_b8_v2.err
echo "ncu: exit $? ($SECONDS s)"
python3 - $OUT/ncu_7b_b8_v2.csv <<'PY' | tee $OUT/summary_v2.txt
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
xz -9 $OUT/ncu_7b_b8_v2.csv
echo "end ($SECONDS s)"
