#!/usr/bin/env bash
# Call 3 (H200): v9 (v7 with 3 resident CTAs per SM, 80 registers, for the q8 batched
# matvecs that fit it: Q6_K, legacy, Q4_K/Q5_K SwiGLU; src/codegen/catalogue.rs
# batch_matvec_three_ctas) against v7 (call 1's new build), same call: gpu_batch on v9,
# batched-step time (A, B, B, A), every matvec_batch kernel's time in one 7B step at 8
# rows (Nsight Compute, both builds), and `serve --parallel 8` aggregate decode at 1, 2,
# 4, 8 streams (A, B, B, A). A = v7, B = v9. All logs go into logs.tgz (a call returns 8 files).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
A=v7; B=v9
for v in $A $B; do mkdir -p /tmp/ab/$v; for f in graphrun gpu_batch; do xz -dc carry/ab/$v/$f.xz > /tmp/ab/$v/$f; chmod +x /tmp/ab/$v/$f; done; done
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
GRAPHRUN_BIN=/tmp/ab/$B/graphrun timeout 240 /tmp/ab/$B/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_$B.log 2>&1
rc=$?; echo "gpu_batch $B: exit $rc"; grep "test result\|FAILED\|panicked\|differ" $OUT/gpu_batch_$B.log | head -20
time_run() {  # variant, tag
  GRAPHRUN_BIN=/tmp/ab/$1/graphrun GRAPHRUN_BATCH_PRESETS=1.5b,7b timeout 150 /tmp/ab/$1/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/steptime_$2.log 2>&1
  echo "== $2 $(grep -o 'step [0-9.]* ms' $OUT/steptime_$2.log | awk '{printf "%s ", $2}')"
}
time_run $A ${A}a; time_run $B ${B}a; time_run $B ${B}b; time_run $A ${A}b
if [ $rc -eq 0 ]; then
  for v in $A $B; do
    GRAPHRUN_BIN=/tmp/ab/$v/graphrun GRAPHRUN_BATCH_PRESETS=7b GRAPHRUN_BATCH_SIZES=8 timeout 150 ncu --target-processes all -k regex:matvec_batch --launch-skip 255 --launch-count 85 \
      --metrics gpu__time_duration.sum,dram__bytes_read.sum --csv --print-units base /tmp/ab/$v/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/ncu_7b_b8_$v.csv 2> $OUT/ncu_7b_b8_$v.err
    echo "ncu $v: exit $?"
    python3 - $OUT/ncu_7b_b8_$v.csv <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
h = rows[0]; t = collections.defaultdict(float); n = collections.Counter()
for r in rows[1:]:
    d = dict(zip(h, r))
    if d.get("Metric Name") == "gpu__time_duration.sum":
        k = d["Kernel Name"].split("(")[0]; t[k] += float(d["Metric Value"].replace(",", "")) / 1e3; n[k] += 1
for k in sorted(t, key=lambda k: -t[k]): print(f"  {k}: {n[k]} launches, {t[k]:.1f} us, {t[k]/n[k]:.1f} us each")
print(f"  total {sum(t.values()):.1f} us")
PY
  done
  mkdir -p /tmp/gr
  for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/$B/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
  serve_run() {  # variant, preset, tag
    /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
    for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
    timeout 150 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
    echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))')"
    kill $S; wait $S
  }
  for p in 1.5b 7b; do serve_run $A $p ${p}_${A}a; serve_run $B $p ${p}_${B}a; serve_run $B $p ${p}_${B}b; serve_run $A $p ${p}_${A}b; done
fi
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
