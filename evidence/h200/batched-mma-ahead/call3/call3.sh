#!/usr/bin/env bash
# batched-mma-ahead call 3 (H200): the committed build (`GPU_TESTS="gpu_batch gpu_sample
# backend_ops" scripts/make-gpu-carry`; its matvec_batch family's SASS is call 2's v3 bit for
# bit) against base = main 78b6450 (the d77ad1a build, as calls 1 and 2). Part 1: serve,
# 1, 2, 4, 6, 8 streams: 7B base final base final base final, 1.5B base final base final.
# Part 2: the GPU suites the change touches, side by side: gpu_batch (batched rows bit for
# bit, batched sampling), gpu_sample, backend_ops. Part 3: Nsight of the 7B 8-row step.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
echo "synth done ($SECONDS s)"
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,6,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
for r in 1 2 3; do serve_run base 7b 7b_base$r; serve_run final 7b 7b_final$r; done
for r in 1 2; do serve_run base 1.5b 1.5b_base$r; serve_run final 1.5b 1.5b_final$r; done
S=/tmp/ab/final; export GRAPHRUN_BIN=$S/graphrun GRAPHRUN_REFERENCE=$PWD/tests/reference
suite() {  # tag, command...
  local tag=$1; shift
  timeout 250 "$@" > $OUT/$tag.log 2>&1
  echo "$tag: exit $? ($SECONDS s) $(grep 'test result' $OUT/$tag.log | tr '\n' ' ')"
}
suite gpu_batch $S/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size &
suite gpu_sample $S/gpu_sample --ignored --nocapture --test-threads 1 &
suite backend_ops $S/backend_ops --ignored --nocapture --test-threads 1 &
wait
$S/graphrun kernels 2>&1 | tail -2 > $OUT/kernels.txt
GRAPHRUN_BATCH_PRESETS=7b GRAPHRUN_BATCH_SIZES=8 timeout 100 ncu --metrics gpu__time_duration.sum,dram__bytes_read.sum --csv --print-units base \
  --launch-skip 6500 --launch-count 700 $S/gpu_batch batched_step_time_by_batch_size --ignored --nocapture > $OUT/ncu_7b_b8_final.csv 2> $OUT/ncu_7b_b8_final.err
echo "ncu: exit $? ($SECONDS s)"
python3 - $OUT/ncu_7b_b8_final.csv <<'PY' | tee $OUT/summary_7b_b8_final.txt
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
xz -9 $OUT/ncu_7b_b8_final.csv
echo "end ($SECONDS s)"
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
