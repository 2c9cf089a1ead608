#!/usr/bin/env bash
# Call 1 (H200): v18 = the batched matvecs read rows too long to stage from prep's planar
# q8 layout (coalesced), v19 = v18 + rows staged up to the device's shared-memory limit per
# CTA, against v17 = f5609ad (kernels as 17edd1d), same call: gpu_batch on v18 and v19;
# step time v17 v18 v19 v19 v18 v17; Nsight time of a 7B step's matvec_batch launches at
# 8 rows (all three); serve 1 and 8 streams on 7B and 1.5B, v17 v18 v19 v19 v18 v17.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
V="v17 v18 v19"; R="v19 v18 v17"
rcs=0
for v in v18 v19; do
  GRAPHRUN_BIN=/tmp/ab/$v/graphrun timeout 120 /tmp/ab/$v/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_$v.log 2>&1
  rc=$?; rcs=$((rcs+rc)); echo "gpu_batch $v: exit $rc ($SECONDS s)"; grep "test result\|FAILED\|panicked\|differ" $OUT/gpu_batch_$v.log | head -8
done
time_run() {  # variant, tag
  GRAPHRUN_BIN=/tmp/ab/$1/graphrun GRAPHRUN_BATCH_PRESETS=1.5b,7b timeout 100 /tmp/ab/$1/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/steptime_$2.log 2>&1
  echo "== $2 $(grep -o 'step [0-9.]* ms' $OUT/steptime_$2.log | awk '{printf "%s ", $2}') ($SECONDS s)"
}
for v in $V; do time_run $v ${v}a; done; for v in $R; do time_run $v ${v}b; done
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/v17/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 60 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
for p in 7b 1.5b; do
  for v in $V; do serve_run $v $p ${p}_${v}a; done
  for v in $R; do serve_run $v $p ${p}_${v}b; done
done
for v in $V; do
  GRAPHRUN_BIN=/tmp/ab/$v/graphrun GRAPHRUN_BATCH_PRESETS=7b GRAPHRUN_BATCH_SIZES=8 timeout 100 ncu --target-processes all -k regex:matvec_batch --launch-skip 300 --launch-count 120 \
    --metrics gpu__time_duration.sum --csv --print-units base /tmp/ab/$v/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/ncu_mv_7b_$v.csv 2> $OUT/ncu_mv_7b_$v.err
  python3 - $OUT/ncu_mv_7b_$v.csv <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
h = rows[0]; t = collections.defaultdict(list)
for r in rows[1:]:
    d = dict(zip(h, r))
    if d.get("Metric Name") == "gpu__time_duration.sum":
        t[d["Kernel Name"].split("(")[0] + " grid " + d["Grid Size"]].append(float(d["Metric Value"].replace(",", "")) / 1e3)
for k, v in sorted(t.items()): print(f"  {sys.argv[1].split('/')[-1]}: {k}: {len(v)} launches, {sum(v)/len(v):.1f} us each")
PY
  echo "ncu $v ($SECONDS s)"
done
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
