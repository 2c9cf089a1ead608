#!/usr/bin/env bash
# Call 1 (H200): v16 = the batched Q/K/V kernel stages the nb activation rows in shared
# memory (qkv_batch_*: stage_rows in Q/K's weight-type layout, grid at most one wave),
# against v15 = a2f975a, same call: gpu_batch on v16; Nsight time of the qkv_batch launches
# of a step at 8 rows (7B, 1.5B, both builds); step time v15 v16 v16 v15; serve 1/2/4/8
# streams v15 v16 v16 v15 on both presets.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
A=v15; B=v16
GRAPHRUN_BIN=/tmp/ab/$B/graphrun timeout 200 /tmp/ab/$B/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_$B.log 2>&1
rc=$?; echo "gpu_batch $B: exit $rc ($SECONDS s)"; grep "test result\|FAILED\|panicked\|differ" $OUT/gpu_batch_$B.log | head -12
for p in 7b 1.5b; do for v in $A $B; do
  GRAPHRUN_BIN=/tmp/ab/$v/graphrun GRAPHRUN_BATCH_PRESETS=$p GRAPHRUN_BATCH_SIZES=8 timeout 150 ncu --target-processes all -k regex:qkv_batch --launch-skip 140 --launch-count 28 \
    --metrics gpu__time_duration.sum --csv --print-units base /tmp/ab/$v/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/ncu_qkv_${p}_$v.csv 2> $OUT/ncu_qkv_${p}_$v.err
  python3 - $OUT/ncu_qkv_${p}_$v.csv <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
h = rows[0]; t = collections.defaultdict(list)
for r in rows[1:]:
    d = dict(zip(h, r))
    if d.get("Metric Name") == "gpu__time_duration.sum":
        t[d["Kernel Name"].split("(")[0] + " grid " + d["Grid Size"]].append(float(d["Metric Value"].replace(",", "")) / 1e3)
for k, v in t.items(): print(f"  {sys.argv[1].split('/')[-1]}: {k}: {len(v)} launches, {sum(v)/len(v):.1f} us each, {sum(v):.1f} us")
PY
done; done
time_run() {  # variant, tag
  GRAPHRUN_BIN=/tmp/ab/$1/graphrun GRAPHRUN_BATCH_PRESETS=1.5b,7b timeout 150 /tmp/ab/$1/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/steptime_$2.log 2>&1
  echo "== $2 $(grep -o 'step [0-9.]* ms' $OUT/steptime_$2.log | awk '{printf "%s ", $2}') ($SECONDS s)"
}
time_run $A ${A}a; time_run $B ${B}a; time_run $B ${B}b; time_run $A ${A}b
if [ $rc -eq 0 ]; then
  mkdir -p /tmp/gr
  for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/$A/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
  serve_run() {  # variant, preset, tag
    /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
    for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
    timeout 100 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
    echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
    kill $S; wait $S
  }
  for p in 7b 1.5b; do serve_run $A $p ${p}_${A}a; serve_run $B $p ${p}_${B}a; serve_run $B $p ${p}_${B}b; serve_run $A $p ${p}_${A}b; done
fi
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
