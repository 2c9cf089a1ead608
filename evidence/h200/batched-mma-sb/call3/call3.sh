#!/usr/bin/env bash
# Call 3 (H200): v7 = the single-row k-quant matvec without shuffles (matvec_tile_kquad:
# L/4 lanes a row, one a quad slot, whole super-blocks a lane), the batched CUDA-core
# matvecs with kq_add, the batched Q/K/V spread over the quads from 4 rows, the tensor-core
# matvec from 4 rows in CTAs of 256 threads. Against base = 4dd1490 (main), same call:
# gpu_batch on v7 (bits); Nsight of the single-row matvecs and Q/K/V of one 7B step (base,
# v7); graphrun bench -p 512 -n 128 (7B, 1.5B; base v7 v7 base); serve 1, 2, 4, 8 streams
# on 7B and 1.5B (base v7 v7 base).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
GRAPHRUN_BIN=/tmp/ab/v7/graphrun timeout 200 /tmp/ab/v7/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_v7.log 2>&1
echo "gpu_batch v7: exit $? ($SECONDS s)"; grep "test result\|FAILED\|panicked\|differ\|left\|right" $OUT/gpu_batch_v7.log | head -12
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
echo "synth done ($SECONDS s)"
ncu_run() {  # variant, preset, tag
  timeout 100 ncu -k regex:"matvec_q|qkv_q" --launch-skip 400 --launch-count 57 \
    --metrics gpu__time_duration.sum,smsp__inst_executed.sum,launch__registers_per_thread --csv --print-units base /tmp/ab/$1/graphrun bench /tmp/gr/$2.gguf -p 16 -n 8 -r 1 > $OUT/ncu1_$3.csv 2> $OUT/ncu1_$3.err
  python3 - $OUT/ncu1_$3.csv <<'PY'
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
ncu_run base 7b 7b_base; ncu_run v7 7b 7b_v7
bench_run() {  # variant, preset, tag
  timeout 60 /tmp/ab/$1/graphrun bench /tmp/gr/$2.gguf -p 512 -n 128 -r 2 --json > $OUT/bench_$3.json 2> $OUT/bench_$3.err
  echo "== bench $3 $(python3 -c "import json,sys; d=json.load(open('$OUT/bench_$3.json')); print(json.dumps(d)[:400])" 2>&1 | head -c 400) ($SECONDS s)"
}
for p in 7b 1.5b; do bench_run base $p ${p}_base1; bench_run v7 $p ${p}_v71; bench_run v7 $p ${p}_v72; bench_run base $p ${p}_base2; done
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
for p in 7b 1.5b; do serve_run base $p ${p}_base1; serve_run v7 $p ${p}_v71; serve_run v7 $p ${p}_v72; serve_run base $p ${p}_base2; done
echo "end ($SECONDS s)"
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
